"""C6: replay (idempotent), discard (with a reason), staff retry-now, the CLI."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from common.exceptions import ApplicationError, InvalidState, VersionConflict
from outbox.models import DeadLetter, DeadLetterStatus, OutboxEvent, OutboxStatus
from outbox.services import dead_letter_discard, dead_letter_replay
from reservations.models import ReservationStatus, SupplierStatus
from suppliers.staff import supplier_booking_retry_now
from tests.support.outbox import drain_all, paid_reservation

pytestmark = pytest.mark.django_db


@pytest.fixture
def dead_booking(fake_supplier, product):
    fake_supplier.set_mode(product.code, "permanent")
    reservation = paid_reservation(product)
    drain_all()
    fake_supplier.set_mode(product.code, "confirm")  # the supplier is fixed
    reservation.refresh_from_db()
    return reservation, DeadLetter.objects.get(reservation=reservation)


def test_replaying_a_dead_letter_twice_books_once(dead_booking, fake_supplier):
    reservation, dead = dead_booking
    event_id = dead.event_id

    first = dead_letter_replay(dead_letter=dead, actor="staff:alice")
    second = dead_letter_replay(dead_letter=dead, actor="staff:bob")
    drain_all()

    assert first.status == second.status == DeadLetterStatus.REPLAYED
    assert second.resolved_by == "staff:alice"
    event = OutboxEvent.objects.get(pk=event_id)  # the same event, not a copy
    assert (event.status, event.attempts) == (OutboxStatus.DELIVERED, 1)
    assert len(event.errors) == 1  # the history of the first life is kept
    reservation.refresh_from_db()
    assert (reservation.status, reservation.supplier_status) == ("CONFIRMED", "CONFIRMED")
    assert len(fake_supplier.bookings(reference=reservation.code)) == 1
    audit = [e.actor for e in reservation.events.filter(reason__startswith="dead letter replayed")]
    assert audit == ["staff:alice"]


def test_replaying_after_the_supplier_booked_returns_the_same_booking(dead_booking, fake_supplier):
    reservation, dead = dead_booking
    dead_letter_replay(dead_letter=dead, actor="staff:alice")
    drain_all()
    # an operator replays the same event again by hand: same key → same booking
    event = OutboxEvent.objects.get(pk=dead.event_id)
    OutboxEvent.objects.filter(pk=event.pk).update(status=OutboxStatus.PENDING, attempts=0)
    drain_all()

    assert len(fake_supplier.bookings(reference=reservation.code)) == 1


def test_discard_needs_a_reason_and_is_audited(dead_booking):
    reservation, dead = dead_booking

    with pytest.raises(ApplicationError):
        dead_letter_discard(dead_letter=dead, actor="staff:alice", reason=" ")
    result = dead_letter_discard(dead_letter=dead, actor="staff:alice", reason="confirmed by phone")

    assert (result.status, result.resolved_by, result.reason) == ("DISCARDED", "staff:alice", "confirmed by phone")
    assert OutboxEvent.objects.get(pk=dead.event_id).status == OutboxStatus.DISCARDED
    entry = reservation.events.get(reason__startswith="dead letter discarded")
    assert entry.actor == "staff:alice"
    assert "confirmed by phone" in entry.reason


def test_a_replayed_dead_letter_cannot_be_discarded(dead_booking):
    _, dead = dead_booking
    dead_letter_replay(dead_letter=dead, actor="staff:alice")

    with pytest.raises(InvalidState):
        dead_letter_discard(dead_letter=dead, actor="staff:bob", reason="too late")


def test_replay_of_a_discarded_dead_letter_does_nothing(dead_booking, fake_supplier):
    reservation, dead = dead_booking
    dead_letter_discard(dead_letter=dead, actor="staff:alice", reason="handled")

    dead_letter_replay(dead_letter=dead, actor="staff:bob")
    drain_all()

    assert OutboxEvent.objects.get(pk=dead.event_id).status == OutboxStatus.DISCARDED
    assert fake_supplier.bookings(reference=reservation.code) == []


def test_staff_retry_now_books_an_on_request_reservation(dead_booking, fake_supplier):
    reservation, dead = dead_booking
    assert (reservation.status, reservation.supplier_status) == ("CONFIRMED_INTERNAL", "ON_REQUEST")

    with pytest.raises(VersionConflict):
        supplier_booking_retry_now(reservation=reservation, actor="staff:alice",
                                   expected_version=reservation.version - 1)
    updated = supplier_booking_retry_now(reservation=reservation, actor="staff:alice",
                                         expected_version=reservation.version)
    assert updated.supplier_status == SupplierStatus.PENDING
    drain_all()

    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.CONFIRMED
    assert DeadLetter.objects.get(pk=dead.pk).status == DeadLetterStatus.REPLAYED
    assert reservation.events.filter(actor="staff:alice", reason="supplier booking retried by staff").exists()
    assert len(fake_supplier.bookings(reference=reservation.code)) == 1


def test_retry_now_is_refused_unless_on_request(fake_supplier, product):
    reservation = paid_reservation(product)

    with pytest.raises(InvalidState):
        supplier_booking_retry_now(reservation=reservation, actor="staff:alice")


def test_deadletters_command_lists_replays_and_discards(dead_booking, fake_supplier, capsys):
    reservation, dead = dead_booking

    call_command("deadletters", "list")
    assert reservation.code in capsys.readouterr().out
    call_command("deadletters", "replay", str(dead.pk), "--actor", "staff:cli")
    assert DeadLetter.objects.get(pk=dead.pk).status == DeadLetterStatus.REPLAYED
    drain_all()
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.CONFIRMED


def test_a_rejection_after_a_staff_retry_stays_in_the_staff_queue(dead_booking, fake_supplier, alerts):
    """CONFIRMED_INTERNAL is never cancelled automatically: a supplier 'no' after staff retried
    leaves it ON_REQUEST (in the queue), says so on the timeline and alerts staff."""
    reservation, _ = dead_booking
    fake_supplier.set_mode(reservation.product.code, "reject")
    supplier_booking_retry_now(reservation=reservation, actor="staff:alice", expected_version=reservation.version)

    drain_all()

    reservation.refresh_from_db()
    assert (reservation.status, reservation.supplier_status) == ("CONFIRMED_INTERNAL", "ON_REQUEST")
    assert reservation.events.filter(reason="supplier rejected the booking (left to staff)").exists()
    assert not OutboxEvent.objects.filter(topic="reservation.compensate", reservation=reservation).exists()
    subjects = [e.payload["subject"] for e in OutboxEvent.objects.filter(
        topic="alert.email", payload__reservation_id=str(reservation.id))]
    assert "Supplier rejected a booking under staff care" in subjects


@pytest.mark.parametrize("supplier_mode", ["confirm", "on_request"])
def test_a_late_supplier_answer_never_overwrites_a_staff_confirmation(dead_booking, fake_supplier, alerts,
                                                                      supplier_mode):
    """Staff retried, the call is out; meanwhile staff confirm by hand (perhaps at another
    supplier). The late answer is recorded and alerted, never applied over the staff's."""
    from django.db import transaction

    from suppliers.booking import SupplierBookHandler
    from suppliers.staff import reservation_confirm_manually

    reservation, _ = dead_booking
    fake_supplier.set_mode(reservation.product.code, supplier_mode)
    reservation = supplier_booking_retry_now(reservation=reservation, actor="staff:alice",
                                             expected_version=reservation.version)
    event = OutboxEvent.objects.get(topic="supplier.book", reservation=reservation)
    handler = SupplierBookHandler()
    answer = handler.perform(event)  # the supplier call, outside any transaction
    reservation_confirm_manually(reservation_id=reservation.id, supplier_reference="ALT-123", actor="staff:bob",
                                 expected_version=reservation.version)

    with transaction.atomic():
        verdict = handler.apply(event, answer, handler.lock(event))

    assert verdict.note == "already confirmed; late supplier answer recorded"
    reservation.refresh_from_db()
    assert (reservation.status, reservation.supplier_reference) == (ReservationStatus.CONFIRMED, "ALT-123")
    assert reservation.events.filter(reason="supplier answered after the booking was confirmed").exists()
    subjects = [e.payload["subject"] for e in OutboxEvent.objects.filter(
        topic="alert.email", payload__reservation_id=str(reservation.id))]
    assert "Supplier answered a booking already confirmed" in subjects
