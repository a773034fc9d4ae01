"""POST /webhooks/stripe/ (B4): verify, then hand the event to the inbox service."""

from __future__ import annotations

import logging
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import ParseError
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from common.error_codes import ErrorCode
from common.exceptions import ApplicationError
from common.parsers import json_loads_safely
from payments import gateway
from payments.metrics import count_webhook
from payments.services import stripe_event_ingest

logger = logging.getLogger("reserve.webhooks")


class InvalidWebhook(ApplicationError):
    status_code = 400
    code = ErrorCode.INVALID_WEBHOOK
    title = "Invalid webhook"
    default_detail = "The webhook signature or body is invalid."


def _is_stripe_event(payload: Any) -> bool:
    """An object with a string id and type, whose data.object is an object."""
    if not isinstance(payload, dict):
        return False
    data = payload.get("data")
    return (isinstance(payload.get("id"), str) and bool(payload["id"]) and isinstance(payload.get("type"), str)
            and bool(payload["type"]) and isinstance(data, dict) and isinstance(data.get("object"), dict))


class StripeWebhookApi(APIView):
    # Stripe authenticates with the signature: no token, no CSRF (DRF views are exempt
    # unless SessionAuthentication runs), and never throttled — a 429 would only delay money.
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    @extend_schema(request=None, responses={200: None}, exclude=True)
    def post(self, request: Request) -> Response:
        body = request.body  # the raw bytes: the signature covers them exactly (413 past the limit)
        try:
            gateway.webhook_event_verified(body=body, signature=request.headers.get("Stripe-Signature", ""),
                                           tolerance=300)
        except gateway.WebhookSignatureInvalid as exc:
            count_webhook("invalid_signature")
            logger.warning("webhook refused: signature does not match")
            raise InvalidWebhook("The Stripe signature does not match.", code=ErrorCode.INVALID_SIGNATURE) from exc
        try:
            payload = json_loads_safely(body)
        except ParseError as exc:
            count_webhook("invalid")
            logger.warning("webhook refused: signed body is not JSON")
            raise InvalidWebhook("The body is not a Stripe event.") from exc
        if not _is_stripe_event(payload):
            # Signed, yet not shaped like an event (B4): a 400, not a 500 Stripe would retry for days.
            count_webhook("invalid")
            logger.warning("webhook refused: signed body is not a Stripe event")
            raise InvalidWebhook("The body is not a Stripe event.")
        try:
            result = stripe_event_ingest(payload=payload)
        except Exception:
            count_webhook("failed")  # answered 5xx: Stripe sends it again
            raise
        count_webhook(result.status)
        return Response({"received": True})
