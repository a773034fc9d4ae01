"""Parallel pay requests from real threads, each with its own database connection,
through the real pay flow and the real localstripe."""

from __future__ import annotations

from collections import Counter

import pytest

from payments import gateway
from payments.models import Payment, PaymentStatus
from reservations.models import ReservationStatus
from tests.conftest import client_for
from tests.payments.conftest import intents_for, new_key, pay
from tests.support.concurrency import run_in_threads

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 10


def test_ten_threads_with_one_key_make_one_payment_intent_and_one_charge(customer, reservation, visa, stripe_local):
    key = new_key()

    def work(_):
        response = pay(client_for(customer), reservation, key=key, payment_method=visa)
        return response.status_code, response.get("Idempotent-Replayed"), response.json()

    results = run_in_threads(THREADS, work)

    assert all(isinstance(r, tuple) for r in results), results
    statuses = Counter(status for status, _, _ in results)
    assert set(statuses) <= {200, 409}, statuses
    fresh = [body for status, replayed, body in results if status == 200 and replayed is None]
    assert len(fresh) == 1  # one request ran; the others were told "in use" or got its replay
    assert all(body["code"] == "idempotency_key_in_use" for status, _, body in results if status == 409)
    assert Payment.objects.filter(reservation=reservation).count() == 1
    assert gateway.calls_made["payment_intent.create"] == 1
    assert len(intents_for(stripe_local, reservation.id)) == 1  # what reached Stripe
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.PAID


def test_ten_threads_with_different_keys_charge_the_reservation_exactly_once(customer, reservation, visa,
                                                                              stripe_local):
    def work(_):
        response = pay(client_for(customer), reservation, key=new_key(), payment_method=visa)
        return response.status_code, response.json()

    results = run_in_threads(THREADS, work)

    assert all(isinstance(r, tuple) for r in results), results
    statuses = Counter(status for status, _ in results)
    assert statuses[200] == 1, statuses
    assert statuses[409] == THREADS - 1, statuses
    assert {body["code"] for status, body in results if status == 409} <= {"payment_in_progress", "invalid_state"}
    assert list(Payment.objects.filter(reservation=reservation).values_list("status", flat=True)) == [
        PaymentStatus.SUCCEEDED]
    assert gateway.calls_made["payment_intent.create"] == 1
    assert len(intents_for(stripe_local, reservation.id)) == 1
