"""Real MariaDB failures while money moves (E2, E3): a deadlock caused by a second raw
connection, and KILL CONNECTION of Django's own connection in the middle of a transaction.

The kill happens at a named fault point (common.faults.hook), the only way to hit an exact
moment of a real transaction: the hook runs `KILL CONNECTION <our id>` from another
connection, so the next statement or the COMMIT fails exactly as on a real outage."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection
from django.test import Client

from common import db as common_db
from common import faults
from common.models import IdempotencyKey
from outbox.models import OutboxEvent
from payments.models import Payment, PaymentStatus, StripeEvent
from reservations.models import ReservationStatus
from tests.payments.conftest import new_key, pay
from tests.payments.factories import PaymentFactory
from tests.support.db import connection_id, kill_connection, raw_connection
from tests.support.stripe_events import encode, intent_event, post_event
from tests.support.stripe_proxy import StripeProxy

pytestmark = pytest.mark.django_db(transaction=True)


def kill_once_at(point: str):
    fired: list[str] = []

    def hook(name: str) -> None:
        if name == point and not fired:
            fired.append(name)
            kill_connection(connection_id())

    return hook, fired


def wait_until_waiting_for(table: str, *, opponent, bound: float = 10.0) -> None:
    """Poll until another connection of this database is stuck in a `… FOR UPDATE` on
    `table` while the opponent holds that row (a condition, not a guess). MariaDB takes a
    primary-key row lock while optimising, so the processlist is the reliable witness."""
    with opponent.cursor() as cur:
        cur.execute("SELECT CONNECTION_ID(), DATABASE()")
        opponent_id, db_name = cur.fetchone()
    probe = raw_connection()
    deadline = time.monotonic() + bound
    try:
        with probe.cursor() as cur:
            while time.monotonic() < deadline:
                cur.execute("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE db = %s AND id NOT IN (%s, "
                            "CONNECTION_ID()) AND command = 'Query' AND info LIKE %s",
                            [db_name, opponent_id, f"%FROM `{table}`%FOR UPDATE"])
                if cur.fetchone()[0]:
                    return
                time.sleep(0.01)
    finally:
        probe.close()
    raise AssertionError(f"nobody waited for a row of {table}")


def test_killed_connection_while_applying_a_webhook_answers_5xx_and_the_redelivery_applies_it(
        reservation, monkeypatch):
    attempt = PaymentFactory(reservation=reservation)
    body = encode(intent_event("payment_intent.succeeded", attempt, status="succeeded"))
    hook, fired = kill_once_at("webhook.apply")
    monkeypatch.setattr(faults, "hook", hook)

    lost = post_event(Client(), body)

    assert fired
    assert lost.status_code == 503
    assert lost.json()["code"] == "database_unavailable"
    # Nothing half-applied: no inbox row, no payment or reservation change, no outbox event.
    assert not StripeEvent.objects.exists()
    attempt.refresh_from_db()
    reservation.refresh_from_db()
    assert (attempt.status, attempt.version) == (PaymentStatus.PENDING, 1)
    assert reservation.status == ReservationStatus.PENDING_PAYMENT
    assert not OutboxEvent.objects.exists()

    redelivered = post_event(Client(), body)

    assert redelivered.status_code == 200
    attempt.refresh_from_db()
    reservation.refresh_from_db()
    assert attempt.status == PaymentStatus.SUCCEEDED
    assert reservation.status == ReservationStatus.PAID
    assert OutboxEvent.objects.filter(topic="supplier.book").count() == 1


def test_a_deadlock_while_applying_a_webhook_is_retried(reservation):
    attempt = PaymentFactory(reservation=reservation)
    body = encode(intent_event("payment_intent.succeeded", attempt, status="succeeded"))
    opponent = raw_connection(autocommit=False)
    cur = opponent.cursor()
    # InnoDB rolls back the transaction that changed fewer rows: make the opponent heavy so
    # the webhook is the victim, then hold the payment row the webhook will want.
    # (The ballast table has no foreign key: a child row would S-lock the reservation.)
    for i in range(30):
        cur.execute("INSERT INTO circuit_breakers (name, state, fail_counter, success_counter, updated_at) "
                    "VALUES (%s, 'closed', 0, 0, NOW(6))", [f"ballast-{i}"])
    cur.execute("SELECT id FROM payments_payment WHERE id = %s FOR UPDATE", [attempt.id.hex])
    retries_before = common_db.deadlock_retries_total
    outcome: dict = {}

    def deliver() -> None:
        try:
            outcome["response"] = post_event(Client(), body)
        except BaseException as exc:
            outcome["error"] = exc
        finally:
            connection.close()

    webhook = threading.Thread(target=deliver)
    webhook.start()
    try:
        # The webhook holds the reservation row and waits for the payment row...
        wait_until_waiting_for("payments_payment", opponent=opponent)
        # ...and now the opponent wants the reservation row: a real deadlock.
        cur.execute("SELECT id FROM reservations_reservation WHERE id = %s FOR UPDATE", [reservation.id.hex])
    finally:
        opponent.rollback()
        opponent.close()
        webhook.join(60)

    assert "error" not in outcome, outcome.get("error")
    assert outcome["response"].status_code == 200
    assert common_db.deadlock_retries_total > retries_before
    attempt.refresh_from_db()
    reservation.refresh_from_db()
    assert attempt.status == PaymentStatus.SUCCEEDED
    assert reservation.status == ReservationStatus.PAID
    assert StripeEvent.objects.count() == 1


def test_killed_connection_during_the_pay_transaction_is_503_and_the_same_key_succeeds(
        api, reservation, visa, stripe_local, settings, monkeypatch):
    hook, fired = kill_once_at("pay.apply")
    monkeypatch.setattr(faults, "hook", hook)
    key = new_key()

    with StripeProxy(stripe_local) as stripe_seen:
        settings.STRIPE_API_BASE = stripe_seen.url
        lost = pay(api, reservation, key=key, payment_method=visa)

        assert fired
        assert lost.status_code == 503
        assert lost.json()["code"] == "database_unavailable"
        # Nothing half-written: the attempt is still in flight, nothing paid, nothing booked,
        # and the key holds no response (it is free for the retry).
        attempt = Payment.objects.get(reservation=reservation)
        assert (attempt.status, attempt.version) == (PaymentStatus.PENDING, 1)
        reservation.refresh_from_db()
        assert reservation.status == ReservationStatus.PENDING_PAYMENT
        assert not OutboxEvent.objects.exists()
        stored = IdempotencyKey.objects.get(key=key)
        assert (stored.response_code, stored.locked_at) == (None, None)

        again = pay(api, reservation, key=key, payment_method=visa)

    assert again.status_code == 200, again.content
    assert again.json()["status"] == "PAID"
    assert list(Payment.objects.filter(reservation=reservation).values_list("id", flat=True)) == [attempt.id]
    # Both creates carried the one Stripe key of this attempt (real Stripe replays the first).
    assert {s.idempotency_key for s in stripe_seen.creates()} == {f"pay:{attempt.id}"}
    assert len(stripe_seen.creates()) == 2
    assert OutboxEvent.objects.filter(topic="supplier.book").count() == 1
