"""Compensation (C5) with the real local Stripe server: a supplier rejection refunds and
cancels; a paid cancellation refunds and cancels the supplier booking through the outbox."""

from __future__ import annotations

import pytest
from django.db import transaction

from outbox.delivery import outbox_drain_once
from outbox.models import OutboxEvent, OutboxStatus
from payments.models import Payment, PaymentStatus, Refund, RefundStatus
from reservations.models import ReservationStatus, SupplierStatus
from tests.factories import ReservationFactory
from tests.payments.conftest import create_payment_method, new_key, pay, stripe_admin
from tests.support.outbox import drain_all

pytestmark = pytest.mark.django_db


@pytest.fixture
def paid(api, customer, product, fake_supplier, stripe_local):
    """Pay through the real API: PAID, supplier.book queued with the payment."""

    def make(mode: str = "confirm"):
        fake_supplier.set_mode(product.code, mode)
        reservation = ReservationFactory(user=customer, product=product)
        response = pay(api, reservation, key=new_key(), payment_method=create_payment_method(stripe_local))
        assert response.status_code == 200, response.content
        reservation.refresh_from_db()
        return reservation

    return make


def _stripe_refunded(base_url: str, payment: Payment) -> int:
    intent = stripe_admin(base_url).v1.payment_intents.retrieve(payment.stripe_payment_intent_id)
    charges = intent.to_dict()["charges"]["data"]
    return sum(c["amount_refunded"] for c in charges)


def test_supplier_rejection_refunds_cancels_and_emails_the_customer(paid, stripe_local, mailoutbox, fake_supplier):
    reservation = paid("reject")

    drain_all()

    reservation.refresh_from_db()
    payment = Payment.objects.get(reservation=reservation)
    assert (reservation.status, reservation.supplier_status) == ("CANCELLED", "REJECTED")
    assert payment.status == PaymentStatus.REFUNDED
    assert _stripe_refunded(stripe_local, payment) == reservation.amount
    [email] = mailoutbox
    assert email.to == [reservation.guest_email]
    assert reservation.code in email.subject
    assert fake_supplier.bookings() == []
    timeline = [(e.to_status, e.actor) for e in reservation.events.order_by("id")]
    assert ("CANCELLED", "system") in timeline


def test_compensation_refunds_once_even_if_delivered_twice(paid, stripe_local):
    reservation = paid("reject")
    drain_all()
    event = OutboxEvent.objects.get(topic="reservation.compensate", reservation=reservation)
    OutboxEvent.objects.filter(pk=event.pk).update(status=OutboxStatus.PENDING, attempts=0)

    drain_all()

    payment = Payment.objects.get(reservation=reservation)
    assert payment.refunds.count() == 1
    assert _stripe_refunded(stripe_local, payment) == reservation.amount


def test_compensation_refunds_what_is_left_beside_a_refund_already_on_its_way(paid, stripe_local):
    """Staff decided a partial refund that is still PENDING when the supplier rejects: the
    compensation refunds the rest, the pending one goes out by its own event, and the customer
    gets back the whole amount, once."""
    from payments.services.locks import payment_lock_with_reservation
    from payments.services.refunds import refund_record

    reservation = paid("reject")
    payment = Payment.objects.get(reservation=reservation)
    with transaction.atomic():
        locked, locked_reservation = payment_lock_with_reservation(payment_id=payment.pk)
        goodwill = refund_record(payment=locked, reservation=locked_reservation, amount=1000, reason="goodwill",
                                 actor="staff:alice", idempotency_key="goodwill-1", dispatch=False)

    drain_all()

    reservation.refresh_from_db()
    goodwill.refresh_from_db()
    assert reservation.status == ReservationStatus.CANCELLED
    assert goodwill.status == RefundStatus.SUCCEEDED
    rest = payment.refunds.exclude(pk=goodwill.pk).get()
    assert (rest.amount, rest.status) == (payment.amount - 1000, RefundStatus.SUCCEEDED)
    assert _stripe_refunded(stripe_local, payment) == reservation.amount
    cancelled = reservation.events.get(from_status=ReservationStatus.PAID, to_status=ReservationStatus.CANCELLED)
    assert cancelled.data["refund_amount"] == payment.amount - 1000


def test_cancelling_a_confirmed_reservation_refunds_and_cancels_the_supplier_booking(paid, api, stripe_local,
                                                                                  fake_supplier):
    reservation = paid()
    drain_all()
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.CONFIRMED

    response = api.post(f"/api/v1/reservations/{reservation.id}/cancel/", {}, format="json")
    assert response.status_code == 200, response.content
    drain_all()

    reservation.refresh_from_db()
    assert (reservation.status, reservation.supplier_status) == ("CANCELLED", SupplierStatus.CANCELLED)
    [booking] = fake_supplier.bookings(reference=reservation.code)
    assert booking["status"] == "CANCELLED"
    payment = Payment.objects.get(reservation=reservation)
    assert _stripe_refunded(stripe_local, payment) == reservation.amount


def test_cancelling_before_the_supplier_was_called_books_nothing(paid, api, fake_supplier):
    reservation = paid()

    response = api.post(f"/api/v1/reservations/{reservation.id}/cancel/", {}, format="json")
    assert response.status_code == 200, response.content
    drain_all()

    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.CANCELLED
    assert fake_supplier.state()["requests"] == {}
    assert set(OutboxEvent.objects.filter(reservation=reservation).values_list("status", flat=True)) == {
        OutboxStatus.DELIVERED}


def test_a_booking_made_by_an_unanswered_call_is_cancelled_after_the_customer_cancels(
        paid, api, fake_supplier, supplier, settings):
    supplier.timeout_seconds = 0.3
    supplier.save()
    reservation = paid("slow:1.5:1")
    assert outbox_drain_once().retried == 1  # the call timed out, but the supplier booked

    response = api.post(f"/api/v1/reservations/{reservation.id}/cancel/", {}, format="json")
    assert response.status_code == 200, response.content
    drain_all()

    reservation.refresh_from_db()
    [booking] = fake_supplier.bookings(reference=reservation.code)
    assert booking["status"] == "CANCELLED"
    assert reservation.supplier_booking_id == booking["booking_id"]
    assert (reservation.status, reservation.supplier_status) == ("CANCELLED", "CANCELLED")


def test_compensation_cancels_at_once_and_the_refund_waits_for_stripe(paid, stripe_local, settings):
    from tests.support.servers import closed_port

    reservation = paid("reject")
    settings.STRIPE_API_BASE = f"http://127.0.0.1:{closed_port()}"

    drain_all(skip_backoff=False, max_rounds=4)  # book: rejected; compensate: decided; refund: Stripe down

    reservation.refresh_from_db()
    assert (reservation.status, reservation.supplier_status) == ("CANCELLED", "REJECTED")
    [refund] = Refund.objects.filter(payment__reservation=reservation)
    assert refund.status == RefundStatus.PENDING
    send = OutboxEvent.objects.get(topic="payment.refund")
    assert send.status == OutboxStatus.PENDING
    assert send.last_error.startswith("refund: Stripe unavailable")

    settings.STRIPE_API_BASE = stripe_local
    drain_all()

    refund.refresh_from_db()
    assert refund.status == RefundStatus.SUCCEEDED
    assert _stripe_refunded(stripe_local, Payment.objects.get(reservation=reservation)) == reservation.amount
