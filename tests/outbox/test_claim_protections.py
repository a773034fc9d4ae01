"""Protections of the outbox that other tests only see through side effects (issue 13 item 7):
claims skip rows another claim holds instead of waiting for them, and an event's delivery
task goes on the queue when, and only when, its transaction commits."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, transaction
from django.utils.module_loading import import_string
from django_q.models import OrmQ

from outbox.delivery import outbox_claim_due
from outbox.models import OutboxEvent, OutboxStatus
from outbox.services import outbox_enqueue
from tests.support.concurrency import waiting_for_a_row_lock
from tests.support.db import connection_id, raw_connection

pytestmark = pytest.mark.django_db(transaction=True)

BOUND = 20  # seconds: only reached when the protection is gone


def _customer_email(n: int) -> OutboxEvent:
    with transaction.atomic():
        return outbox_enqueue(topic="email.customer", dedup_key=f"email.customer:protection:{n}",
                              payload={"to": f"guest{n}@example.test", "subject": f"mail {n}", "body": "hello"})


def _bounded_wait(event: threading.Event, what: str) -> None:
    if not event.wait(timeout=BOUND):
        raise AssertionError(f"timed out waiting for {what}")


def test_a_claim_skips_the_row_another_claim_holds_instead_of_waiting_for_it():
    events = [_customer_email(n) for n in range(3)]
    holding, release, b_done = threading.Event(), threading.Event(), threading.Event()
    results: dict[str, object] = {}

    def hold_inside_the_claim(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if "FOR UPDATE" in sql and not holding.is_set():
            holding.set()  # A's claim transaction now holds the row of the first event
            _bounded_wait(release, "the test to release the first claim")
        return result

    def claim_a() -> None:
        try:
            with connection.execute_wrapper(hold_inside_the_claim):
                # the on-commit task's claim of one event (a primary-key lookup: that row only)
                results["A"] = outbox_claim_due(worker="A", limit=1, event_id=events[0].pk)
        finally:
            connection.close()

    def claim_b() -> None:
        try:
            results["B connection"] = connection_id()
            results["B"] = outbox_claim_due(worker="B", limit=1)
            results["B returned while A held its row"] = not release.is_set()
        finally:
            b_done.set()
            connection.close()

    a = threading.Thread(target=claim_a)
    a.start()
    b = None
    try:
        _bounded_wait(holding, "the first claim to lock its rows")
        b = threading.Thread(target=claim_b)
        b.start()
        monitor = raw_connection()
        try:  # bounded polling: B answers, or B waits on A's row locks (the failure)
            deadline = time.monotonic() + BOUND
            while not b_done.is_set() and not waiting_for_a_row_lock(monitor, results.get("B connection")):
                assert time.monotonic() < deadline, "the second claim neither returned nor waited"
                time.sleep(0.02)
        finally:
            monitor.close()
    finally:
        release.set()
        a.join(timeout=BOUND)
        if b is not None:
            b.join(timeout=BOUND * 3)

    assert results.get("B returned while A held its row") is True
    assert [e.pk for e in results["B"]] == [events[1].pk]  # the next due event, not a wait for the first
    assert [e.pk for e in results["A"]] == [events[0].pk]
    assert set(OutboxEvent.objects.filter(status=OutboxStatus.IN_FLIGHT).values_list("locked_by", flat=True)) == {
        "A", "B"}


def _queued_tasks_for(event: OutboxEvent) -> list[dict]:
    """The django-q2 tasks on the ORM broker (the test settings' queue) for this event."""
    return [q.task for q in OrmQ.objects.all() if tuple(q.task.get("args") or ()) == (str(event.pk),)]


def test_committing_an_event_puts_its_delivery_task_on_the_queue(mailoutbox):
    with transaction.atomic():
        event = outbox_enqueue(topic="email.customer", dedup_key="email.customer:protection:commit",
                               payload={"to": "guest@example.test", "subject": "hello", "body": "hello"})
        assert _queued_tasks_for(event) == []  # not before the commit: a worker would not find the row

    [task] = _queued_tasks_for(event)
    assert task["func"] == "outbox.tasks.outbox_deliver_event"
    assert import_string(task["func"])(*task["args"]) == "delivered"  # what a worker does with it
    assert [m.subject for m in mailoutbox] == ["hello"]


def test_a_rolled_back_transaction_puts_no_task_on_the_queue():
    enqueued: list[OutboxEvent] = []

    def write_that_fails() -> None:
        with transaction.atomic():
            enqueued.append(outbox_enqueue(topic="email.customer", dedup_key="email.customer:protection:rollback",
                                           payload={"to": "guest@example.test", "subject": "hello", "body": "hello"}))
            raise RuntimeError("the business write failed after the enqueue")

    with pytest.raises(RuntimeError):
        write_that_fails()
    [event] = enqueued

    assert not OutboxEvent.objects.filter(pk=event.pk).exists()
    assert _queued_tasks_for(event) == []
    assert OrmQ.objects.count() == 0
