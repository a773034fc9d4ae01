from __future__ import annotations

import threading
import time

import pytest
from django.db import connection
from django.test import Client

from common import faults
from outbox.models import OutboxEvent
from payments.models import Payment, PaymentStatus, StripeEvent, StripeEventStatus
from payments.services import stripe_event_reprocess
from reservations.models import ReservationStatus, SupplierStatus
from tests.factories import ReservationFactory
from tests.payments.conftest import intents_for, new_key, pay
from tests.payments.factories import PaymentFactory
from tests.support.db import raw_connection
from tests.support.outbox import drain_all
from tests.support.stripe_events import encode, event, intent_event, post_event, signature_header

pytestmark = pytest.mark.django_db


@pytest.fixture
def stripe_client() -> Client:
    return Client(enforce_csrf_checks=True)  # proves the webhook is CSRF-exempt


@pytest.fixture
def attempt(reservation):
    return PaymentFactory(reservation=reservation)


def test_bad_signature_is_400_and_nothing_is_stored(stripe_client, attempt):
    body = encode(intent_event("payment_intent.succeeded", attempt, status="succeeded"))

    wrong_secret = post_event(stripe_client, body, signature=signature_header(body, secret="whsec_wrong"))
    no_header = stripe_client.post("/webhooks/stripe/", data=body, content_type="application/json")
    tampered = post_event(stripe_client, body.replace(b"succeeded", b"SUCCEEDED"), signature=signature_header(body))

    for response in (wrong_secret, no_header, tampered):
        assert response.status_code == 400
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["code"] == "invalid_signature"
    assert not StripeEvent.objects.exists()
    attempt.refresh_from_db()
    assert attempt.status == PaymentStatus.PENDING


def test_succeeded_pays_the_reservation_and_books_the_supplier(stripe_client, attempt, reservation):
    response = post_event(stripe_client, intent_event("payment_intent.succeeded", attempt, status="succeeded"))

    assert response.status_code == 200
    assert response.json() == {"received": True}
    attempt.refresh_from_db()
    reservation.refresh_from_db()
    assert attempt.status == PaymentStatus.SUCCEEDED
    assert attempt.in_flight_for is None
    assert (reservation.status, reservation.supplier_status) == (ReservationStatus.PAID, "PENDING")
    assert OutboxEvent.objects.filter(reservation=reservation, topic="supplier.book").count() == 1
    assert reservation.events.filter(to_status="PAID", actor="stripe").count() == 1
    assert StripeEvent.objects.get().status == StripeEventStatus.PROCESSED


def test_the_same_event_twice_is_applied_once(stripe_client, attempt, reservation):
    body = encode(intent_event("payment_intent.succeeded", attempt, status="succeeded"))

    first = post_event(stripe_client, body)
    events_after_first = reservation.events.count()
    second = post_event(stripe_client, body)

    assert (first.status_code, second.status_code) == (200, 200)
    assert reservation.events.count() == events_after_first
    assert StripeEvent.objects.count() == 1
    assert OutboxEvent.objects.filter(reservation=reservation).count() == 1
    attempt.refresh_from_db()
    assert attempt.version == 2  # one applied change


def test_payment_failed_after_succeeded_leaves_it_succeeded(stripe_client, attempt, reservation):
    post_event(stripe_client, intent_event("payment_intent.succeeded", attempt, status="succeeded"))

    late = post_event(stripe_client, intent_event("payment_intent.payment_failed", attempt,
                                                   status="requires_payment_method"))

    assert late.status_code == 200
    attempt.refresh_from_db()
    reservation.refresh_from_db()
    assert attempt.status == PaymentStatus.SUCCEEDED
    assert reservation.status == ReservationStatus.PAID


