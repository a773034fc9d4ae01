"""The refund lifecycle (B6, B9): decided with its outbox event, sent under a key derived from
the row, then PENDING → SUCCEEDED | FAILED | CANCELED as Stripe reports it (API answer, refund
webhooks, reconciler). A failed refund alerts staff and waits in the attention queue, where
staff retry it under a new key or record a refund made outside Stripe."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction
from django.test import Client
from django.utils import timezone

from outbox.models import OutboxEvent
from payments import gateway
from payments.exceptions import RefundExceedsCaptured, RefundNotAllowed
from payments.models import Payment, PaymentStatus, RefundMethod, RefundResolution, RefundStatus
from payments.services import payment_refund, payments_reconcile, refund_record_external, refund_retry
from payments.services.locks import payment_lock_with_reservation
from payments.services.refunds import _refund_decide, refund_record, refunds_needing_attention
from tests.payments.conftest import new_key, pay, stripe_admin
from tests.support.outbox import drain_all
from tests.support.servers import closed_port
from tests.support.stripe_events import event, post_event

pytestmark = pytest.mark.django_db


@pytest.fixture
def paid(api, reservation, visa) -> Payment:
    assert pay(api, reservation, key=new_key(), payment_method=visa).status_code == 200
    return Payment.objects.get(reservation=reservation)


@pytest.fixture
def alerting(settings, mailoutbox):
    settings.ALERT_EMAILS = ["ops@example.test"]
    return mailoutbox


def _refund_object(refund, *, status: str, **extra) -> dict:
    return {"id": refund.stripe_refund_id, "object": "refund", "status": status, "amount": refund.amount,
            "payment_intent": refund.payment.stripe_payment_intent_id,
            "metadata": {"refund_id": str(refund.id)}, **extra}


def _stripe_refunded(base_url: str, payment: Payment) -> int:
    intent = stripe_admin(base_url).v1.payment_intents.retrieve(payment.stripe_payment_intent_id)
    return sum(c["amount_refunded"] for c in intent.to_dict()["charges"]["data"])


def test_partial_then_full_refund_never_more_than_captured(paid, reservation, stripe_local):
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
    assert _stripe_refunded(stripe_local, paid) == paid.amount
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


def test_a_pending_refund_counts_against_what_may_still_be_refunded(paid, settings):
    """While a refund is on its way (Stripe down), a second one for the whole amount is refused."""
    settings.STRIPE_API_BASE = f"http://127.0.0.1:{closed_port()}"
    pending = payment_refund(payment=paid, amount=paid.amount - 100, reason="x", actor="system", idempotency_key="a")
    assert pending.status == RefundStatus.PENDING

    with pytest.raises(RefundExceedsCaptured):
        payment_refund(payment=paid, amount=paid.amount, reason="y", actor="system", idempotency_key="b")
    assert payment_refund(payment=paid, amount=100, reason="y", actor="system", idempotency_key="c").amount == 100


def test_a_refund_written_while_stripe_is_down_is_sent_by_its_event_with_the_same_key(paid, settings, stripe_local,
                                                                                      strict_stripe):
    settings.STRIPE_API_BASE = f"http://127.0.0.1:{closed_port()}"
    pending = payment_refund(payment=paid, amount=None, reason="x", actor="system", idempotency_key="resume")
    assert pending.status == RefundStatus.PENDING
    assert OutboxEvent.objects.get(topic="payment.refund").last_error.startswith("refund: Stripe unavailable")

    settings.STRIPE_API_BASE = stripe_local
    drain_all()

    pending.refresh_from_db()
    assert pending.status == RefundStatus.SUCCEEDED
    assert [s.idempotency_key for s in strict_stripe.seen("POST", "/v1/refunds")] == [f"refund:{pending.id}"]
    assert _stripe_refunded(stripe_local, paid) == paid.amount


def test_a_refund_stripe_reports_pending_waits_for_the_webhook(paid, strict_stripe, client: Client):
    strict_stripe.refund_status = "pending"
    refund = payment_refund(payment=paid, amount=None, reason="x", actor="system", idempotency_key="slow-bank")
    assert (refund.status, refund.stripe_refund_id.startswith("re_")) == (RefundStatus.PENDING, True)
    paid.refresh_from_db()
    assert (paid.status, paid.refunded_amount) == (PaymentStatus.SUCCEEDED, 0)

    update = event("refund.updated", _refund_object(refund, status="succeeded"))
    assert post_event(client, update).status_code == 200
    assert post_event(client, update).status_code == 200  # a duplicate changes nothing

    refund.refresh_from_db()
    paid.refresh_from_db()
    assert refund.status == RefundStatus.SUCCEEDED
    assert (paid.status, paid.refunded_amount) == (PaymentStatus.REFUNDED, paid.amount)
    assert paid.reservation.events.filter(reason__startswith="refund succeeded").count() == 1


def test_a_refund_stripe_reports_failed_alerts_staff_and_waits_for_them(paid, strict_stripe, alerting):
    strict_stripe.refund_status = "failed"

    refund = payment_refund(payment=paid, amount=None, reason="cancelled", actor="system", idempotency_key="f-1")

    assert refund.status == RefundStatus.FAILED
    assert list(refunds_needing_attention()) == [refund]
    paid.refresh_from_db()
    assert (paid.status, paid.refunded_amount) == (PaymentStatus.SUCCEEDED, 0)
    drain_all()
    assert any("Refund failed" in mail.subject for mail in alerting)


def test_a_refund_stripe_refuses_is_failed_and_never_blocks_anything(paid, stripe_local, alerting):
    # Refunded in the Dashboard meanwhile: Stripe refuses ours (charge_already_refunded).
    stripe_admin(stripe_local).v1.refunds.create(params={"payment_intent": paid.stripe_payment_intent_id})

    refund = payment_refund(payment=paid, amount=None, reason="cancelled", actor="system", idempotency_key="dup")

    assert refund.status == RefundStatus.FAILED
    assert "already been refunded" in refund.failure_message
    assert refund.needs_attention


def test_a_refund_that_fails_after_it_succeeded_gives_the_money_back_to_the_payment(paid, client, alerting):
    refund = payment_refund(payment=paid, amount=None, reason="x", actor="system", idempotency_key="late-fail")
    paid.refresh_from_db()
    assert paid.status == PaymentStatus.REFUNDED

    failed = event("refund.failed", _refund_object(refund, status="failed", failure_reason="expired_or_canceled_card"))
    assert post_event(client, failed).status_code == 200

    refund.refresh_from_db()
    paid.refresh_from_db()
    assert (refund.status, refund.failure_message) == (RefundStatus.FAILED, "expired_or_canceled_card")
    assert (paid.status, paid.refunded_amount) == (PaymentStatus.SUCCEEDED, 0)
    assert refund.needs_attention


def test_staff_retry_sends_a_new_refund_under_a_new_key(paid, strict_stripe):
    strict_stripe.refund_status = "failed"
    failed = payment_refund(payment=paid, amount=None, reason="x", actor="system", idempotency_key="retry-me")
    strict_stripe.refund_status = None

    retried = refund_retry(refund=failed, actor="staff:alice", expected_version=failed.version)

    failed.refresh_from_db()
    paid.refresh_from_db()
    assert (failed.resolution, failed.resolved_by) == (RefundResolution.RETRIED, "staff:alice")
    assert (retried.status, retried.retry_of_id, retried.amount) == (RefundStatus.SUCCEEDED, failed.pk, failed.amount)
    keys = [s.idempotency_key for s in strict_stripe.seen("POST", "/v1/refunds")]
    assert keys == [f"refund:{failed.id}", f"refund:{retried.id}"]
    assert paid.status == PaymentStatus.REFUNDED
    assert list(refunds_needing_attention()) == []
    assert paid.reservation.events.filter(actor="staff:alice").exists()


def test_staff_record_a_refund_made_outside_stripe_with_a_reason(paid, strict_stripe):
    strict_stripe.refund_status = "failed"
    failed = payment_refund(payment=paid, amount=None, reason="x", actor="system", idempotency_key="bank")

    with pytest.raises(Exception, match="reason is required"):
        refund_record_external(refund=failed, actor="staff:bob", reason="  ")
    external = refund_record_external(refund=failed, actor="staff:bob", reason="bank transfer", reference="TRX-1")

    paid.refresh_from_db()
    failed.refresh_from_db()
    assert (external.method, external.status, external.external_reference) == (
        RefundMethod.EXTERNAL, RefundStatus.SUCCEEDED, "TRX-1")
    assert failed.resolution == RefundResolution.RECORDED_EXTERNAL
    assert (paid.status, paid.refunded_amount) == (PaymentStatus.REFUNDED, paid.amount)
    with pytest.raises(Exception, match="nothing to do"):
        refund_retry(refund=failed, actor="staff:bob")


def test_staff_actions_refuse_a_stale_version(paid, strict_stripe):
    from common.exceptions import VersionConflict

    strict_stripe.refund_status = "failed"
    failed = payment_refund(payment=paid, amount=None, reason="x", actor="system", idempotency_key="stale")

    with pytest.raises(VersionConflict):
        refund_retry(refund=failed, actor="staff:alice", expected_version=failed.version - 1)
    assert failed.retries.count() == 0


def test_the_reconciler_asks_stripe_about_a_refund_whose_webhook_never_came(paid, strict_stripe, stripe_local):
    strict_stripe.refund_status = "pending"
    refund = payment_refund(payment=paid, amount=None, reason="x", actor="system", idempotency_key="lost-webhook")
    strict_stripe.refund_status = None  # localstripe reports it succeeded when asked
    type(refund).objects.filter(pk=refund.pk).update(updated_at=timezone.now() - dt.timedelta(hours=1))

    payments_reconcile()

    refund.refresh_from_db()
    assert refund.status == RefundStatus.SUCCEEDED
    assert strict_stripe.seen("GET", f"/v1/refunds/{refund.stripe_refund_id}")


def test_refund_record_decides_once_per_key(paid):
    with transaction.atomic():
        payment, reservation = payment_lock_with_reservation(payment_id=paid.pk)
        first = refund_record(payment=payment, reservation=reservation, amount=100, reason="x", actor="a",
                              idempotency_key="k")
        again = refund_record(payment=payment, reservation=reservation, amount=100, reason="x", actor="a",
                              idempotency_key="k")
    assert first.pk == again.pk
    assert OutboxEvent.objects.filter(topic="payment.refund").count() == 1


def test_a_refund_refused_by_the_open_breaker_is_deferred_without_spending_an_attempt(paid, settings):
    from common.models import CircuitBreakerRecord

    settings.STRIPE_BREAKER_RESET_SECONDS = 30
    CircuitBreakerRecord.objects.update_or_create(name="stripe", defaults={
        "state": "open", "fail_counter": 5, "opened_at": timezone.now()})

    refund = payment_refund(payment=paid, amount=None, reason="x", actor="system", idempotency_key="breaker")

    assert refund.status == RefundStatus.PENDING
    event = OutboxEvent.objects.get(topic="payment.refund")
    assert (event.status, event.attempts) == ("PENDING", 0)  # the refused call was no attempt
    assert event.available_at > timezone.now() + dt.timedelta(seconds=20)  # when the breaker lets calls through
    assert gateway.calls_made["refund.create"] == 0

    CircuitBreakerRecord.objects.filter(name="stripe").update(state="closed", fail_counter=0)
    drain_all()
    refund.refresh_from_db()
    assert refund.status == RefundStatus.SUCCEEDED


def test_a_refund_whose_first_send_got_a_stripe_500_is_refunded_once_stripe_is_back(paid, strict_stripe, stripe_local):
    """Stripe saves a 500 for its idempotency key and replays it to every retry with that key:
    resending under the refund's one key could never succeed. Once Stripe answers again, the
    refund is looked up (none carries our id: the 500 refunded nothing) and sent under a new key."""
    strict_stripe.fail_with, strict_stripe.fail_count = (500, "api_error", ""), 1
    refund = payment_refund(payment=paid, amount=None, reason="cancelled", actor="customer", idempotency_key="r-500")
    assert refund.status == RefundStatus.PENDING

    drain_all()

    refund.refresh_from_db()
    paid.refresh_from_db()
    assert (refund.status, paid.status) == (RefundStatus.SUCCEEDED, PaymentStatus.REFUNDED)
    assert _stripe_refunded(stripe_local, paid) == paid.amount
    keys = [s.idempotency_key for s in strict_stripe.seen("POST", "/v1/refunds")]
    assert keys[0] == f"refund:{refund.id}"
    assert keys[-1] != keys[0]


def test_a_refund_stripe_executed_before_answering_500_is_found_not_sent_twice(paid, strict_stripe, stripe_local):
    strict_stripe.fail_after_executing = True
    refund = payment_refund(payment=paid, amount=None, reason="cancelled", actor="customer", idempotency_key="r-exec")
    strict_stripe.fail_after_executing = False

    drain_all()

    refund.refresh_from_db()
    assert refund.status == RefundStatus.SUCCEEDED
    assert refund.stripe_refund_id
    refunds = stripe_admin(stripe_local).v1.refunds.list(params={"payment_intent": paid.stripe_payment_intent_id})
    assert [r.id for r in refunds.data] == [refund.stripe_refund_id]  # one refund, found, not sent again


def test_the_reconciler_moves_a_refund_off_a_key_stripe_spent_on_a_500(paid, strict_stripe, stripe_local):
    """A refund whose key Stripe spent on a 500 (its event gave up meanwhile): the reconciler,
    not stopped by it, gives the refund a new key, and its next look refunds."""
    refund = _refund_decide(payment_id=paid.pk, amount=None, reason="x", actor="system", idempotency_key="spent")
    strict_stripe.fail_with, strict_stripe.fail_count = (500, "api_error", ""), 1
    with pytest.raises(gateway.StripeUnavailable):  # the send that Stripe answered 500 (saved for the key)
        gateway.refund_create(payment_intent_id=paid.stripe_payment_intent_id, amount=refund.amount,
                              metadata={"refund_id": str(refund.id), "reservation_id": str(paid.reservation_id)},
                              idempotency_key=refund.stripe_idempotency_key)
    OutboxEvent.objects.filter(topic="payment.refund").update(status="DEAD")
    type(refund).objects.filter(pk=refund.pk).update(updated_at=timezone.now() - dt.timedelta(hours=1))

    first = payments_reconcile()
    type(refund).objects.filter(pk=refund.pk).update(next_check_at=None,
                                                      updated_at=timezone.now() - dt.timedelta(hours=1))
    payments_reconcile()

    refund.refresh_from_db()
    assert first["stopped"] == ""
    assert (refund.status, refund.stripe_key_generation) == (RefundStatus.SUCCEEDED, 1)
    assert _stripe_refunded(stripe_local, paid) == paid.amount
