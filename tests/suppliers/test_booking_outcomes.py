"""C5 outcomes, against the fake supplier over real HTTP."""

from __future__ import annotations

import json

import pytest

from outbox.delivery import outbox_drain_once
from outbox.models import DeadLetter, DeadLetterStatus, OutboxEvent, OutboxStatus
from reservations.models import ReservationStatus, SupplierStatus
from suppliers.models import SupplierRequest
from tests.support.outbox import drain_all, paid_reservation
from tests.support.servers import closed_port

pytestmark = pytest.mark.django_db


def test_confirmed_booking_confirms_the_reservation_with_the_supplier_reference(fake_supplier, product):
    reservation = paid_reservation(product)

    drain_all()

    reservation.refresh_from_db()
    [booking] = fake_supplier.bookings(reference=reservation.code)
    assert reservation.status == ReservationStatus.CONFIRMED
    assert reservation.supplier_status == SupplierStatus.CONFIRMED
    assert reservation.supplier_reference == booking["confirmation_code"]
    assert reservation.supplier_booking_id == booking["booking_id"]
    assert booking["idempotency_key"] == f"reservation:{reservation.id}:book"
    assert OutboxEvent.objects.get(reservation=reservation).status == OutboxStatus.DELIVERED
    [audit] = SupplierRequest.objects.filter(reservation=reservation)
    assert (audit.operation, audit.attempt, audit.outcome, audit.http_status) == ("book", 1, "confirmed", 201)
    assert audit.response_payload["booking_id"] == booking["booking_id"]
    timeline = [(e.to_status, e.actor) for e in reservation.events.order_by("id")]
    assert ("CONFIRMED", "supplier") in timeline


def test_on_request_answer_leaves_the_reservation_to_staff(fake_supplier, product):
    fake_supplier.set_mode(product.code, "on_request")
    reservation = paid_reservation(product)

    drain_all()

    reservation.refresh_from_db()
    assert (reservation.status, reservation.supplier_status) == ("CONFIRMED_INTERNAL", "ON_REQUEST")
    assert reservation.supplier_booking_id
    assert not DeadLetter.objects.exists()


def test_permanent_failure_dead_letters_and_alerts_staff_by_email_and_slack(
        fake_supplier, product, alerts, mailoutbox, monkeypatch, django_capture_on_commit_callbacks):
    sentry: list[str] = []
    monkeypatch.setattr("outbox.services.sentry_sdk.capture_message", lambda msg, **kw: sentry.append(msg))
    fake_supplier.set_mode(product.code, "permanent")
    reservation = paid_reservation(product)

    with django_capture_on_commit_callbacks(execute=True):
        drain_all()

    reservation.refresh_from_db()
    assert (reservation.status, reservation.supplier_status) == ("CONFIRMED_INTERNAL", "ON_REQUEST")
    [dead] = DeadLetter.objects.all()
    assert (dead.topic, dead.status, dead.attempts) == ("supplier.book", DeadLetterStatus.OPEN, 1)
    assert "invalid_request" in dead.last_error
    assert len(dead.error_history) == 1
    [email] = [mail for mail in mailoutbox if mail.to == ["ops@example.test"]]  # the guest is told too
    assert reservation.code in email.body
    [slack] = alerts.messages
    assert reservation.code in slack["text"]
    [message] = sentry
    assert reservation.code in message
    # one audit row per attempt
    assert SupplierRequest.objects.filter(reservation=reservation).count() == 1 == fake_supplier.post_count()


def test_max_attempts_3_makes_3_supplier_calls_each_audited(fake_supplier, product, alerts, settings):
    settings.OUTBOX_MAX_ATTEMPTS = 3  # calls in all, the first included (api.md)
    settings.SUPPLIER_BREAKER_FAIL_MAX = 100
    fake_supplier.set_mode(product.code, "fail")
    reservation = paid_reservation(product)

    drain_all()

    reservation.refresh_from_db()
    assert (reservation.status, reservation.supplier_status) == ("CONFIRMED_INTERNAL", "ON_REQUEST")
    event = OutboxEvent.objects.get(reservation=reservation)
    rows = list(SupplierRequest.objects.filter(reservation=reservation)
                .values_list("attempt", "outcome", "http_status"))
    assert rows == [(1, "retryable", 503), (2, "retryable", 503), (3, "retryable", 503)]
    assert event.attempts == 3
    assert DeadLetter.objects.get().error_history[-1]["attempt"] == 3