def test_payment_failed_frees_the_reservation_for_another_attempt(stripe_client, attempt, reservation):
    obj_error = {"last_payment_error": {"code": "card_declined", "decline_code": "insufficient_funds",
                                        "message": "Your card has insufficient funds."}}
    post_event(stripe_client, intent_event("payment_intent.payment_failed", attempt,
                                           status="requires_payment_method", **obj_error))

    attempt.refresh_from_db()
    assert attempt.status == PaymentStatus.FAILED
    assert attempt.failure_code == "insufficient_funds"
    assert attempt.in_flight_for is None
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.PENDING_PAYMENT


@pytest.mark.parametrize(("event_type", "status", "expected"), [
    ("payment_intent.processing", "processing", PaymentStatus.PROCESSING),
    ("payment_intent.requires_action", "requires_action", PaymentStatus.REQUIRES_ACTION),
    ("payment_intent.canceled", "canceled", PaymentStatus.CANCELED),
])
def test_intent_status_events(stripe_client, attempt, reservation, event_type, status, expected):
    response = post_event(stripe_client, intent_event(event_type, attempt, status=status,
                                                      client_secret="pi_secret_abc"))
    assert response.status_code == 200
    attempt.refresh_from_db()
    assert attempt.status == expected
    assert (attempt.in_flight_for is None) == (expected == PaymentStatus.CANCELED)
    if expected == PaymentStatus.REQUIRES_ACTION:
        assert attempt.client_secret == "pi_secret_abc"
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.PENDING_PAYMENT


def test_out_of_order_processing_after_succeeded_changes_nothing(stripe_client, attempt):
    post_event(stripe_client, intent_event("payment_intent.succeeded", attempt, status="succeeded"))
    post_event(stripe_client, intent_event("payment_intent.processing", attempt, status="processing"))
    attempt.refresh_from_db()
    assert attempt.status == PaymentStatus.SUCCEEDED


def _charge(payment, *, amount_refunded: int) -> dict:
    return {"id": payment.stripe_charge_id, "object": "charge", "payment_intent": payment.stripe_payment_intent_id,
            "amount": payment.amount, "amount_refunded": amount_refunded, "refunded": amount_refunded >= payment.amount}


def test_charge_refunded_partial_then_full(stripe_client, reservation):
    paid = PaymentFactory(reservation=reservation, status=PaymentStatus.SUCCEEDED)

    post_event(stripe_client, event("charge.refunded", _charge(paid, amount_refunded=5000)))
    paid.refresh_from_db()
    assert (paid.status, paid.refunded_amount) == (PaymentStatus.PARTIALLY_REFUNDED, 5000)

    post_event(stripe_client, event("charge.refunded", _charge(paid, amount_refunded=paid.amount)))
    paid.refresh_from_db()
    assert (paid.status, paid.refunded_amount) == (PaymentStatus.REFUNDED, paid.amount)
    # An older partial refund event arriving last does not lower it.
    post_event(stripe_client, event("charge.refunded", _charge(paid, amount_refunded=5000)))
    paid.refresh_from_db()
    assert (paid.status, paid.refunded_amount) == (PaymentStatus.REFUNDED, paid.amount)
    assert reservation.events.filter(reason="payment refunded", actor="stripe").count() == 2


def test_dispute_created_marks_the_payment_disputed_on_the_timeline(stripe_client, reservation):
    paid = PaymentFactory(reservation=reservation, status=PaymentStatus.SUCCEEDED)
    dispute = {"id": "dp_123", "object": "dispute", "charge": paid.stripe_charge_id, "amount": paid.amount,
               "reason": "fraudulent"}

    response = post_event(stripe_client, event("charge.dispute.created", dispute))

    assert response.status_code == 200
    paid.refresh_from_db()
    assert paid.status == PaymentStatus.DISPUTED
    entry = reservation.events.get(reason="dispute opened")
    assert entry.actor == "stripe"
    assert entry.data["dispute_id"] == "dp_123"
    assert entry.data["dispute_reason"] == "fraudulent"


@pytest.fixture
def alerting(settings, mailoutbox):
    settings.ALERT_EMAILS = ["ops@example.test"]
    settings.SLACK_WEBHOOK_URL = "http://127.0.0.1:9/slack"
    return settings


