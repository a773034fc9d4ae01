"""The payment state machine: the one table of allowed moves. Stripe's events arrive late,
twice and out of order; anything not listed here is ignored, so a terminal state never
regresses (a `payment_failed` after `succeeded` changes nothing)."""

from __future__ import annotations

from payments.models import PaymentStatus as P

TRANSITIONS: dict[str, frozenset[str]] = {
    P.PENDING: frozenset({P.PROCESSING, P.REQUIRES_ACTION, P.SUCCEEDED, P.FAILED, P.CANCELED}),
    P.PROCESSING: frozenset({P.REQUIRES_ACTION, P.SUCCEEDED, P.FAILED, P.CANCELED}),
    P.REQUIRES_ACTION: frozenset({P.PROCESSING, P.SUCCEEDED, P.FAILED, P.CANCELED}),
    # Money taken is never ignored: a success reported after a failure (out of order) counts.
    P.FAILED: frozenset({P.SUCCEEDED}),
    P.CANCELED: frozenset(),
    P.SUCCEEDED: frozenset({P.REFUNDED, P.PARTIALLY_REFUNDED, P.DISPUTED}),
    P.PARTIALLY_REFUNDED: frozenset({P.PARTIALLY_REFUNDED, P.REFUNDED, P.DISPUTED}),
    P.DISPUTED: frozenset(),
    P.REFUNDED: frozenset(),
}

# While in one of these, the attempt may still charge the card: the in-flight guard stays.
IN_FLIGHT = frozenset({P.PENDING, P.PROCESSING, P.REQUIRES_ACTION})
# Money was captured (and may be refunded).
CAPTURED = frozenset({P.SUCCEEDED, P.PARTIALLY_REFUNDED, P.DISPUTED, P.REFUNDED})


def can_transition(from_status: str, to_status: str) -> bool:
    return to_status in TRANSITIONS.get(from_status, frozenset())
