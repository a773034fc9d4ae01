"""Row locks of the payments domain, always taken in one order: reservation, then its payments
(by primary key), then their refunds, then outbox rows. Every writer that needs more than one
of them goes through these helpers, so two writers can never wait on each other in a cycle."""

from __future__ import annotations

from typing import Any

from payments.models import Payment, Refund
from reservations.models import Reservation
from reservations.services import reservation_get_locked


def payment_lock_with_reservation(*, payment_id: Any) -> tuple[Payment, Reservation]:
    reservation_id = Payment.objects.values_list("reservation_id", flat=True).get(pk=payment_id)
    reservation = reservation_get_locked(reservation_id=reservation_id)
    payment = Payment.objects.select_for_update().get(pk=payment_id)
    return payment, reservation


def refund_lock_with_payment(*, refund_id: Any) -> tuple[Refund, Payment, Reservation]:
    payment_id = Refund.objects.values_list("payment_id", flat=True).get(pk=refund_id)
    payment, reservation = payment_lock_with_reservation(payment_id=payment_id)
    refund = Refund.objects.select_for_update().get(pk=refund_id)
    return refund, payment, reservation


def reservation_payments_locked(*, reservation: Reservation) -> list[Payment]:
    """The reservation's payments, locked in primary-key order (the caller holds the reservation)."""
    return list(Payment.objects.select_for_update().filter(reservation=reservation).order_by("pk"))