def _alerts_for(reservation) -> set[str]:
    return set(OutboxEvent.objects.filter(topic__startswith="alert.", payload__reservation_id=str(reservation.id))
               .values_list("topic", flat=True))


def test_refund_of_a_supplier_confirmed_booking_alerts_staff_once(stripe_client, reservation, alerting):
    reservation.status, reservation.supplier_status = ReservationStatus.CONFIRMED, SupplierStatus.CONFIRMED
    reservation.save()
    paid = PaymentFactory(reservation=reservation, status=PaymentStatus.SUCCEEDED)
    refunded = event("charge.refunded", _charge(paid, amount_refunded=paid.amount))

    post_event(stripe_client, refunded)
    post_event(stripe_client, refunded)  # Stripe redelivers: still one alert

    assert _alerts_for(reservation) == {"alert.email", "alert.slack"}
    assert OutboxEvent.objects.filter(topic="alert.email").count() == 1
    assert "supplier-confirmed" in OutboxEvent.objects.get(topic="alert.email").payload["subject"]


def test_refund_from_our_own_cancellation_does_not_alert(stripe_client, reservation, alerting):
    reservation.status, reservation.supplier_status = ReservationStatus.CANCELLED, SupplierStatus.CONFIRMED
    reservation.save()
    paid = PaymentFactory(reservation=reservation, status=PaymentStatus.SUCCEEDED)

    post_event(stripe_client, event("charge.refunded", _charge(paid, amount_refunded=paid.amount)))

    assert _alerts_for(reservation) == set()


def test_dispute_alerts_staff_and_leaves_the_supplier_booking_alone(stripe_client, reservation, alerting):
    reservation.status, reservation.supplier_status = ReservationStatus.CONFIRMED, SupplierStatus.CONFIRMED
    reservation.save()
    paid = PaymentFactory(reservation=reservation, status=PaymentStatus.SUCCEEDED)
    dispute = {"id": "dp_9", "object": "dispute", "charge": paid.stripe_charge_id, "amount": paid.amount,
               "reason": "product_not_received"}

    post_event(stripe_client, event("charge.dispute.created", dispute))

    assert _alerts_for(reservation) == {"alert.email", "alert.slack"}
    assert not OutboxEvent.objects.filter(topic="supplier.cancel").exists()
    reservation.refresh_from_db()
    assert (reservation.status, reservation.supplier_status) == (ReservationStatus.CONFIRMED, SupplierStatus.CONFIRMED)


def test_unknown_types_and_foreign_intents_are_stored_and_acknowledged(stripe_client):
    unknown = post_event(stripe_client, event("customer.created", {"id": "cus_1", "object": "customer"}))
    foreign = post_event(stripe_client, event("payment_intent.succeeded",
                                              {"id": "pi_not_ours", "object": "payment_intent", "metadata": {}}))

    assert (unknown.status_code, foreign.status_code) == (200, 200)
    assert set(StripeEvent.objects.values_list("type", "status")) == {
        ("customer.created", StripeEventStatus.IGNORED), ("payment_intent.succeeded", StripeEventStatus.IGNORED)}


def test_success_for_an_attempt_whose_answer_was_lost_is_found_by_metadata(stripe_client, reservation):
    lost = PaymentFactory(reservation=reservation, stripe_payment_intent_id=None)
    payload = event("payment_intent.succeeded", {
        "id": "pi_we_never_saw", "object": "payment_intent", "status": "succeeded", "amount": lost.amount,
        "metadata": {"reservation_id": str(reservation.id), "payment_id": str(lost.id)}})

    post_event(stripe_client, payload)

    lost.refresh_from_db()
    assert (lost.status, lost.stripe_payment_intent_id) == (PaymentStatus.SUCCEEDED, "pi_we_never_saw")


