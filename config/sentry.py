"""Sentry (F2), initialised from settings when SENTRY_DSN is set.

Events carry the environment and release, the request's `request_id` as a tag (set by
common.middleware.RequestIdMiddleware), and failed django-q2 tasks (common.apps). Nothing
that identifies a guest leaves us (E7): `before_send` removes guest e-mail addresses and
names wherever they appear in the event, and frame locals are never sent."""

from __future__ import annotations

import re
from typing import Any

import sentry_sdk
from sentry_sdk.integrations.django import DjangoIntegration
from sentry_sdk.integrations.logging import ignore_logger

REDACTED = "[redacted]"
# Keys whose values are a guest's identity, wherever they appear (request bodies, extras,
# outbox e-mail payloads: recipient and text).
PII_KEYS = frozenset({"guest_email", "guest_name", "email", "to", "body"})
EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


def scrub(value: Any, *, key: str | None = None) -> Any:
    if key is not None and key.lower() in PII_KEYS and value not in (None, ""):
        return REDACTED
    if isinstance(value, dict):
        return {k: scrub(v, key=str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    if isinstance(value, str):
        return EMAIL_RE.sub(REDACTED, value)
    return value


def before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    """Guest e-mail addresses and names out of every field of the event. A request body
    that Sentry kept as raw text (not parsed JSON) may hold a name next to an address:
    it is dropped whole."""
    request = event.get("request")
    if isinstance(request, dict) and isinstance(request.get("data"), str):
        request["data"] = REDACTED
    return scrub(event)


def sentry_init(*, dsn: str, environment: str = "", release: str = "", traces_sample_rate: float = 0.0) -> None:
    sentry_sdk.init(
        dsn=dsn,
        environment=environment or None,
        release=release or None,
        integrations=[DjangoIntegration()],
        # No user, cookie or body data by default: send_default_pii and data_collection are left
        # unset, which sentry-sdk 2.7x reads as "no PII" (tests/common/test_sentry.py holds it).
        # Frame locals could hold a supplier's Authorization header or a guest's details;
        # tracebacks without them are enough to debug (E7: no secrets or PII leave us).
        include_local_variables=False,
        before_send=before_send,
        before_send_transaction=before_send,
        traces_sample_rate=traces_sample_rate,
    )
    # A failed task is reported once, with its traceback, by common.tasks_errors; django-q2's
    # own "Failed …" log line would be a second, less useful event.
    ignore_logger("django-q")
