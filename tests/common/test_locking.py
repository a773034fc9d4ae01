"""common.locking: the one lock order is enforced where locks are taken."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.db.transaction import TransactionManagementError

from common.locking import CompiledLock, LockOrderViolation, lock_rows
from outbox.models import OutboxEvent
from reservations.models import Reservation, ReservationEvent
from reservations.services import reservation_get_locked
from tests.support.outbox import paid_reservation

pytestmark = pytest.mark.django_db


def test_a_reservation_locked_after_its_outbox_event_is_refused(product):
    reservation = paid_reservation(product)

    with transaction.atomic():
        lock_rows(OutboxEvent.objects.filter(reservation=reservation))
        with pytest.raises(LockOrderViolation, match=r"reservations\.reservation locked after outbox\.outboxevent"):
            lock_rows(Reservation.objects.filter(pk=reservation.pk))


def test_locking_in_order_and_locking_a_held_row_again_are_allowed(product):
    reservation = paid_reservation(product)

    with transaction.atomic():
        lock_rows(Reservation.objects.filter(pk=reservation.pk))
        [event] = lock_rows(OutboxEvent.objects.filter(reservation=reservation))
        assert lock_rows(Reservation.objects.filter(pk=reservation.pk)) == [reservation]  # already held
    with transaction.atomic():  # a new transaction starts from nothing
        lock_rows(OutboxEvent.objects.filter(pk=event.pk))



def test_a_compiled_lock_keeps_the_lock_order(product):
    reservation = paid_reservation(product)

    with transaction.atomic():
        lock_rows(OutboxEvent.objects.filter(reservation=reservation))
        with pytest.raises(LockOrderViolation, match=r"reservations\.reservation locked after outbox\.outboxevent"):
            reservation_get_locked(reservation_id=reservation.pk)
    with transaction.atomic():
        assert reservation_get_locked(reservation_id=reservation.pk) == reservation
        assert len(lock_rows(OutboxEvent.objects.filter(reservation=reservation))) == 1
        assert reservation_get_locked(reservation_id=reservation.pk) == reservation  # already held


@pytest.mark.django_db(transaction=True)
def test_a_compiled_lock_is_refused_outside_a_transaction(product):
    reservation = paid_reservation(product)
    with pytest.raises(TransactionManagementError):
        reservation_get_locked(reservation_id=reservation.pk)


def test_a_compiled_lock_of_a_model_without_a_place_in_the_order_is_refused():
    unordered = CompiledLock(lambda pk: ReservationEvent.objects.filter(pk=pk), pk=ReservationEvent._meta.pk)
    with transaction.atomic(), pytest.raises(LockOrderViolation, match="no place"):
        unordered(pk=1)
