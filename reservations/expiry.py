"""Unpaid holds expire (A2): PENDING_PAYMENT past `expires_at` → EXPIRED, which releases the
capacity (reservation_transition does), then any open PaymentIntent is cancelled.

Scheduled every minute by `setup_schedules`. The Stripe call happens after the transaction:
if the intent succeeded meanwhile, payments applies that truth (and refunds the late money)."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from common.db import retry_on_deadlock
from reservations.models import Reservation, ReservationStatus
from reservations.services import reservation_get_locked, reservation_transition

logger = logging.getLogger("reserve.reservations")

BATCH = 200


@retry_on_deadlock
def _expire_one(reservation_id: object) -> Reservation | None:
    with transaction.atomic(durable=True):
        reservation = reservation_get_locked(reservation_id=reservation_id)
        # Re-checked under the lock: a payment may have landed since the scan.
        if reservation.status != ReservationStatus.PENDING_PAYMENT or not reservation.expires_at \
                or reservation.expires_at > timezone.now():
            return None
        reservation_transition(reservation=reservation, to_status=ReservationStatus.EXPIRED, actor="system",
                               reason="payment hold expired", data={"expires_at": reservation.expires_at.isoformat()})
    return reservation


def reservations_expire_due(*, limit: int = BATCH) -> int:
    """Expire what is due; returns how many reservations expired."""
    from payments.services import payment_cancel_open_intent

    due = list(Reservation.objects.filter(status=ReservationStatus.PENDING_PAYMENT, expires_at__lte=timezone.now())
               .order_by("expires_at").values_list("id", flat=True)[:limit])
    expired = 0
    for reservation_id in due:
        reservation = _expire_one(reservation_id)
        if reservation is None:
            continue
        expired += 1
        try:
            payment_cancel_open_intent(reservation=reservation)
        except Exception:  # Stripe down: the payments reconciler settles the intent later
            logger.warning("could not cancel the open PaymentIntent of an expired reservation",
                           extra={"reservation_id": str(reservation.id)}, exc_info=True)
    if expired:
        logger.info("reservations expired", extra={"count": expired})
    return expired
