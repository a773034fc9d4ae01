from __future__ import annotations

import datetime as dt

import pytest

from outbox.delivery import outbox_drain_once
from outbox.models import DeadLetter, OutboxEvent, OutboxStatus
from outbox.policy import RetryPolicy
from suppliers.models import SupplierRequest
from tests.support.outbox import drain_all, make_due, paid_reservation

pytestmark = pytest.mark.django_db


def test_default_retry_delays_are_the_audit_schedule():
    policy = RetryPolicy.from_settings()

    assert policy.schedule() == [15, 30, 60, 120]
    assert not policy.exhausted(4)
    assert policy.exhausted(5)


def test_delay_is_capped_at_300_seconds():
    policy = RetryPolicy(base_seconds=15, max_attempts=10)

    assert policy.delay(6).total_seconds() == 300
    assert policy.delay(10).total_seconds() == 300


def test_a_failing_supplier_is_called_5_times_15_30_60_120_s_apart_then_dead_lettered(fake_supplier, product, settings):
    settings.SUPPLIER_BREAKER_FAIL_MAX = 100  # the breaker has its own test; here every call is real
    fake_supplier.set_mode(product.code, "fail")
    reservation = paid_reservation(product)

    drain_all()

    event = OutboxEvent.objects.get(reservation=reservation, topic="supplier.book")
    delays = [(dt.datetime.fromisoformat(e["retry_at"]) - dt.datetime.fromisoformat(e["at"])).total_seconds()
              for e in event.errors if "retry_at" in e]
    assert delays == [15, 30, 60, 120]
    assert event.status == OutboxStatus.DEAD
    assert event.attempts == 5
    assert fake_supplier.post_count() == 5
    assert DeadLetter.objects.filter(event=event).count() == 1
    assert list(SupplierRequest.objects.filter(reservation=reservation).values_list("attempt", flat=True)) == [
        1, 2, 3, 4, 5]


def test_a_backed_off_event_is_not_claimed_before_its_time(fake_supplier, product):
    fake_supplier.set_mode(product.code, "fail")
    reservation = paid_reservation(product)
    assert outbox_drain_once().retried == 1

    assert outbox_drain_once().total == 0
    event = OutboxEvent.objects.get(reservation=reservation)
    assert (event.status, event.attempts) == (OutboxStatus.PENDING, 1)
    make_due()
    assert outbox_drain_once().retried == 1
    event.refresh_from_db()
    assert event.attempts == 2
