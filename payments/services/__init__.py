"""Payment services. Callers import from here: `from payments.services import payment_refund`."""

from payments.services.pay import PayOutcome, reservation_pay
from payments.services.reconcile import payments_reconcile
from payments.services.refunds import (
    payment_cancel_open_intent,
    payment_refund,
    payment_refundable_amount,
    reservation_cancel_paid,
)
from payments.services.webhooks import IngestResult, stripe_event_ingest, stripe_event_reprocess

__all__ = [
    "IngestResult",
    "PayOutcome",
    "payment_cancel_open_intent",
    "payment_refund",
    "payment_refundable_amount",
    "payments_reconcile",
    "reservation_cancel_paid",
    "reservation_pay",
    "stripe_event_ingest",
    "stripe_event_reprocess",
]
