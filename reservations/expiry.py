"""Unpaid holds expire (A2): PENDING_PAYMENT past `expires_at` → EXPIRED, which releases the
capacity (reservation_transition does); in the same transaction the payments app's transition
hook queues the cancellation of any open PaymentIntent (an outbox event: if the intent
succeeded meanwhile, payments applies that truth and refunds the late money).

Scheduled every minute.

A reservation whose payment attempt is in flight is left alone for a while: the customer
started paying before the hold ran out and Stripe is answering (up to 4 x the Stripe timeout)
or asking for 3-D Secure. Expiring it then would charge and refund the customer. Past that
grace the attempt is stale (the reconciler settles it) and the hold expires as usual."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from common.db import retry_on_deadlock
from reservations.models import Reservation, ReservationStatus
from reservations.services import reservation_get_locked, reservation_transition

logger = logging.getLogger("reserve.reservations")

BATCH = 200


# What may keep an expired hold for now, registered by the apps above this one (payments: an
# attempt in flight). A guard runs inside the expiry's transaction, the reservation locked.
ExpiryGuard = Callable[[Reservation], bool]
_guards: list[ExpiryGuard] = []


def register_expiry_guard(guard: ExpiryGuard) -> None:
    if guard not in _guards:
        _guards.append(guard)


def in_flight_grace() -> dt.timedelta:
    # The same bound after which the reconciler treats an attempt as abandoned.
    return dt.timedelta(seconds=max(settings.IDEMPOTENCY_LOCK_STALE_SECONDS, 4 * settings.STRIPE_TIMEOUT_SECONDS))


@retry_on_deadlock
def _expire_one(reservation_id: object) -> Reservation | None:
    with transaction.atomic(durable=True):
        reservation = reservation_get_locked(reservation_id=reservation_id)
        # Re-checked under the lock: a payment may have landed since the scan.
        if reservation.status != ReservationStatus.PENDING_PAYMENT or not reservation.expires_at \
                or reservation.expires_at > timezone.now():
            return None
        if any(guard(reservation) for guard in _guards):
            return None
        reservation_transition(reservation=reservation, to_status=ReservationStatus.EXPIRED, actor="system",
                               reason="payment hold expired", data={"expires_at": reservation.expires_at.isoformat()})
    return reservation


def _holds_run_out(now: dt.datetime) -> QuerySet[Reservation, uuid.UUID]:
    """Unpaid holds past their time, the oldest first: read on the (status, expires_at) index
    (migration 0008), since every reservation ever made keeps an expires_at in the past."""
    return (Reservation.objects.filter(status=ReservationStatus.PENDING_PAYMENT, expires_at__lte=now)
            .order_by("expires_at").values_list("id", flat=True))


def reservations_expire_due(*, limit: int = BATCH) -> int:
    """Expire what is due; returns how many reservations expired."""
    due = list(_holds_run_out(timezone.now())[:limit])
    expired = 0
    for reservation_id in due:
        if _expire_one(reservation_id) is not None:
            expired += 1
    if expired:
        logger.info("reservations expired", extra={"count": expired})
    return expired
