"""Stripe webhook events signed like Stripe signs them (localstripe only emits two types)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import Any

from django.conf import settings


def signature_header(payload: bytes, *, secret: str | None = None, timestamp: int | None = None) -> str:
    """`Stripe-Signature: t=…,v1=…` — HMAC-SHA256 of "{t}.{payload}" with the endpoint secret."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    secret = settings.STRIPE_WEBHOOK_SECRET if secret is None else secret
    mac = hmac.new(secret.encode(), b"%d." % timestamp + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def event(event_type: str, obj: dict[str, Any], *, event_id: str | None = None) -> dict[str, Any]:
    return {"id": event_id or f"evt_{uuid.uuid4().hex[:24]}", "object": "event", "type": event_type,
            "api_version": "2024-06-20", "created": int(time.time()), "data": {"object": obj}}


def intent_event(event_type: str, payment, *, status: str, event_id: str | None = None,
                 **extra: Any) -> dict[str, Any]:
    obj = {"id": payment.stripe_payment_intent_id, "object": "payment_intent", "status": status,
           "amount": payment.amount, "currency": payment.currency,
           "metadata": {"reservation_id": str(payment.reservation_id), "payment_id": str(payment.id)}, **extra}
    return event(event_type, obj, event_id=event_id)


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, indent=2).encode()


def post_event(client, payload: dict[str, Any] | bytes, *, signature: str | None = None):
    body = payload if isinstance(payload, bytes) else encode(payload)
    return client.post("/webhooks/stripe/", data=body, content_type="application/json",
                       HTTP_STRIPE_SIGNATURE=signature if signature is not None else signature_header(body))
