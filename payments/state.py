"""The payment and refund state machines: the one table of allowed moves each, and the status
sets the rest of the code asks about. Stripe's events arrive late, twice and out of order;
anything not listed here is ignored, so a terminal state never regresses (a `payment_failed`
after `succeeded` changes nothing)."""

from __future__ import annotations

from payments.models import PaymentStatus as P
from payments.models import RefundStatus as R

TRANSITIONS: dict[str, frozenset[str]] = {
    P.PENDING: frozenset({P.PROCESSING, P.REQUIRES_ACTION, P.SUCCEEDED, P.FAILED, P.CANCELED, P.REFUNDED}),
    P.PROCESSING: frozenset({P.REQUIRES_ACTION, P.SUCCEEDED, P.FAILED, P.CANCELED, P.REFUNDED}),
    P.REQUIRES_ACTION: frozenset({P.PROCESSING, P.SUCCEEDED, P.FAILED, P.CANCELED, P.REFUNDED}),
    # Money taken is never ignored: a success reported after a failure or after we closed an
    # attempt (out of order, or an attempt we believed never reached Stripe) counts.
    P.FAILED: frozenset({P.SUCCEEDED, P.REFUNDED}),
    P.CANCELED: frozenset({P.SUCCEEDED, P.REFUNDED}),
    P.SUCCEEDED: frozenset({P.REFUNDED, P.PARTIALLY_REFUNDED, P.DISPUTED}),
    P.PARTIALLY_REFUNDED: frozenset({P.PARTIALLY_REFUNDED, P.REFUNDED, P.DISPUTED}),
    P.DISPUTED: frozenset(),
    # Terminal for Stripe's events: a late `payment_intent.succeeded` after a full refund must
    # not book anything. (A refund that fails at the bank after it succeeded is a correction of
    # the refunded amount, made by the refund service, not a payment event.)
    P.REFUNDED: frozenset(),
}

# While in one of these, the attempt may still charge the card: the in-flight guard stays.
IN_FLIGHT = frozenset({P.PENDING, P.PROCESSING, P.REQUIRES_ACTION})
# Money was captured (and may be refunded).
CAPTURED = frozenset({P.SUCCEEDED, P.PARTIALLY_REFUNDED, P.DISPUTED, P.REFUNDED})
# Captured money that can still be given back through Stripe.
REFUNDABLE = frozenset({P.SUCCEEDED, P.PARTIALLY_REFUNDED})
# The attempt is over without money taken: the customer may pay again.
NOT_CHARGED = frozenset({P.FAILED, P.CANCELED})


def can_transition(from_status: str, to_status: str) -> bool:
    return to_status in TRANSITIONS.get(from_status, frozenset())


# --- refunds (B9) ----------------------------------------------------------------------------

REFUND_TRANSITIONS: dict[str, frozenset[str]] = {
    R.PENDING: frozenset({R.SUCCEEDED, R.FAILED, R.CANCELED}),
    # Stripe: in rare cases a refund fails at the bank after it was reported succeeded.
    R.SUCCEEDED: frozenset({R.FAILED}),
    R.FAILED: frozenset(),
    R.CANCELED: frozenset(),
}
# Stripe's refund status → ours. "requires_action" waits for the customer's details: pending.
STRIPE_REFUND_STATUS: dict[str, str] = {
    "pending": R.PENDING,
    "requires_action": R.PENDING,
    "succeeded": R.SUCCEEDED,
    "failed": R.FAILED,
    "canceled": R.CANCELED,
}
# Money on its way back, or back: counted against what may still be refunded.
REFUND_COUNTED = frozenset({R.PENDING, R.SUCCEEDED})


def refund_can_transition(from_status: str, to_status: str) -> bool:
    return to_status in REFUND_TRANSITIONS.get(from_status, frozenset())
