"""The reservation state machine (A4): the one table of allowed transitions."""

from __future__ import annotations

from reservations.models import ReservationStatus as S

TRANSITIONS: dict[str, frozenset[str]] = {
    S.PENDING_PAYMENT: frozenset({S.PAID, S.CANCELLED, S.EXPIRED}),
    # Terminal for the customer. A payment that succeeds after expiry or cancellation (a late
    # webhook) is money taken for a reservation that no longer holds capacity: the payments
    # flow refunds it; it never revives the reservation.
    S.EXPIRED: frozenset(),
    S.PAID: frozenset({S.CONFIRMED, S.CONFIRMED_INTERNAL, S.CANCELLED}),
    S.CONFIRMED_INTERNAL: frozenset({S.CONFIRMED, S.CANCELLED}),
    S.CONFIRMED: frozenset({S.CANCELLED}),
    S.CANCELLED: frozenset(),
}

TERMINAL = frozenset({S.CANCELLED, S.EXPIRED})
# States in which the reservation still occupies capacity.
HOLDING = frozenset({S.PENDING_PAYMENT, S.PAID, S.CONFIRMED, S.CONFIRMED_INTERNAL})


def can_transition(from_status: str, to_status: str) -> bool:
    return to_status in TRANSITIONS.get(from_status, frozenset())
