"""The one lock order (common/locking.py): a delivery applying a supplier answer and a staff
action on the same reservation lock reservation → dead letter → outbox event, so running them
at the same moment makes one wait for the other, never a deadlock.

Each pair runs in two threads with their own connections, and each transaction is held right
after its first blocking row lock until the other holds its own or waits for one: with the
old order (event row, then reservation) the two deadlock every time. Deadlock retries are off
(one attempt), so a deadlock would surface as an error instead of being healed by a retry."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from common.exceptions import ApplicationError
from outbox.delivery import outbox_claim_due, outbox_deliver
from outbox.models import DeadLetter, OutboxEvent, OutboxStatus
from outbox.services import dead_letter_replay
from reservations.models import Reservation, ReservationStatus, SupplierStatus
from suppliers.booking import SupplierBookHandler
from suppliers.staff import supplier_booking_retry_now
from tests.support.concurrency import run_overlapping
from tests.support.outbox import paid_reservation

pytestmark = pytest.mark.django_db(transaction=True)


def _first_blocking_lock(sql: str) -> bool:
    return "FOR UPDATE" in sql and "SKIP LOCKED" not in sql  # claims never wait


def _in_staff_queue_while_a_worker_holds_its_booking(product) -> tuple[Reservation, OutboxEvent]:
    """ON_REQUEST (staff may act on it) while a worker has its supplier.book event in flight:
    the state in which both sides lock the same reservation and event rows."""
    reservation = paid_reservation(product)
    Reservation.objects.filter(pk=reservation.pk).update(status=ReservationStatus.CONFIRMED_INTERNAL,
                                                         supplier_status=SupplierStatus.ON_REQUEST)
    [claimed] = outbox_claim_due(worker="worker", limit=1)
    return reservation, claimed


def _supplier_already_answered(monkeypatch, event: OutboxEvent) -> None:
    """The worker's supplier call is made now, for real, before the race: the threads then
    meet where the delivery applies the answer (the call's audit row would otherwise wait
    for the staff action's reservation lock, and the transactions never overlap)."""
    answer = SupplierBookHandler().perform(event)
    monkeypatch.setattr(SupplierBookHandler, "perform", lambda self, event: answer)


def _dead_letter(event: OutboxEvent) -> DeadLetter:
    return DeadLetter.objects.create(event=event, topic=event.topic, reservation_id=event.reservation_id,
                                     payload=event.payload, last_error="an earlier life", attempts=1)


def _apply_vs_retry_now(product, monkeypatch):
    reservation, claimed = _in_staff_queue_while_a_worker_holds_its_booking(product)
    _supplier_already_answered(monkeypatch, claimed)
    works = [lambda: outbox_deliver(event=claimed),
             lambda: supplier_booking_retry_now(reservation=reservation, actor="staff:alice")]
    return claimed, works, "delivered"


def _apply_vs_dead_letter_replay(product, monkeypatch):
    _, claimed = _in_staff_queue_while_a_worker_holds_its_booking(product)
    _supplier_already_answered(monkeypatch, claimed)
    dead = _dead_letter(claimed)
    works = [lambda: outbox_deliver(event=claimed),
             lambda: dead_letter_replay(dead_letter=dead, actor="staff:alice")]
    return claimed, works, "delivered"


def _lease_expiry_dead_lettering_vs_retry_now(product, monkeypatch):
    """A claim finds the last attempt's lease expired and dead-letters the event (_finish,
    whose on_dead changes the reservation) while staff retry the booking."""
    reservation, claimed = _in_staff_queue_while_a_worker_holds_its_booking(product)
    OutboxEvent.objects.filter(pk=claimed.pk).update(attempts=5, locked_until=timezone.now() - dt.timedelta(seconds=1))
    works = [lambda: outbox_claim_due(worker="another worker", limit=1),
             lambda: supplier_booking_retry_now(reservation=reservation, actor="staff:alice")]
    return claimed, works, []


@pytest.mark.parametrize("scenario", [_apply_vs_retry_now, _apply_vs_dead_letter_replay,
                                      _lease_expiry_dead_lettering_vs_retry_now])
def test_a_delivery_and_a_staff_action_on_one_reservation_never_deadlock(fake_supplier, product, settings,
                                                                         monkeypatch, scenario):
    settings.DEADLOCK_RETRY_ATTEMPTS = 1
    fake_supplier.set_mode(product.code, "on_request")
    event, works, delivery_result = scenario(product, monkeypatch)

    delivery, staff = run_overlapping(works, point=_first_blocking_lock)

    assert not isinstance(staff, BaseException), staff
    assert not isinstance(staff, ApplicationError)
    assert delivery == delivery_result  # a deadlock victim would answer "retry" (apply failed), or raise
    event.refresh_from_db()
    assert not any("Deadlock" in str(entry.get("error")) for entry in event.errors)
    if delivery_result == []:  # the expired lease was dead-lettered, whichever side went first
        assert DeadLetter.objects.filter(event=event).exclude(last_error="an earlier life").exists()
    else:
        assert event.status in (OutboxStatus.DELIVERED, OutboxStatus.PENDING)  # PENDING: staff re-armed it after