def test_a_failing_event_is_recorded_failed_answered_500_and_staff_can_reprocess_it(
        stripe_client, attempt, reservation, monkeypatch):
    def bug(point: str) -> None:
        raise RuntimeError("bug while applying")

    monkeypatch.setattr(faults, "hook", bug)
    payload = intent_event("payment_intent.succeeded", attempt, status="succeeded")

    response = post_event(stripe_client, payload)

    assert response.status_code == 500  # Stripe retries
    stored = StripeEvent.objects.get()
    assert (stored.status, stored.attempts) == (StripeEventStatus.FAILED, 1)
    assert "bug while applying" in stored.error
    attempt.refresh_from_db()
    assert attempt.status == PaymentStatus.PENDING  # nothing half-applied

    monkeypatch.setattr(faults, "hook", None)
    result = stripe_event_reprocess(stripe_event=stored, actor="staff:alice")

    assert result.status == "applied"
    stored.refresh_from_db()
    assert (stored.status, stored.attempts, stored.error) == (StripeEventStatus.PROCESSED, 2, "")
    attempt.refresh_from_db()
    assert attempt.status == PaymentStatus.SUCCEEDED
    assert reservation.events.get(to_status="PAID").data["reprocessed_by"] == "staff:alice"
    with pytest.raises(Exception, match="Only FAILED"):
        stripe_event_reprocess(stripe_event=stored, actor="staff:alice")


def test_late_success_for_an_expired_reservation_is_refunded_not_revived(api, customer, product, stripe_client,
                                                                           visa, stripe_local):
    reservation = ReservationFactory(user=customer, product=product)
    assert pay(api, reservation, key=new_key(), payment_method=visa).status_code == 200
    assert len(intents_for(stripe_local, reservation.id)) == 1
    # Simulate: the pay answer was lost, the reservation expired, then Stripe's success arrives.
    payment = Payment.objects.get(reservation=reservation)
    Payment.objects.filter(pk=payment.pk).update(status=PaymentStatus.PENDING, in_flight_for=reservation.id)
    reservation.__class__.objects.filter(pk=reservation.pk).update(status=ReservationStatus.EXPIRED)
    payment.refresh_from_db()

    response = post_event(stripe_client, intent_event("payment_intent.succeeded", payment, status="succeeded"))

    assert response.status_code == 200
    assert payment.refunds.get().status == "PENDING"  # decided with the success, sent by the outbox
    drain_all()
    payment.refresh_from_db()
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.EXPIRED
    assert (payment.status, payment.refunded_amount) == (PaymentStatus.REFUNDED, payment.amount)
    assert payment.refunds.get().stripe_refund_id.startswith("re_")


@pytest.mark.parametrize("foreign_payment_id", ["order-42", "", "12345", "not-a-uuid-at-all-0000000000000000"])
def test_an_intent_of_another_integration_with_a_non_uuid_payment_id_is_acknowledged(stripe_client,
                                                                                    foreign_payment_id):
    # Another system on the same Stripe account also puts `payment_id` in its metadata.
    payload = event("payment_intent.succeeded", {
        "id": f"pi_foreign_{foreign_payment_id or 'empty'}", "object": "payment_intent", "status": "succeeded",
        "amount": 1000, "metadata": {"payment_id": foreign_payment_id}})

    response = post_event(stripe_client, payload)

    assert response.status_code == 200
    assert StripeEvent.objects.get().status == StripeEventStatus.IGNORED


def test_a_full_refund_reported_before_the_success_books_nothing(stripe_client, attempt, reservation):
    """Out of order: charge.refunded (all of it) arrives before payment_intent.succeeded. The
    money is back with the customer; the reservation must not be paid nor booked."""
    post_event(stripe_client, event("charge.refunded", _charge(attempt, amount_refunded=attempt.amount)))
    attempt.refresh_from_db()
    assert (attempt.status, attempt.refunded_amount, attempt.in_flight_for) == (
        PaymentStatus.REFUNDED, attempt.amount, None)

    post_event(stripe_client, intent_event("payment_intent.succeeded", attempt, status="succeeded"))

    attempt.refresh_from_db()
    reservation.refresh_from_db()
    assert attempt.status == PaymentStatus.REFUNDED
    assert reservation.status == ReservationStatus.PENDING_PAYMENT
    assert not OutboxEvent.objects.filter(topic="supplier.book").exists()


