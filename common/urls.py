from django.urls import path

from common.metrics import metrics_view

# Operational endpoints other than health.
urlpatterns = [
    path("metrics", metrics_view, name="metrics"),
]
