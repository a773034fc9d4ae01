from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from common import health
from common.auth import LogoutAllApi, LogoutApi, TokenObtainApi

handler404 = "common.errors.handler404"
handler500 = "common.errors.handler500"

api_v1 = [
    path("auth/token/", TokenObtainApi.as_view(), name="auth-token"),
    path("auth/logout/", LogoutApi.as_view(), name="auth-logout"),
    path("auth/logout-all/", LogoutAllApi.as_view(), name="auth-logout-all"),
    path("", include("suppliers.api.urls")),
    path("", include("reservations.api.urls")),
    path("", include("payments.api.urls")),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("webhooks/", include("payments.webhook_urls")),
    path("health/live", health.live, name="health-live"),
    path("health/db", health.db, name="health-db"),
    path("health/ready", health.ready, name="health-ready"),
    path("", include("common.urls")),
]
