"""C2 leases under slow calls: no event is performed twice because a worker sat on a lease it
was not using, a lease that keeps expiring ends in the dead-letter queue, and one event's
failure never stops the drain."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
from django.db import transaction
from django.utils import timezone

from outbox.alerts import CustomerEmailHandler
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
    original = CustomerEmailHandler.perform
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

    monkeypatch.setattr(CustomerEmailHandler, "perform", slow_perform)

    outbox_drain_once(worker="A")

    sent = Counter(m.subject for m in mailoutbox)
    assert sent == {"mail 0": 1, "mail 1": 1, "mail 2": 1}
    assert set(OutboxEvent.objects.values_list("status", "attempts")) == {(OutboxStatus.DELIVERED, 1)}
