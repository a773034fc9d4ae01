"""A breaker refusal is not an attempt: an event whose call the supplier's open breaker
refused (nothing left this process) is due again when the breaker lets calls through, and
keeps all of its OUTBOX_MAX_ATTEMPTS for calls that may really reach the supplier."""

from __future__ import annotations

import datetime as dt

import pytest

from outbox.delivery import outbox_claim_due, outbox_drain_once
from outbox.models import DeadLetter, OutboxEvent, OutboxStatus
from reservations.models import Reservation, ReservationStatus
from suppliers.clients.http import HttpSupplierAdapter
from suppliers.models import SupplierRequest
from tests.outbox.test_leases import _expire_lease
from tests.support.outbox import drain_all, make_due, paid_reservation

pytestmark = pytest.mark.django_db


def _waited(entry: dict) -> float:
    return (dt.datetime.fromisoformat(entry["retry_at"]) - dt.datetime.fromisoformat(entry["at"])).total_seconds()


def test_a_flapping_supplier_s_bookings_confirm_once_it_recovers_and_refusals_spend_no_attempts(
        fake_supplier, product, settings):
    settings.OUTBOX_MAX_ATTEMPTS = 2
    settings.SUPPLIER_BREAKER_FAIL_MAX = 2
    settings.SUPPLIER_BREAKER_RESET_SECONDS = 30
    fake_supplier.set_mode(product.code, "fail")
    reservations = [paid_reservation(product) for _ in range(4)]

    first = outbox_drain_once()  # two real calls fail and open the breaker; it refuses the other two

    assert (first.retried, first.deferred) == (2, 2)
    refused = list(OutboxEvent.objects.filter(attempts=0))
    assert len(refused) == 2
    for event in refused:
        assert event.status == OutboxStatus.PENDING
        assert event.errors[-1]["deferred"] == 1
        assert 25 <= _waited(event.errors[-1]) <= 30  # when the breaker's reset period ends, not 15 s

    # The breaker stays open for more rounds than the events have attempts: each is refused.
    for _ in range(3):
        make_due()
        assert outbox_drain_once().deferred == 4
    assert fake_supplier.post_count() == 2
    assert sorted(OutboxEvent.objects.values_list("attempts", flat=True)) == [0, 0, 1, 1]
    assert not DeadLetter.objects.exists()
    assert {e.errors[-1]["deferred"] for e in OutboxEvent.objects.all()} == {3, 4}  # one entry per run of refusals

    fake_supplier.set_mode(product.code, "confirm")  # the supplier recovers …
    settings.SUPPLIER_BREAKER_RESET_SECONDS = 0  # … and the breaker's reset period is over
    drain_all()

    statuses = set(Reservation.objects.filter(pk__in=[r.pk for r in reservations]).values_list("status", flat=True))
    assert statuses == {ReservationStatus.CONFIRMED}
    assert sorted(OutboxEvent.objects.filter(topic="supplier.book").values_list("attempts", flat=True)) == [1, 1, 2, 2]
    assert fake_supplier.post_count() == 6  # 2 failures, then one booking each
    assert len(fake_supplier.bookings()) == 4
    assert not DeadLetter.objects.exists()
    assert SupplierRequest.objects.filter(error_code="breaker_open").count() == 14  # audited all the same


def test_a_lost_lease_stays_counted_when_its_takeover_is_refused_by_the_breaker(fake_supplier, product, supplier,
                                                                                settings):
    settings.OUTBOX_MAX_ATTEMPTS = 2
    reservation = paid_reservation(product)
    [lost] = outbox_claim_due(worker="A", limit=1)  # attempt 1: worker A dies inside the call
    _expire_lease(lost)
    breaker = HttpSupplierAdapter(supplier)._breaker()
    breaker.open()
    try:
        assert outbox_drain_once(worker="B").deferred == 1  # B takes over; the breaker refuses its call
    finally:
        breaker.close()

    event = OutboxEvent.objects.get(reservation=reservation)
    assert (event.status, event.attempts) == (OutboxStatus.PENDING, 1)  # A's call may have arrived: it counts
    assert [e.get("deferred") for e in event.errors] == [None, 1]
    make_due()
    [again] = outbox_claim_due(worker="C", limit=1)  # attempt 2, the last: C dies too
    _expire_lease(again)

    assert outbox_claim_due(worker="D", limit=1) == []

    event.refresh_from_db()
    assert (event.status, event.attempts) == (OutboxStatus.DEAD, 2)
    assert event.last_error == "lease expired 2 times"  # the deferral between them is no attempt
    assert fake_supplier.post_count() == 0
