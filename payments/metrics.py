"""Payment metrics (F3): Stripe call latency and outcome (observed by the gateway), webhook
results, and payments, refunds and failed inbox events by status (from the database)."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily, Metric

from common.metrics import STRIPE_CALL_SECONDS, STRIPE_CALLS, WEBHOOK_EVENTS
from payments.models import Payment, Refund, StripeEvent, StripeEventStatus


def observe_stripe_latency(operation: str, seconds: float) -> None:
    """payments.gateway.latency_observer: every call that went out."""
    STRIPE_CALL_SECONDS.labels(operation).observe(seconds)


def count_stripe_outcome(operation: str, outcome: str) -> None:
    """payments.gateway.outcome_observer: every call, with the gateway's own outcome kinds (ok,
    declined, rejected, misconfigured, unavailable, breaker_open)."""
    STRIPE_CALLS.labels(operation, outcome).inc()


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
