"""A refund left PENDING (Stripe unreachable when it was sent) is never forgotten: a retried
cancel, a cancel after another path's pending refund, and the reconciler all re-send it with
its own Stripe key before anything is cancelled. Money taken twice for one reservation is
given back even if Stripe was down at that moment (the refund is written with the success)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from payments.exceptions import PaymentProviderUnavailable
from payments.gateway import intent_result_from
from payments.models import Payment, PaymentStatus, Refund, RefundStatus
from payments.services import payment_refund, payments_reconcile, reservation_cancel_paid
from payments.services.pay import payment_apply_intent_now
from reservations.models import Reservation, ReservationStatus
from tests.payments.conftest import new_key, pay, stripe_admin
from tests.payments.factories import PaymentFactory
from tests.support.servers import closed_port
from tests.support.stripe_events import intent_event, post_event
from tests.support.stripe_proxy import StripeProxy

pytestmark = pytest.mark.django_db


@pytest.fixture
def paid(api, reservation, visa) -> Payment:
    assert pay(api, reservation, key=new_key(), payment_method=visa).status_code == 200
    return Payment.objects.get(reservation=reservation)


@pytest.fixture
def stripe_down(settings):
    def down() -> None:
        settings.STRIPE_API_BASE = f"http://127.0.0.1:{closed_port()}"
    return down


def _age_refunds() -> None:
    """As if the grace period had passed (moved back rather than waited for)."""
    Refund.objects.filter(status=RefundStatus.PENDING).update(
        updated_at=timezone.now() - dt.timedelta(seconds=django_settings.IDEMPOTENCY_LOCK_STALE_SECONDS + 1))


def test_a_retried_cancel_sends_the_pending_refund_before_cancelling(paid, reservation, stripe_down, stripe_local,
                                                                    settings):
    stripe_down()
    with pytest.raises(PaymentProviderUnavailable):
        reservation_cancel_paid(reservation_id=reservation.id, actor="customer", reason="plans changed",
                                expected_version=None)
    pending = paid.refunds.get()
    assert pending.status == RefundStatus.PENDING
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.PAID  # nothing cancelled while the money is kept

    with StripeProxy(stripe_local) as seen:
        settings.STRIPE_API_BASE = seen.url
        cancelled = reservation_cancel_paid(reservation_id=reservation.id, actor="customer", reason="plans changed",
                                            expected_version=None)

    assert cancelled.status == ReservationStatus.CANCELLED
    paid.refresh_from_db()
    assert (paid.status, paid.refunded_amount) == (PaymentStatus.REFUNDED, paid.amount)
    assert [s.idempotency_key for s in seen.seen if s.path == "/v1/refunds"] == [f"refund:{pending.id}"]
    assert list(paid.refunds.values_list("status", flat=True)) == [RefundStatus.SUCCEEDED]


def test_a_cancel_resends_a_refund_another_path_left_pending(paid, reservation, stripe_down, stripe_local,
                                                              settings):
    # The supplier-rejection compensation started its refund while Stripe was down.
    stripe_down()
    with pytest.raises(PaymentProviderUnavailable):
        payment_refund(payment=paid, amount=None, reason="supplier rejected the booking", actor="system",
                       idempotency_key=f"compensate:{reservation.id}:{paid.id}")

    settings.STRIPE_API_BASE = stripe_local
    cancelled = reservation_cancel_paid(reservation_id=reservation.id, actor="customer", reason="plans changed",
                                        expected_version=None)

    assert cancelled.status == ReservationStatus.CANCELLED
    paid.refresh_from_db()
    assert (paid.status, paid.refunded_amount) == (PaymentStatus.REFUNDED, paid.amount)
    assert list(paid.refunds.values_list("status", flat=True)) == [RefundStatus.SUCCEEDED]


def test_the_reconciler_resends_a_pending_refund_and_finishes_the_cancel(paid, reservation, stripe_down,
                                                                        stripe_local, settings):
    stripe_down()
    with pytest.raises(PaymentProviderUnavailable):
        reservation_cancel_paid(reservation_id=reservation.id, actor="staff:alice", reason="customer called",
                                expected_version=None)
    pending = paid.refunds.get()
    _age_refunds()

    with StripeProxy(stripe_local) as seen:
        settings.STRIPE_API_BASE = seen.url
        assert payments_reconcile() >= 1

    pending.refresh_from_db()
    paid.refresh_from_db()
    reservation.refresh_from_db()
    assert pending.status == RefundStatus.SUCCEEDED
    assert (paid.status, paid.refunded_amount) == (PaymentStatus.REFUNDED, paid.amount)
    assert [s.idempotency_key for s in seen.seen if s.path == "/v1/refunds"] == [f"refund:{pending.id}"]
    assert reservation.status == ReservationStatus.CANCELLED
    assert reservation.events.get(to_status=ReservationStatus.CANCELLED).actor == "staff:alice"


def test_the_reconciler_leaves_a_fresh_pending_refund_to_its_request(paid, reservation, stripe_down, settings,
                                                                    stripe_local):
    stripe_down()
    with pytest.raises(PaymentProviderUnavailable):
        payment_refund(payment=paid, amount=1000, reason="goodwill", actor="staff:bob", idempotency_key="fresh")
    settings.STRIPE_API_BASE = stripe_local

    payments_reconcile()

    assert paid.refunds.get().status == RefundStatus.PENDING


def _second_charge(stripe_local: str, reservation: Reservation, visa: str) -> tuple[Payment, dict]:
    """Another attempt for an already-paid reservation that Stripe charged as well."""
    second = PaymentFactory(reservation=reservation, stripe_payment_intent_id=None, stripe_charge_id="",
                            payment_method_id=visa)
    intent = stripe_admin(stripe_local).v1.payment_intents.create(params={
        "amount": second.amount, "currency": second.currency, "payment_method": visa, "confirm": True,
        "metadata": {"reservation_id": str(reservation.id), "payment_id": str(second.id)}})
    assert intent.status == "succeeded"
    return second, intent.to_dict()


def test_a_second_charge_seen_while_stripe_is_down_is_refunded_by_the_reconciler(
        paid, reservation, visa, stripe_local, stripe_down, settings, client):
    second, intent = _second_charge(stripe_local, reservation, visa)
    second.stripe_payment_intent_id = intent["id"]

    stripe_down()
    response = post_event(client, intent_event("payment_intent.succeeded", second, status="succeeded"))
    assert response.status_code == 200
    second.refresh_from_db()
    assert (second.status, second.refunded_amount) == (PaymentStatus.SUCCEEDED, 0)

    settings.STRIPE_API_BASE = stripe_local
    _age_refunds()
    payments_reconcile()

    second.refresh_from_db()
    paid.refresh_from_db()
    reservation.refresh_from_db()
    assert (second.status, second.refunded_amount) == (PaymentStatus.REFUNDED, second.amount)
    assert (paid.status, paid.refunded_amount) == (PaymentStatus.SUCCEEDED, 0)  # the winner is kept
    assert reservation.status == ReservationStatus.PAID


def test_the_refund_of_a_second_charge_is_written_with_the_success(paid, reservation, visa, stripe_local):
    """A process that dies right after applying the success (before any refund call) still
    leaves the refund due on record, so the reconciler gives the money back."""
    second, intent = _second_charge(stripe_local, reservation, visa)

    outcome = payment_apply_intent_now(payment_id=second.id, intent=intent_result_from(intent), actor="stripe")

    assert outcome.refund_due
    due = second.refunds.get()
    assert (due.status, due.amount) == (RefundStatus.PENDING, second.amount)
    _age_refunds()
    payments_reconcile()
    second.refresh_from_db()
    assert (second.status, second.refunded_amount) == (PaymentStatus.REFUNDED, second.amount)
