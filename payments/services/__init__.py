"""Payment services. Callers import from here: `from payments.services import payment_refund`."""

from payments.services.cancel import CancelOutcome, reservation_cancel
from payments.services.pay import PayOutcome, reservation_pay
from payments.services.reconcile import payments_reconcile
from payments.services.refunds import (
    payment_refund,
    payment_refundable_amount,
    refund_record_external,
    refund_retry,
    refunds_needing_attention,
)
from payments.services.webhooks import IngestResult, stripe_event_ingest, stripe_event_reprocess

__all__ = [
    "CancelOutcome",
    "IngestResult",
    "PayOutcome",
    "payment_refund",
    "payment_refundable_amount",
    "payments_reconcile",
    "refund_record_external",
    "refund_retry",
    "refunds_needing_attention",
    "reservation_cancel",
    "reservation_pay",
    "stripe_event_ingest",
    "stripe_event_reprocess",
]