def test_slack_down_never_touches_the_booking(fake_supplier, product, settings, mailoutbox):
    settings.ALERT_EMAILS = ["ops@example.test"]
    settings.SLACK_WEBHOOK_URL = f"http://127.0.0.1:{closed_port()}/hook"
    fake_supplier.set_mode(product.code, "permanent")
    reservation = paid_reservation(product)

    drain_all()

    reservation.refresh_from_db()
    assert (reservation.status, reservation.supplier_status) == ("CONFIRMED_INTERNAL", "ON_REQUEST")
    slack = OutboxEvent.objects.get(topic="alert.slack")
    assert slack.status == OutboxStatus.DEAD  # retried to its bound, then given up
    assert "ConnectionError" in slack.last_error
    # the e-mail alert went anyway (and the guest's "awaiting confirmation")
    assert sorted(mail.to[0] for mail in mailoutbox) == sorted(["ops@example.test", reservation.guest_email])
    # a dead alert raises no alert of its own
    assert OutboxEvent.objects.filter(topic__startswith="alert.").count() == 2


def test_slow_supplier_times_out_and_the_retry_gets_the_same_booking(fake_supplier, product, supplier):
    supplier.timeout_seconds = 0.3
    supplier.save()
    fake_supplier.set_mode(product.code, "slow:1.5:1")  # the first answer comes too late
    reservation = paid_reservation(product)

    drain_all()

    reservation.refresh_from_db()
    rows = list(SupplierRequest.objects.filter(reservation=reservation).values_list("outcome", "error_code"))
    assert rows == [("retryable", "read_timeout"), ("confirmed", "")]
    assert reservation.status == ReservationStatus.CONFIRMED
    [booking] = fake_supplier.bookings(reference=reservation.code)
    assert reservation.supplier_booking_id == booking["booking_id"]


def test_unreachable_supplier_is_retryable(product, supplier):
    supplier.base_url = f"http://127.0.0.1:{closed_port()}"
    supplier.save()
    reservation = paid_reservation(product)

    assert outbox_drain_once().retried == 1

    event = OutboxEvent.objects.get(reservation=reservation)
    assert (event.status, event.attempts) == (OutboxStatus.PENDING, 1)
    assert SupplierRequest.objects.get(reservation=reservation).error_code == "connection_error"


def test_the_api_key_never_appears_in_the_supplier_request_audit(fake_supplier, product, supplier, settings):
    settings.OUTBOX_MAX_ATTEMPTS = 1
    for mode in ("confirm", "fail", "permanent", "on_request", "reject"):
        fake_supplier.set_mode(product.code, mode)
        paid_reservation(product)
    drain_all()

    rows = list(SupplierRequest.objects.values())
    assert len(rows) >= 5
    dumped = json.dumps(rows, default=str)
    assert supplier.api_key not in dumped
    assert all(r["request_payload"]["headers"]["Authorization"] == "Bearer ***" for r in rows)


def test_a_call_the_open_breaker_refused_does_not_count_as_asking_the_supplier(fake_supplier, product, supplier):
    """Breaker open → the attempt is audited but nothing reached the supplier. If the
    reservation is then cancelled, there is nothing to book-and-cancel at the supplier."""
    from suppliers.clients.http import HttpSupplierAdapter

    breaker = HttpSupplierAdapter(supplier)._breaker()
    breaker.open()
    reservation = paid_reservation(product)
    try:
        assert outbox_drain_once().deferred == 1
    finally:
        breaker.close()
    assert SupplierRequest.objects.get(reservation=reservation).error_code == "breaker_open"
    reservation.status = ReservationStatus.CANCELLED
    reservation.save()

    drain_all()

    assert fake_supplier.bookings(reference=reservation.code) == []
    assert OutboxEvent.objects.get(topic="supplier.book", reservation=reservation).status == OutboxStatus.DELIVERED


def test_a_booking_delivery_locks_and_reads_its_reservation_once_in_its_transaction(fake_supplier, product):
    """`apply` gets the reservation its handler's `lock` took (held): locking it a second time
    read the same row again, one query in ten of the drain (issue "performance")."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from outbox.delivery import outbox_claim_due, outbox_deliver

    reservation = paid_reservation(product)
    [event] = outbox_claim_due(worker="w", limit=1)

    with CaptureQueriesContext(connection) as captured:
        assert outbox_deliver(event=event) == "delivered"

    locks = [sql for sql in (q["sql"] for q in captured.captured_queries)
             if sql.startswith("SELECT") and "FROM `reservations_reservation`" in sql and "FOR UPDATE" in sql]
    assert len(locks) == 1, locks
    reservation.refresh_from_db()
    assert (reservation.status, reservation.supplier_status) == (ReservationStatus.CONFIRMED, SupplierStatus.CONFIRMED)
