"""C7 No orphan bookings: a supplier cancellation whose booking id is unknown (every book call
went unanswered) first asks again with the booking's idempotency key to learn it, then
cancels; when it still learns nothing, staff get a dead letter and an alert. Against the fake
supplier over real HTTP (its `slow` mode books, then answers after the caller gave up)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction
from django.utils import timezone

from outbox.delivery import outbox_claim_due
from outbox.models import DeadLetter, DeadLetterStatus, OutboxEvent, OutboxStatus
from outbox.services import outbox_enqueue
from reservations.models import ReservationStatus, SupplierStatus
from reservations.services import reservation_get_locked, reservation_transition
from suppliers.booking import CancelAttempt, Skipped, SupplierBookHandler, SupplierCancelHandler
from suppliers.clients import BookingRequest
from suppliers.clients.http import HttpSupplierAdapter
from suppliers.models import SupplierRequest
from tests.factories import ReservationFactory
from tests.payments.conftest import create_payment_method, new_key, pay
from tests.support.outbox import drain_all, paid_reservation

pytestmark = pytest.mark.django_db


@pytest.fixture
def unanswered_bookings(api, customer, product, supplier, fake_supplier, stripe_local, settings):
    """Paid through the API; then every book call (OUTBOX_MAX_ATTEMPTS = 2) times out: the
    event is dead-lettered and the reservation waits for staff (CONFIRMED_INTERNAL / ON_REQUEST)."""
    settings.OUTBOX_MAX_ATTEMPTS = 2
    supplier.timeout_seconds = 0.3
    supplier.save()

    def make(mode: str):
        fake_supplier.set_mode(product.code, mode)
        reservation = ReservationFactory(user=customer, product=product)
        response = pay(api, reservation, key=new_key(), payment_method=create_payment_method(stripe_local))
        assert response.status_code == 200, response.content
        drain_all()
        reservation.refresh_from_db()
        assert (reservation.status, reservation.supplier_status) == ("CONFIRMED_INTERNAL", "ON_REQUEST")
        assert reservation.supplier_booking_id == ""
        return reservation

    return make


def _cancel(api, reservation) -> None:
    response = api.post(f"/api/v1/reservations/{reservation.id}/cancel/", {}, format="json")
    assert response.status_code == 200, response.content
    drain_all()
    reservation.refresh_from_db()


def test_a_booking_made_by_calls_that_all_timed_out_is_found_by_its_key_and_cancelled(
        unanswered_bookings, api, fake_supplier):
    reservation = unanswered_bookings("slow:1.5:2")  # books on the first call; both answers come too late
    [booking] = fake_supplier.bookings(reference=reservation.code)
    assert booking["status"] == "CONFIRMED"  # the supplier holds a booking we know no id of

    _cancel(api, reservation)

    [booking] = fake_supplier.bookings(reference=reservation.code)  # still one: the same key found it
    assert booking["status"] == "CANCELLED"
    assert fake_supplier.state()["key_requests"][f"reservation:{reservation.id}:book"] == 3
    assert (reservation.status, reservation.supplier_status) == (ReservationStatus.CANCELLED,
                                                                 SupplierStatus.CANCELLED)
    assert reservation.supplier_booking_id == booking["booking_id"]
    cancel = OutboxEvent.objects.get(topic="supplier.cancel", reservation=reservation)
    assert cancel.status == OutboxStatus.DELIVERED
    calls = list(SupplierRequest.objects.filter(outbox_event_id=cancel.id).values_list("operation", "outcome"))
    assert calls == [("book", "confirmed"), ("cancel", "cancelled")]
    assert reservation.events.filter(reason="supplier booking found by asking again with its idempotency key").exists()


def test_when_asking_again_tells_nothing_staff_get_a_dead_letter_and_an_orphan_alert(
        unanswered_bookings, api, fake_supplier, alerts):
    reservation = unanswered_bookings("fail")  # 503 twice: the supplier may or may not have booked
    fake_supplier.set_mode(reservation.product.code, "permanent")  # and now refuses the request

    _cancel(api, reservation)

    assert reservation.status == ReservationStatus.CANCELLED
    cancel = OutboxEvent.objects.get(topic="supplier.cancel", reservation=reservation)
    [dead] = DeadLetter.objects.filter(event=cancel)
    assert dead.status == DeadLetterStatus.OPEN
    assert dead.last_error.startswith("booking id unknown, asking again failed: book: invalid_request")
    alert = OutboxEvent.objects.get(topic="alert.email", payload__subject="Supplier booking may be orphaned")
    assert reservation.code in alert.payload["body"]
    assert f"reservation:{reservation.id}:book" in alert.payload["body"]
    assert "DELETE /bookings" not in fake_supplier.state()["requests"]


@pytest.mark.parametrize(("first_call", "asks_again"), [
    ("fail", True),  # a 5xx may have booked
    ("breaker_open", False),  # never left this process
    ("reject", False),  # no availability: no booking exists
    ("permanent", False),  # a 4xx refusal: no booking exists
])
def test_only_a_book_call_that_may_have_reached_the_supplier_is_asked_again(
        fake_supplier, product, supplier, first_call, asks_again):
    reservation = paid_reservation(product)
    book = OutboxEvent.objects.get(reservation=reservation)
    breaker = HttpSupplierAdapter(supplier)._breaker()
    if first_call == "breaker_open":
        breaker.open()
    else:
        fake_supplier.set_mode(product.code, first_call)
    try:
        SupplierBookHandler().perform(book)  # the real first call, audited
    finally:
        breaker.close()
    fake_supplier.set_mode(product.code, "confirm")
    posts = fake_supplier.post_count()
    with transaction.atomic():
        cancel = outbox_enqueue(topic="supplier.cancel", dedup_key=f"supplier.cancel:{reservation.id}",
                                payload={"reservation_id": str(reservation.id)}, reservation=reservation)

    result = SupplierCancelHandler().perform(cancel)

    if asks_again:
        assert isinstance(result, CancelAttempt)
        assert (result.lookup.outcome, result.cancel.outcome) == ("confirmed", "cancelled")
        assert fake_supplier.post_count() == posts + 1
        assert [b["status"] for b in fake_supplier.bookings(reference=reservation.code)] == ["CANCELLED"]
    else:
        assert result == Skipped("no supplier booking to cancel")
        assert fake_supplier.post_count() == posts


def test_a_booking_made_by_a_worker_killed_before_its_audit_is_cancelled_with_the_reservation(
        product, fake_supplier, settings):
    """The worker called the supplier (which booked) and died before writing the audit row. The
    customer cancels meanwhile. The expired lease is the evidence that a call may have been made:
    the takeover asks again with the booking's key, learns the booking, and cancels it."""
    reservation = paid_reservation(product)
    [claimed] = outbox_claim_due(worker="doomed", limit=1)
    booking = BookingRequest(reference=reservation.code, product_code=product.code,
                             date=reservation.date.isoformat(), quantity=1, guest_name="Ada")
    booked = HttpSupplierAdapter(product.supplier).book(booking=booking,
                                                        idempotency_key=f"reservation:{reservation.id}:book")
    assert booked.booking_id  # the dead worker's call: the supplier booked, no audit row was written
    with transaction.atomic():
        reservation_transition(reservation=reservation_get_locked(reservation_id=reservation.id),
                               to_status=ReservationStatus.CANCELLED, actor="customer", reason="cancelled")
    OutboxEvent.objects.filter(pk=claimed.pk).update(locked_until=timezone.now() - dt.timedelta(seconds=1))

    drain_all()

    [booking] = fake_supplier.bookings(reference=reservation.code)
    reservation.refresh_from_db()
    assert booking["status"] == "CANCELLED"
    assert reservation.supplier_status == SupplierStatus.CANCELLED
