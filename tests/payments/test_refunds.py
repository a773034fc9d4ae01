from __future__ import annotations

import pytest

from outbox.models import OutboxEvent
from payments import gateway
from payments.exceptions import RefundExceedsCaptured, RefundNotAllowed
from payments.models import Payment, PaymentStatus, RefundStatus
from payments.services import payment_cancel_open_intent, payment_refund, reservation_cancel_paid
from reservations.models import ReservationStatus, SupplierStatus
from tests.payments.conftest import REQUIRES_3DS, create_payment_method, new_key, pay

pytestmark = pytest.mark.django_db


@pytest.fixture
def paid(api, reservation, visa) -> Payment:
    assert pay(api, reservation, key=new_key(), payment_method=visa).status_code == 200
    return Payment.objects.get(reservation=reservation)


def test_partial_then_full_refund_never_more_than_captured(paid, reservation):
    first = payment_refund(payment=paid, amount=5000, reason="goodwill", actor="staff:alice", idempotency_key="r-1")
    paid.refresh_from_db()
    assert (first.status, paid.status, paid.refunded_amount) == (
        RefundStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED, 5000)

    with pytest.raises(RefundExceedsCaptured):
        payment_refund(payment=paid, amount=paid.amount, reason="too much", actor="staff:alice", idempotency_key="r-2")

    rest = payment_refund(payment=paid, amount=None, reason="rest", actor="staff:alice", idempotency_key="r-3")
    paid.refresh_from_db()
    assert rest.amount == paid.amount - 5000
    assert (paid.status, paid.refunded_amount) == (PaymentStatus.REFUNDED, paid.amount)
    assert reservation.events.filter(actor="staff:alice").count() == 2
    with pytest.raises(RefundNotAllowed):
        payment_refund(payment=paid, amount=1, reason="more", actor="staff:alice", idempotency_key="r-4")


def test_a_repeated_refund_key_refunds_once(paid):
    first = payment_refund(payment=paid, amount=3000, reason="x", actor="system", idempotency_key="same")
    calls = gateway.calls_made["refund.create"]

    again = payment_refund(payment=paid, amount=3000, reason="x", actor="system", idempotency_key="same")

    assert again.pk == first.pk
    assert gateway.calls_made["refund.create"] == calls
    paid.refresh_from_db()
    assert paid.refunded_amount == 3000


def test_a_refund_interrupted_by_stripe_being_down_resumes_with_the_same_key(paid, settings, stripe_local):
    from tests.support.servers import closed_port
    from tests.support.stripe_proxy import StripeProxy

    settings.STRIPE_API_BASE = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(Exception, match="temporarily unavailable"):
        payment_refund(payment=paid, amount=None, reason="x", actor="system", idempotency_key="resume")
    pending = paid.refunds.get()
    assert pending.status == RefundStatus.PENDING

    with StripeProxy(stripe_local) as seen:
        settings.STRIPE_API_BASE = seen.url
        done = payment_refund(payment=paid, amount=None, reason="x", actor="system", idempotency_key="resume")

    assert done.pk == pending.pk
    assert done.status == RefundStatus.SUCCEEDED
    assert [s.idempotency_key for s in seen.seen if s.path == "/v1/refunds"] == [f"refund:{pending.id}"]


def test_cancel_paid_refunds_and_asks_the_supplier_to_cancel(paid, reservation):
    reservation.refresh_from_db()
    assert reservation.supplier_status == SupplierStatus.PENDING

    cancelled = reservation_cancel_paid(reservation_id=reservation.id, actor="customer", reason="plans changed",
                                        expected_version=reservation.version)

    assert cancelled.status == ReservationStatus.CANCELLED
    paid.refresh_from_db()
    assert (paid.status, paid.refunded_amount) == (PaymentStatus.REFUNDED, paid.amount)
    event = OutboxEvent.objects.get(topic="supplier.cancel")
    assert (event.dedup_key, event.payload) == (f"supplier.cancel:{reservation.id}",
                                                 {"reservation_id": str(reservation.id)})


def test_cancel_paid_through_the_api(api, paid, reservation):
    response = api.post(f"/api/v1/reservations/{reservation.id}/cancel/", {}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "CANCELLED"
    assert response.json()["payment"]["status"] == "REFUNDED"


def test_cancel_paid_with_a_stale_version_refunds_nothing(paid, reservation):
    from common.exceptions import VersionConflict

    with pytest.raises(VersionConflict):
        reservation_cancel_paid(reservation_id=reservation.id, actor="staff:bob", reason="x", expected_version=1)
    paid.refresh_from_db()
    assert paid.status == PaymentStatus.SUCCEEDED
    assert not paid.refunds.exists()


def test_cancel_open_intent_cancels_a_payment_waiting_for_authentication(api, reservation, stripe_local):
    pm = create_payment_method(stripe_local, REQUIRES_3DS)
    assert pay(api, reservation, key=new_key(), payment_method=pm).status_code == 202

    assert payment_cancel_open_intent(reservation=reservation) == 1

    payment = Payment.objects.get(reservation=reservation)
    assert payment.status == PaymentStatus.CANCELED
    assert payment.in_flight_for is None
