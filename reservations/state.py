"""The reservation state machine (A4): the one table of allowed transitions."""

from __future__ import annotations

from reservations.models import ReservationStatus as S
from reservations.models import SupplierStatus as SS

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


# The supplier side of a reservation: the one table of allowed moves, enforced by
# reservations.services for every write of `supplier_status`. Writing the same status again
# (to record a booking id, or a rejection of a booking under staff care) is always allowed.
SUPPLIER_TRANSITIONS: dict[str, frozenset[str]] = {
    SS.NOT_REQUESTED: frozenset({SS.PENDING}),
    SS.PENDING: frozenset({SS.CONFIRMED, SS.ON_REQUEST, SS.REJECTED, SS.CANCELLED}),
    # Staff retry or replay (PENDING), confirm by hand or the supplier does late (CONFIRMED).
    SS.ON_REQUEST: frozenset({SS.PENDING, SS.CONFIRMED, SS.CANCELLED}),
    SS.CONFIRMED: frozenset({SS.CANCELLED}),
    SS.REJECTED: frozenset(),
    # A booking made by an unanswered call surfaces after the cancellation: it is recorded,
    # then cancelled in turn.
    SS.CANCELLED: frozenset({SS.CONFIRMED, SS.ON_REQUEST}),
}


def supplier_can_transition(from_status: str, to_status: str) -> bool:
    return to_status == from_status or to_status in SUPPLIER_TRANSITIONS.get(from_status, frozenset())
