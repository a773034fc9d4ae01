"""C2 leases under slow calls: no event is performed twice because a worker sat on a lease it
was not using, a lease that keeps expiring ends in the dead-letter queue, and one event's
failure never stops the drain."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
from django.db import transaction
from django.utils import timezone

from outbox.alerts import EmailMessageHandler
from outbox.delivery import outbox_drain_once
from outbox.models import OutboxEvent, OutboxStatus
from outbox.services import outbox_enqueue

pytestmark = pytest.mark.django_db


def _customer_email(n: int) -> OutboxEvent:
    with transaction.atomic():
        return outbox_enqueue(topic="email.customer", dedup_key=f"email.customer:test:{n}",
                              payload={"to": f"guest{n}@example.test", "subject": f"mail {n}", "body": "hello"})


def test_the_tail_of_a_batch_is_not_sent_again_by_a_worker_whose_lease_expired(mailoutbox, monkeypatch):
    for n in range(3):
        _customer_email(n)
    original = EmailMessageHandler.perform
    calls: list[str] = []

    def slow_perform(self, event):
        calls.append(event.payload["subject"])
        result = original(self, event)
        if len(calls) == 1:
            # Worker A's first call was slow: every lease A holds besides this one has run out
            # meanwhile (moved in the database), and worker B drains what is due.
            (OutboxEvent.objects.filter(status=OutboxStatus.IN_FLIGHT).exclude(pk=event.pk)
             .update(locked_until=timezone.now() - dt.timedelta(seconds=1)))
            outbox_drain_once(worker="B")
        return result

    monkeypatch.setattr(EmailMessageHandler, "perform", slow_perform)

    outbox_drain_once(worker="A")

    sent = Counter(m.subject for m in mailoutbox)
    assert sent == {"mail 0": 1, "mail 1": 1, "mail 2": 1}
    assert set(OutboxEvent.objects.values_list("status", "attempts")) == {(OutboxStatus.DELIVERED, 1)}


def _expire_lease(event: OutboxEvent) -> None:
    """A call slower than the lease: move its end into the past instead of waiting for it."""
    OutboxEvent.objects.filter(pk=event.pk).update(locked_until=timezone.now() - dt.timedelta(seconds=1))


def test_an_event_whose_lease_keeps_expiring_is_dead_lettered_once_its_attempts_are_spent(fake_supplier, product):
    from outbox.delivery import outbox_claim_due
    from outbox.models import DeadLetter
    from reservations.models import ReservationStatus, SupplierStatus
    from tests.support.outbox import paid_reservation

    reservation = paid_reservation(product)
    for attempt in range(1, 6):  # OUTBOX_MAX_ATTEMPTS calls, each outlived by its worker
        [claimed] = outbox_claim_due(worker=f"W{attempt}", limit=1)
        assert claimed.attempts == attempt
        _expire_lease(claimed)

    assert outbox_claim_due(worker="W6", limit=1) == []  # not a sixth call

    event = OutboxEvent.objects.get(reservation=reservation)
    assert (event.status, event.attempts, event.locked_until) == (OutboxStatus.DEAD, 5, None)
    assert event.last_error == "lease expired 5 times"
    assert [e["attempt"] for e in event.errors] == [1, 2, 3, 4, 5]
    [dead] = DeadLetter.objects.filter(event=event)
    assert (dead.attempts, dead.last_error) == (5, "lease expired 5 times")
    reservation.refresh_from_db()  # the supplier.book handler's on_dead ran
    assert (reservation.status, reservation.supplier_status) == (ReservationStatus.CONFIRMED_INTERNAL,
                                                                 SupplierStatus.ON_REQUEST)
    assert fake_supplier.post_count() == 0


def test_a_takeover_keeps_the_retry_schedule_of_the_attempts_really_made(fake_supplier, product, settings):
    from outbox.delivery import outbox_claim_due, outbox_deliver
    from tests.support.outbox import make_due, paid_reservation

    settings.SUPPLIER_BREAKER_FAIL_MAX = 100
    fake_supplier.set_mode(product.code, "fail")
    reservation = paid_reservation(product)
    assert outbox_drain_once().retried == 1  # attempt 1 fails: retry after 15 s
    make_due()
    [lost] = outbox_claim_due(worker="A", limit=1)  # attempt 2: A's call outlives its lease
    _expire_lease(lost)

    assert outbox_drain_once(worker="B").retried == 1  # attempt 3 by B fails

    event = OutboxEvent.objects.get(reservation=reservation)
    assert event.attempts == 3
    assert [(e["attempt"], e["error"][:13]) for e in event.errors] == [
        (1, event.errors[0]["error"][:13]), (2, "lease expired"), (3, event.errors[2]["error"][:13])]
    delay = dt.datetime.fromisoformat(event.errors[-1]["retry_at"]) - dt.datetime.fromisoformat(event.errors[-1]["at"])
    assert delay.total_seconds() == 60  # the third entry of 15, 30, 60, 120
    assert outbox_deliver(event=lost) == "stale"  # A's late answer does not count


@pytest.mark.django_db(transaction=True)
def test_one_event_that_blows_up_does_not_stop_the_drain_for_the_others(alerts, mailoutbox, monkeypatch, caplog):
    from outbox.alerts import AlertEmailHandler
    from outbox.delivery import outbox_drain

    with transaction.atomic():
        poisoned = outbox_enqueue(topic="alert.email", dedup_key="alert.email:poisoned",
                                  payload={"subject": "s", "body": "b"})
    OutboxEvent.objects.filter(pk=poisoned.pk).update(attempts=4, available_at=timezone.now() - dt.timedelta(minutes=1))
    healthy = _customer_email(1)

    def sentry_down(self, event, error):
        raise RuntimeError("sentry exploded")

    # Its last attempt fails, and dead-lettering it raises a non-database error.
    monkeypatch.setattr(AlertEmailHandler, "perform", lambda self, event: "email: SMTP down")
    monkeypatch.setattr(AlertEmailHandler, "on_dead", sentry_down)

    stats = outbox_drain(duration_seconds=1)

    assert stats.delivered == 1
    assert [m.subject for m in mailoutbox] == ["mail 1"]
    assert OutboxEvent.objects.get(pk=healthy.pk).status == OutboxStatus.DELIVERED
    poisoned.refresh_from_db()
    assert (poisoned.status, poisoned.attempts) == (OutboxStatus.IN_FLIGHT, 5)  # left to its lease
    assert any(getattr(r, "event_id", None) == str(poisoned.pk) and r.exc_info for r in caplog.records
               if r.message == "outbox delivery failed; the event is left to its lease")
