"""Stripe unreachable, slow, refusing our key, conflicting, answering 500, and the shared
circuit breaker (B3, B8), caused for real: a closed port, a server that answers after the
timeout, the strict Stripe stand-in's fault modes, and a second OS process.

What each failure means for the attempt is the point (B8): one that provably never reached
Stripe is closed at once and a new key pays immediately; one that may have reached Stripe is
looked up, never charged again by us."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys

import pytest
from django.db import connection
from django.utils import timezone

from common.models import CircuitBreakerRecord
from outbox.models import OutboxEvent
from payments import gateway
from payments.models import Payment, PaymentStatus
from payments.services.lookup import NOT_SENT, PROVIDER_MISCONFIGURED
from reservations.models import ReservationStatus
from tests.factories import ReservationFactory
from tests.payments.conftest import create_payment_method, intents_for, new_key, pay
from tests.support.servers import ROOT, closed_port
from tests.support.slow_server import SlowServer


@pytest.fixture
def fast_timeouts(settings):
    # Short, so the suite stays quick; the code under test is the same for 8 s.
    settings.STRIPE_TIMEOUT_SECONDS = 0.5
    settings.STRIPE_BREAKER_FAIL_MAX = 5
    return settings


@pytest.mark.django_db
def test_a_pay_that_never_reached_stripe_closes_its_attempt_and_a_new_key_pays_at_once(
        api, reservation, visa, stripe_local, strict_stripe, settings, fast_timeouts):
    settings.STRIPE_API_BASE = f"http://127.0.0.1:{closed_port()}"  # connection refused: provably not sent

    down = pay(api, reservation, key=new_key(), payment_method=visa)

    assert down.status_code == 503
    assert down.json()["code"] == "payment_provider_unavailable"
    assert int(down["Retry-After"]) >= 1
    closed = Payment.objects.get(reservation=reservation)
    assert (closed.status, closed.failure_code, closed.in_flight_for) == (PaymentStatus.CANCELED, NOT_SENT, None)

    settings.STRIPE_API_BASE = stripe_local
    fresh = pay(api, reservation, key=new_key(), payment_method=visa)

    assert fresh.status_code == 200, fresh.content
    assert [s.idempotency_key for s in strict_stripe.intent_creates()] == [
        f"pay:{Payment.objects.get(reservation=reservation, status=PaymentStatus.SUCCEEDED).id}"]


@pytest.mark.django_db
def test_the_same_key_after_a_refused_connection_pays_with_a_new_attempt(
        api, reservation, visa, stripe_local, settings, fast_timeouts):
    key = new_key()
    settings.STRIPE_API_BASE = f"http://127.0.0.1:{closed_port()}"
    assert pay(api, reservation, key=key, payment_method=visa).status_code == 503
    settings.STRIPE_API_BASE = stripe_local

    again = pay(api, reservation, key=key, payment_method=visa)

    assert again.status_code == 200, again.content
    assert "Idempotent-Replayed" not in again  # the 503 was not stored
    assert sorted(Payment.objects.filter(reservation=reservation).values_list("status", flat=True)) == [
        PaymentStatus.CANCELED, PaymentStatus.SUCCEEDED]


@pytest.mark.django_db
def test_a_timed_out_pay_is_outcome_unknown_and_the_same_key_resends_the_same_request(
        api, reservation, visa, strict_stripe, settings, fast_timeouts):
    key = new_key()
    strict_stripe.delay_seconds = 1.5  # answers after our timeout, having executed the create
    strict_stripe.delay_after_executing = True

    slow = pay(api, reservation, key=key, payment_method=visa)

    assert slow.status_code == 503, slow.content
    attempt = Payment.objects.get(reservation=reservation)
    assert attempt.status == PaymentStatus.PENDING
    assert attempt.outcome_unknown_at is not None
    assert attempt.in_flight_for == reservation.id

    strict_stripe.delay_seconds = 0
    again = pay(api, reservation, key=key, payment_method=visa)

    assert again.status_code == 200, again.content
    creates = strict_stripe.intent_creates()
    assert {s.idempotency_key for s in creates} == {f"pay:{attempt.id}"}
    assert [s.replayed for s in creates][-1] is True  # answered from Stripe's idempotency layer
    assert len(strict_stripe.executed_intent_creates()) == 1
    attempt.refresh_from_db()
    assert (attempt.status, attempt.outcome_unknown_at) == (PaymentStatus.SUCCEEDED, None)


@pytest.mark.django_db
def test_another_key_while_stripe_is_still_down_gets_409_with_retry_after(
        api, reservation, visa, settings, fast_timeouts):
    with SlowServer() as slow:
        settings.STRIPE_API_BASE = slow.url
        assert pay(api, reservation, key=new_key(), payment_method=visa).status_code == 503
        response = pay(api, reservation, key=new_key(), payment_method=visa)

    assert response.status_code == 409
    assert response.json()["code"] == "payment_in_progress"
    assert int(response["Retry-After"]) >= 1
    assert Payment.objects.filter(reservation=reservation).count() == 1


@pytest.mark.django_db
def test_another_key_after_stripe_is_back_looks_the_lost_charge_up_and_never_charges_twice(
        api, reservation, visa, stripe_local, strict_stripe, settings, fast_timeouts):
    """The first create charged, but its answer was lost. A pay with another key first looks the
    attempt up (Stripe's idempotency layer answers the lost create) and finds the reservation
    paid: 409, and no second intent. The first key's retry then answers the final outcome: 200."""
    first_key = new_key()
    strict_stripe.lose_answers = True
    assert pay(api, reservation, key=first_key, payment_method=visa).status_code == 503
    strict_stripe.lose_answers = False

    other = pay(api, reservation, key=new_key(), payment_method=create_payment_method(stripe_local))

    assert other.status_code == 409, other.content
    assert other.json()["code"] == "invalid_state"
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.PAID
    assert len([pi for pi in intents_for(stripe_local, reservation.id) if pi.status == "succeeded"]) == 1
    assert len(strict_stripe.executed_intent_creates()) == 1
    same = pay(api, reservation, key=first_key, payment_method=visa)
    assert same.status_code == 200, same.content
    assert same.json()["payment"]["status"] == "SUCCEEDED"


@pytest.mark.django_db
def test_another_key_after_a_create_that_never_executed_closes_it_and_pays(
        api, reservation, visa, stripe_local, strict_stripe, settings, fast_timeouts):
    """The first create timed out before Stripe executed it. The lookup's probe (same key,
    without confirm) creates an unconfirmed intent, which proves the first never executed: it is
    cancelled, the attempt closed, and the new key pays. Exactly one charge."""
    strict_stripe.fail_with = (500, "api_error", "")  # answered without executing
    assert pay(api, reservation, key=new_key(), payment_method=visa).status_code == 503
    first = Payment.objects.get(reservation=reservation)
    assert first.outcome_unknown_at is not None
    strict_stripe.fail_with = None
    # A saved 500 tells nothing: the lookup searches by metadata, and an old enough attempt
    # that no intent carries is closed.
    Payment.objects.filter(pk=first.pk).update(created_at=timezone.now() - dt.timedelta(minutes=10))

    other = pay(api, reservation, key=new_key(), payment_method=visa)

    assert other.status_code == 200, other.content
    first.refresh_from_db()
    assert (first.status, first.failure_code) == (PaymentStatus.CANCELED, "no_charge_found")
    succeeded = [pi for pi in intents_for(stripe_local, reservation.id) if pi.status == "succeeded"]
    assert len(succeeded) == 1


@pytest.mark.django_db
def test_search_finding_nothing_closes_an_attempt_only_once_search_has_settled(
        api, reservation, visa, stripe_local, strict_stripe, settings, fast_timeouts):
    """STRIPE_SEARCH_SETTLED_SECONDS: Stripe's search lags, so "no intent found" closes an attempt
    only once it is that old; until then another key is told to wait."""
    strict_stripe.fail_with = (500, "api_error", "")
    assert pay(api, reservation, key=new_key(), payment_method=visa).status_code == 503
    strict_stripe.fail_with = None

    waiting = pay(api, reservation, key=new_key(), payment_method=visa)
    settings.STRIPE_SEARCH_SETTLED_SECONDS = 0
    settled = pay(api, reservation, key=new_key(), payment_method=visa)

    assert (waiting.status_code, waiting.json()["code"]) == (409, "payment_in_progress")
    assert settled.status_code == 200, settled.content


@pytest.mark.django_db
def test_a_create_that_executed_behind_a_500_is_found_by_search(
        api, reservation, visa, stripe_local, strict_stripe, settings, fast_timeouts):
    strict_stripe.fail_after_executing = True  # charged, but the answer (saved for the key) is a 500
    assert pay(api, reservation, key=new_key(), payment_method=visa).status_code == 503
    strict_stripe.fail_after_executing = False

    other = pay(api, reservation, key=new_key(), payment_method=visa)

    assert other.status_code == 409
    assert other.json()["code"] == "invalid_state"
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.PAID
    assert strict_stripe.seen("GET", "/v1/payment_intents/search")
    assert len([pi for pi in intents_for(stripe_local, reservation.id) if pi.status == "succeeded"]) == 1


@pytest.mark.django_db
def test_a_rejected_api_key_is_503_an_alert_and_a_breaker_failure_never_a_decline(
        api, reservation, visa, strict_stripe, settings, mailoutbox, stripe_local):
    settings.ALERT_EMAILS = ["ops@example.test"]
    strict_stripe.expected_key = "sk_test_rotated"  # ours was rotated away

    response = pay(api, reservation, key=new_key(), payment_method=visa)

    assert response.status_code == 503, response.content
    assert response.json()["code"] == "payment_provider_unavailable"
    assert response["Retry-After"]
    attempt = Payment.objects.get(reservation=reservation)
    assert (attempt.status, attempt.failure_code) == (PaymentStatus.CANCELED, PROVIDER_MISCONFIGURED)
    assert gateway.stripe_breaker().fail_counter == 1
    assert OutboxEvent.objects.filter(topic="alert.email", dedup_key__startswith="alert.email:stripe-misconfigured"
                                      ).count() == 1

    strict_stripe.expected_key = None  # the operator fixed the key
    assert pay(api, reservation, key=new_key(), payment_method=visa).status_code == 200


@pytest.mark.django_db
def test_an_unknown_payment_method_is_a_400_on_the_field_not_a_decline(api, reservation, stripe_local):
    response = pay(api, reservation, key=new_key(), payment_method="pm_does_not_exist")

    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "validation_error"
    assert "payment_method" in body["errors"]
    assert Payment.objects.get(reservation=reservation).status == PaymentStatus.CANCELED
    assert gateway.stripe_breaker().fail_counter == 0
    # The customer pays with a valid method and a new key right away.
    assert pay(api, reservation, key=new_key(), payment_method="pm_card_visa").status_code == 200


@pytest.mark.django_db
def test_slow_stripe_answers_503_within_the_bound(api, reservation, visa, settings, fast_timeouts):
    with SlowServer() as slow:
        settings.STRIPE_API_BASE = slow.url
        response = pay(api, reservation, key=new_key(), payment_method=visa)

    assert response.status_code == 503
    assert response.json()["code"] == "payment_provider_unavailable"
    assert response["Retry-After"]
    assert slow.requests >= 1


@pytest.mark.django_db
def test_a_decline_does_not_count_towards_opening_the_breaker(api, customer, product, declined_card, settings):
    settings.STRIPE_BREAKER_FAIL_MAX = 2
    for _ in range(3):
        reservation = ReservationFactory(user=customer, product=product)
        assert pay(api, reservation, key=new_key(), payment_method=declined_card).status_code == 402
    assert gateway.stripe_breaker().current_state == "closed"
    assert gateway.stripe_breaker().fail_counter == 0


def _probe(env: dict[str, str]) -> dict:
    db = connection.settings_dict
    proc = subprocess.run(
        [sys.executable, "-m", "tests.support.stripe_breaker_probe"], cwd=ROOT, capture_output=True, text=True,
        check=False,
        timeout=60, env={**os.environ, "DATABASE_URL": f"mysql://{db['USER']}@{db['HOST'] or '127.0.0.1'}:"
                                                       f"{db['PORT'] or 3306}/{db['NAME']}", **env},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.django_db(transaction=True)
def test_breaker_opens_refuses_without_calling_and_half_opens_across_processes(
        api, customer, product, stripe_local, settings):
    settings.STRIPE_TIMEOUT_SECONDS = 0.3
    settings.STRIPE_BREAKER_FAIL_MAX = 2
    settings.STRIPE_BREAKER_RESET_SECONDS = 30
    visa = create_payment_method(stripe_local)
    probe_env = {"STRIPE_TIMEOUT_SECONDS": "0.3", "STRIPE_BREAKER_FAIL_MAX": "2",
                 "STRIPE_BREAKER_RESET_SECONDS": "30"}

    with SlowServer() as slow:
        settings.STRIPE_API_BASE = slow.url
        reservations = [ReservationFactory(user=customer, product=product) for _ in range(3)]
        # Two timeouts reach the threshold and open the breaker.
        for reservation in reservations[:2]:
            assert pay(api, reservation, key=new_key(), payment_method=visa).status_code == 503
        reached = slow.requests
        assert reached >= 2
        assert CircuitBreakerRecord.objects.get(name="stripe").state == "open"

        # Open: this process refuses without a call, and closes the attempt (it never left)...
        third_key = new_key()
        refused = pay(api, reservations[2], key=third_key, payment_method=visa)
        assert refused.status_code == 503
        assert refused.json()["code"] == "payment_provider_unavailable"
        assert int(refused["Retry-After"]) >= 1
        assert Payment.objects.get(reservation=reservations[2]).failure_code == NOT_SENT
        # ...and so does a second process that shares the breaker's storage.
        other = _probe({**probe_env, "STRIPE_API_BASE": slow.url})
        assert other == {"outcome": "unavailable", "reason": "circuit breaker open", "reached": False,
                         "breaker": "open", "calls": 0}
        assert slow.requests == reached

        # The reset time has passed (moved back rather than waited for): the next call is a
        # trial. It fails against the slow server, so the breaker opens again for everyone.
        CircuitBreakerRecord.objects.filter(name="stripe").update(
            opened_at=timezone.now() - dt.timedelta(seconds=31))
        trial = _probe({**probe_env, "STRIPE_API_BASE": slow.url})
        assert trial["outcome"] == "unavailable"
        assert trial["reached"] is True
        assert trial["breaker"] == "open"
        assert slow.requests == reached + 1
        assert pay(api, reservations[2], key=third_key, payment_method=visa).status_code == 503
        assert slow.requests == reached + 1

    # Later, a trial against a healthy Stripe closes it, and this process sees it closed.
    CircuitBreakerRecord.objects.filter(name="stripe").update(opened_at=timezone.now() - dt.timedelta(seconds=31))
    healthy = _probe({**probe_env, "STRIPE_API_BASE": stripe_local})
    assert healthy["outcome"] == "rejected"  # 404 for the unknown intent: Stripe is answering
    assert healthy["breaker"] == "closed"
    assert gateway.stripe_breaker().current_state == "closed"
    settings.STRIPE_API_BASE = stripe_local
    # The customer's retry with the same key pays: the refused attempt took no money.
    assert pay(api, reservations[2], key=third_key, payment_method=visa).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("body", ["idempotency_in_progress", "plain_conflict"])
def test_a_409_from_stripe_is_outcome_unknown_not_a_decline(api, reservation, visa, settings, body):
    """Stripe answers 409 while another request with the same key is still running: that one may
    charge, so the attempt must stay in flight (no second attempt, no second charge)."""
    from tests.support.conflict_server import CONFLICT, IDEMPOTENCY_IN_PROGRESS, ConflictServer

    with ConflictServer(body=IDEMPOTENCY_IN_PROGRESS if body == "idempotency_in_progress" else CONFLICT) as busy:
        settings.STRIPE_API_BASE = busy.url
        response = pay(api, reservation, key=new_key(), payment_method=visa)
        other_key = pay(api, reservation, key=new_key(), payment_method=visa)

    assert response.status_code == 503, response.content
    assert response.json()["code"] == "payment_provider_unavailable"
    assert int(response["Retry-After"]) >= 1
    attempt = Payment.objects.get(reservation=reservation)
    assert (attempt.status, attempt.in_flight_for) == (PaymentStatus.PENDING, reservation.id)
    assert other_key.status_code == 409
    assert other_key.json()["code"] == "payment_in_progress"
    assert busy.requests >= 1
    # Stripe is working: a conflict does not count towards opening the breaker.
    assert gateway.stripe_breaker().fail_counter == 0


@pytest.mark.django_db
def test_the_gateway_refuses_to_call_stripe_inside_a_transaction(stripe_local):
    from django.db import transaction

    with transaction.atomic(), pytest.raises(RuntimeError, match="inside a transaction"):
        gateway.payment_intent_retrieve(intent_id="pi_anything")
    assert gateway.calls_made["payment_intent.retrieve"] == 0
