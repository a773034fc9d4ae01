"""common.locking: the one lock order is enforced where locks are taken."""

from __future__ import annotations

import pytest
from django.db import transaction

from common.locking import LockOrderViolation, lock_rows
from outbox.models import OutboxEvent
from reservations.models import Reservation
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

