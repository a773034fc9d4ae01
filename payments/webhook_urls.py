from django.urls import path

from payments.webhooks import StripeWebhookApi

urlpatterns = [
    path("stripe/", StripeWebhookApi.as_view(), name="stripe-webhook"),
]
