"""Row locks of the payments domain, in the one lock order of common/locking.py: reservation,
then its payments (by primary key), then their refunds, then outbox rows. Every writer that
needs more than one of them goes through these helpers, so two writers can never wait on each
other in a cycle (and lock_rows refuses a lock taken out of order)."""

from __future__ import annotations

from typing import Any

from common.compiled import CompiledQuery
from common.locking import CompiledLock, lock_rows
from payments.models import Payment, Refund
from reservations.models import Reservation
from reservations.services import reservation_get_locked


def payment_lock_with_reservation(*, payment_id: Any, reservation_id: Any = None) -> tuple[Payment, Reservation]:
    """The reservation, then all of its payments (one query; the caller usually needs to know
    whether another attempt already captured), the one asked for returned. The reservation
    remembers the payments it was locked with (`payments_loaded`): its body costs no query.
    A caller that knows the reservation (the pay request) saves the lookup of its id."""
    if reservation_id is None:
        reservation_id = Payment.objects.values_list("reservation_id", flat=True).get(pk=payment_id)
    reservation = reservation_get_locked(reservation_id=reservation_id)
    payments = reservation_payments_locked(reservation=reservation)
    payment = next((p for p in payments if str(p.pk) == str(payment_id)), None)
    if payment is None:
        raise Payment.DoesNotExist(f"payment {payment_id} of reservation {reservation_id}")
    reservation.payments_loaded(payments)
    return payment, reservation


def refund_lock_with_payment(*, refund_id: Any) -> tuple[Refund, Payment, Reservation]:
    payment_id = Refund.objects.values_list("payment_id", flat=True).get(pk=refund_id)
    payment, reservation = payment_lock_with_reservation(payment_id=payment_id)
    [refund] = lock_rows(Refund.objects.filter(pk=refund_id))
    return refund, payment, reservation


def _payments_of(reservation: Any) -> Any:
    return Payment.objects.filter(reservation_id=reservation)


# Taken twice by every pay and once by every webhook: compiled once (common.compiled).
_PAYMENTS_LOCK = CompiledLock(_payments_of, reservation=Payment._meta.get_field("reservation"))
_PAYMENTS_OF = CompiledQuery(_payments_of, reservation=Payment._meta.get_field("reservation"))


def reservation_payments_locked(*, reservation: Reservation) -> list[Payment]:
    """The reservation's payments, locked in primary-key order (the caller holds the reservation)."""
    return _PAYMENTS_LOCK(reservation=reservation.pk)


def reservation_payments(*, reservation: Reservation) -> list[Payment]:
    """The reservation's payments, read without locking them: the caller holds the reservation,
    and no attempt starts or ends without that lock."""
    return _PAYMENTS_OF.execute(reservation=reservation.pk)
