"""Cancelling a reservation (A6, B10): the decision is recorded first, with the refund, the
supplier cancellation, the intent cancellation and the guest e-mail as outbox events; the
answer is 200 when the refund is done and 202 while Stripe is unavailable."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from common.exceptions import InvalidState, VersionConflict
from outbox.models import OutboxEvent
from payments.exceptions import CancellationClosed
from payments.models import Payment, PaymentStatus, RefundStatus
from payments.services import reservation_cancel
from reservations.models import ReservationStatus
from tests.payments.conftest import REQUIRES_3DS, create_payment_method, intents_for, new_key, pay, stripe_admin
from tests.support.outbox import drain_all
from tests.support.servers import closed_port

pytestmark = pytest.mark.django_db


@pytest.fixture
def paid(api, reservation, visa) -> Payment:
    assert pay(api, reservation, key=new_key(), payment_method=visa).status_code == 200
    return Payment.objects.get(reservation=reservation)


def _cancel(api, reservation, **body):
    return api.post(f"/api/v1/reservations/{reservation.id}/cancel/", body, format="json")


def _stripe_refunded(base_url: str, payment: Payment) -> int:
    intent = stripe_admin(base_url).v1.payment_intents.retrieve(payment.stripe_payment_intent_id)
    return sum(c["amount_refunded"] for c in intent.to_dict()["charges"]["data"])


def test_a_paid_cancel_is_recorded_refunded_at_once_and_answered_200(api, paid, reservation, stripe_local):
    response = _cancel(api, reservation, reason="plans changed")

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["payment"]["status"]) == ("CANCELLED", "REFUNDED")
    assert _stripe_refunded(stripe_local, paid) == paid.amount
    decision = reservation.events.get(from_status=ReservationStatus.PAID, to_status=ReservationStatus.CANCELLED)
    assert (decision.actor, decision.reason) == ("customer", "plans changed")
    assert decision.data["refund_amount"] == paid.amount
    topics = set(OutboxEvent.objects.filter(dedup_key__contains=str(reservation.id)).values_list("topic", flat=True))
    assert {"supplier.cancel", "email.customer"} <= topics


def test_while_stripe_is_down_the_cancel_is_decided_answered_202_and_completed_later(
        api, paid, reservation, settings, stripe_local, strict_stripe):
    settings.STRIPE_API_BASE = f"http://127.0.0.1:{closed_port()}"

    response = _cancel(api, reservation)

    assert response.status_code == 202, response.content
    assert response.json()["status"] == "CANCELLED"
    refund = paid.refunds.get()
    assert refund.status == RefundStatus.PENDING

    settings.STRIPE_API_BASE = stripe_local
    drain_all()

    refund.refresh_from_db()
    paid.refresh_from_db()
    assert refund.status == RefundStatus.SUCCEEDED
    assert (paid.status, paid.refunded_amount) == (PaymentStatus.REFUNDED, paid.amount)
    assert [s.idempotency_key for s in strict_stripe.seen("POST", "/v1/refunds")] == [f"refund:{refund.id}"]
    assert _stripe_refunded(stripe_local, paid) == paid.amount


def test_a_second_cancel_is_refused_and_refunds_nothing_more(api, paid, reservation, stripe_local):
    assert _cancel(api, reservation).status_code == 200

    again = _cancel(api, reservation)

    assert again.status_code == 409
    assert again.json()["code"] == "invalid_state"
    assert paid.refunds.count() == 1
    assert _stripe_refunded(stripe_local, paid) == paid.amount


def test_a_stale_version_cancels_and_refunds_nothing(paid, reservation):
    with pytest.raises(VersionConflict):
        reservation_cancel(reservation_id=reservation.id, actor="staff:bob", reason="x", expected_version=1,
                           by_staff=True)
    paid.refresh_from_db()
    reservation.refresh_from_db()
    assert (reservation.status, paid.status) == (ReservationStatus.PAID, PaymentStatus.SUCCEEDED)
    assert not paid.refunds.exists()


def test_after_the_cutoff_a_customer_cannot_cancel_but_staff_can(api, customer, product, visa):
    from tests.factories import ReservationFactory

    product.cancellation_cutoff_hours = 48
    product.save(update_fields=["cancellation_cutoff_hours"])
    soon = ReservationFactory(user=customer, product=product, date=timezone.localdate() + dt.timedelta(days=1))
    assert pay(api, soon, key=new_key(), payment_method=visa).status_code == 200

    response = _cancel(api, soon)

    assert response.status_code == 409, response.content
    assert response.json()["code"] == "cancellation_closed"
    soon.refresh_from_db()
    assert soon.status == ReservationStatus.PAID
    outcome = reservation_cancel(reservation_id=soon.id, actor="staff:alice", reason="goodwill", by_staff=True)
    assert (outcome.reservation.status, outcome.done) == (ReservationStatus.CANCELLED, True)


def test_before_the_cutoff_a_customer_cancels(api, customer, product, visa):
    from tests.factories import ReservationFactory

    product.cancellation_cutoff_hours = 48
    product.save(update_fields=["cancellation_cutoff_hours"])
    later = ReservationFactory(user=customer, product=product, date=timezone.localdate() + dt.timedelta(days=5))
    assert pay(api, later, key=new_key(), payment_method=visa).status_code == 200

    assert _cancel(api, later).status_code == 200


def test_the_cutoff_is_hours_before_the_service_date(product):
    from payments.services.cancel import cancellation_cutoff

    product.cancellation_cutoff_hours = 24
    assert cancellation_cutoff(product=product, date=dt.date(2030, 5, 10)) == dt.datetime(2030, 5, 9, tzinfo=dt.UTC)
    product.cancellation_cutoff_hours = None
    assert cancellation_cutoff(product=product, date=dt.date(2030, 5, 10)) is None


def test_an_unpaid_cancel_cancels_the_open_payment_intent(api, reservation, stripe_local):
    pm = create_payment_method(stripe_local, REQUIRES_3DS)
    assert pay(api, reservation, key=new_key(), payment_method=pm).status_code == 202

    response = _cancel(api, reservation)
    assert response.status_code == 200
    assert response.json()["status"] == "CANCELLED"
    drain_all()

    payment = Payment.objects.get(reservation=reservation)
    assert (payment.status, payment.in_flight_for) == (PaymentStatus.CANCELED, None)
    [intent] = intents_for(stripe_local, reservation.id)
    assert intent.status == "canceled"


def test_cancelling_an_ended_reservation_is_invalid(reservation):
    type(reservation).objects.filter(pk=reservation.pk).update(status=ReservationStatus.EXPIRED)
    with pytest.raises(InvalidState):
        reservation_cancel(reservation_id=reservation.id, actor="customer", reason="x")


def test_a_cutoff_is_no_obstacle_to_an_unpaid_cancel_by_staff(customer, product):
    from tests.factories import ReservationFactory

    product.cancellation_cutoff_hours = 72
    product.save(update_fields=["cancellation_cutoff_hours"])
    reservation = ReservationFactory(user=customer, product=product, date=timezone.localdate())
    with pytest.raises(CancellationClosed):
        reservation_cancel(reservation_id=reservation.id, actor="customer", reason="x")
    assert reservation_cancel(reservation_id=reservation.id, actor="staff:x", reason="x", by_staff=True).done
