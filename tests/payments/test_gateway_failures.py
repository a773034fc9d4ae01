"""Stripe unreachable, Stripe slow, and the shared circuit breaker (B3), caused for real:
a closed port, a local server that answers after the timeout, and a second OS process."""

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
from payments import gateway
from payments.models import Payment, PaymentStatus
from reservations.models import ReservationStatus
from tests.factories import ReservationFactory
from tests.payments.conftest import create_payment_method, new_key, pay
from tests.support.servers import ROOT, closed_port
from tests.support.slow_server import SlowServer
from tests.support.stripe_proxy import StripeProxy


@pytest.fixture
def fast_timeouts(settings):
    # Short, so the suite stays quick; the code under test is the same for 8 s.
    settings.STRIPE_TIMEOUT_SECONDS = 0.5
    settings.STRIPE_BREAKER_FAIL_MAX = 5
    return settings


@pytest.mark.django_db
def test_unreachable_stripe_answers_503_and_the_same_key_resumes_the_same_attempt(
        api, reservation, visa, stripe_local, settings, fast_timeouts):
    settings.STRIPE_API_BASE = f"http://127.0.0.1:{closed_port()}"
    key = new_key()

    down = pay(api, reservation, key=key, payment_method=visa)

    assert down.status_code == 503
    assert down.json()["code"] == "payment_provider_unavailable"
    assert int(down["Retry-After"]) >= 1
    attempt = Payment.objects.get(reservation=reservation)
    assert attempt.status == PaymentStatus.PENDING  # Stripe's answer is unknown: still in flight
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.PENDING_PAYMENT

    with StripeProxy(stripe_local) as stripe_seen:
        settings.STRIPE_API_BASE = stripe_seen.url
        again = pay(api, reservation, key=key, payment_method=visa)

    assert again.status_code == 200, again.content
    assert "Idempotent-Replayed" not in again  # the 503 was not stored
    assert list(Payment.objects.filter(reservation=reservation).values_list("id", flat=True)) == [attempt.id]
    assert [s.idempotency_key for s in stripe_seen.creates()] == [f"pay:{attempt.id}"]


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
def test_another_pay_with_a_different_key_while_the_attempt_is_unresolved_is_409(
        api, reservation, visa, settings, fast_timeouts):
    settings.STRIPE_API_BASE = f"http://127.0.0.1:{closed_port()}"
    assert pay(api, reservation, key=new_key(), payment_method=visa).status_code == 503

    response = pay(api, reservation, key=new_key(), payment_method=visa)

    assert response.status_code == 409
    assert response.json()["code"] == "payment_in_progress"


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

        # Open: this process refuses without a call...
        third_key = new_key()
        refused = pay(api, reservations[2], key=third_key, payment_method=visa)
        assert refused.status_code == 503
        assert refused.json()["code"] == "payment_provider_unavailable"
        assert int(refused["Retry-After"]) >= 1
        # ...and so does a second process that shares the breaker's storage.
        other = _probe({**probe_env, "STRIPE_API_BASE": slow.url})
        assert other == {"outcome": "unavailable", "reason": "circuit breaker open", "call_made": False,
                         "breaker": "open", "calls": 0}
        assert slow.requests == reached

        # The reset time has passed (moved back rather than waited for): the next call is a
        # trial. It fails against the slow server, so the breaker opens again for everyone.
        CircuitBreakerRecord.objects.filter(name="stripe").update(
            opened_at=timezone.now() - dt.timedelta(seconds=31))
        trial = _probe({**probe_env, "STRIPE_API_BASE": slow.url})
        assert trial["outcome"] == "unavailable"
        assert trial["call_made"] is True
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
    # The customer's retry with the same key resumes the attempt the open breaker refused.
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
