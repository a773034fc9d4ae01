"""Test-only URLs: the real project URLs plus views that fail on purpose."""

from django.db import OperationalError
from django.urls import include, path
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from config.urls import handler404, handler500  # noqa: F401 - re-exported for Django


class BoomApi(APIView):
    permission_classes = [AllowAny]

    def get(self, request):
        raise ValueError("secret-sauce SELECT * FROM customers WHERE password='hunter2'")

    def post(self, request):
        raise ValueError("boom with a body")


class DatabaseGoneApi(APIView):
    permission_classes = [AllowAny]

    def get(self, request):
        raise OperationalError(2013, "Lost connection to server during query")


urlpatterns = [
    path("api/v1/test-boom/", BoomApi.as_view()),
    path("api/v1/test-db-gone/", DatabaseGoneApi.as_view()),
    path("", include("config.urls")),
]
