"""Payment metrics (F3): Stripe call latency and outcome (observed by the gateway), webhook
results, and payments, refunds and failed inbox events by status (from the database)."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import stripe
from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily, Metric

from common.metrics import STRIPE_CALL_SECONDS, STRIPE_CALLS, WEBHOOK_EVENTS
from payments.models import Payment, Refund, StripeEvent, StripeEventStatus


def stripe_call_outcome(exc: BaseException | None) -> str:
    if exc is None:
        return "ok"
    if isinstance(exc, stripe.CardError):
        return "card_declined"
    if isinstance(exc, stripe.APIConnectionError):
        return "unavailable"
    if isinstance(exc, stripe.RateLimitError):
        return "rate_limited"
    if isinstance(exc, stripe.StripeError):
        status = exc.http_status
        return "server_error" if status is None or status >= 500 else "rejected"
    return "error"


def observe_stripe_call(operation: str, seconds: float) -> None:
    """payments.gateway.latency_observer: called in the `finally` of every call that went
    out, so the exception in flight (if any) is the call's outcome."""
    STRIPE_CALL_SECONDS.labels(operation).observe(seconds)
    STRIPE_CALLS.labels(operation, stripe_call_outcome(sys.exc_info()[1])).inc()


def count_webhook(result: str) -> None:
    WEBHOOK_EVENTS.labels(result).inc()


def payment_gauges() -> Iterator[Metric]:
    payments = GaugeMetricFamily("reserve_payments", "Payments by status.", labels=["status"])
    for row in Payment.objects.values("status").annotate(n=Count("id")):
        payments.add_metric([row["status"]], row["n"])
    yield payments
    refunds = GaugeMetricFamily("reserve_refunds", "Refunds by status.", labels=["status"])
    for row in Refund.objects.values("status").annotate(n=Count("id")):
        refunds.add_metric([row["status"]], row["n"])
    yield refunds
    yield GaugeMetricFamily("reserve_stripe_events_failed", "Stripe inbox events that failed to apply "
                            "(Stripe retries; staff may re-process).",
                            value=StripeEvent.objects.filter(status=StripeEventStatus.FAILED).count())