def test_a_partial_refund_reported_before_the_success_still_books(stripe_client, attempt, reservation):
    post_event(stripe_client, event("charge.refunded", _charge(attempt, amount_refunded=100)))
    post_event(stripe_client, intent_event("payment_intent.succeeded", attempt, status="succeeded"))

    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.PAID


def test_a_redelivered_dispute_is_applied_once(stripe_client, reservation, alerting):
    """The inbox's duplicate check, on an event the state machine would not hide: a second
    application would write a second timeline entry and a second alert."""
    paid = PaymentFactory(reservation=reservation, status=PaymentStatus.SUCCEEDED)
    dispute = event("charge.dispute.created", {"id": "dp_1", "object": "dispute", "charge": paid.stripe_charge_id,
                                               "amount": paid.amount, "reason": "fraudulent"})

    assert post_event(stripe_client, dispute).status_code == 200
    assert post_event(stripe_client, dispute).status_code == 200

    assert reservation.events.filter(reason="dispute opened").count() == 1
    assert StripeEvent.objects.get().attempts == 1


@pytest.mark.parametrize(("age_seconds", "accepted"), [(290, True), (301, False)])  # 290: seconds pass on a busy CI
def test_a_signature_older_than_the_tolerance_is_refused(stripe_client, attempt, age_seconds, accepted):
    import time

    body = encode(intent_event("payment_intent.succeeded", attempt, status="succeeded"))
    old = signature_header(body, timestamp=int(time.time()) - age_seconds)

    response = post_event(stripe_client, body, signature=old)

    assert response.status_code == (200 if accepted else 400)
    assert StripeEvent.objects.exists() is accepted


@pytest.mark.django_db(transaction=True)
def test_a_delivery_that_fails_while_a_duplicate_applies_the_event_leaves_it_processed(attempt, monkeypatch):
    """Stripe delivers one event twice at once. Delivery A fails while applying it (a bug);
    delivery B, queued on A's uncommitted inbox row, applies the event once A rolled back, and A
    records its failure after B committed. A must not mark B's applied event FAILED: the next
    delivery, or a staff reprocess, would apply it a second time."""
    payload = intent_event("payment_intent.succeeded", attempt, status="succeeded")
    answers: dict[str, int] = {}
    queued: list[bool] = []

    def deliver(name: str) -> None:
        try:
            answers[name] = post_event(Client(raise_request_exception=False), payload).status_code
        finally:
            connection.close()

    other = threading.Thread(target=deliver, args=("B",))

    def fail_once_b_is_queued(point: str) -> None:
        if point != "webhook.apply" or threading.current_thread() is other:
            return
        other.start()
        watcher = raw_connection()
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not queued:
                if _inbox_insert_waiting(watcher):  # B's INSERT waits on A's row (InnoDB: "Update")
                    queued.append(True)
                time.sleep(0.02)
        finally:
            watcher.close()
        raise RuntimeError("bug while applying")

    monkeypatch.setattr(faults, "hook", fail_once_b_is_queued)
    deliver("A")
    other.join(20)

    assert queued, "delivery B never queued on A's inbox row"
    assert answers == {"A": 500, "B": 200}
    stored = StripeEvent.objects.get()
    assert (stored.status, stored.attempts, stored.error) == (StripeEventStatus.PROCESSED, 1, "")
    attempt.refresh_from_db()
    assert attempt.status == PaymentStatus.SUCCEEDED


def _inbox_insert_waiting(conn) -> bool:
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID != CONNECTION_ID() "
                    "AND COMMAND = 'Query' AND INFO LIKE 'INSERT INTO `payments_stripeevent`%%'")
        return cur.fetchone()[0] > 0
