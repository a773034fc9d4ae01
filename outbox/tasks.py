"""django-q2 entry points. The queue only carries "look at the outbox now": retry state lives
on the outbox rows, and failed tasks are acknowledged, never re-run by the broker (settings
Q_CLUSTER: max_attempts=1, ack_failures=True)."""

from __future__ import annotations

import os
import threading
import time
import uuid
from typing import Any

from django.conf import settings
from django_q.brokers import get_broker
from django_q.tasks import async_task

from outbox import worker_shutdown
from outbox.delivery import DrainStats, outbox_claim_due, outbox_deliver, outbox_drain, worker_name

# The drain runs in slices this long, checking between them whether the worker is stopping.
DRAIN_SLICE_SECONDS = 1.0


_brokers = threading.local()


def _broker() -> Any:
    """This thread's django-q broker. async_task without one makes a new broker per task, and
    the Redis broker a new connection pool, so a new TCP connection per enqueue (a fifth of a
    pay's time). One per thread and process: the ORM broker holds the thread's database
    connection, and a forked child must not share its parent's socket."""
    held = getattr(_brokers, "held", None)
    if held is None or held[0] != os.getpid():
        held = _brokers.held = (os.getpid(), get_broker())
    return held[1]


def enqueue_delivery(event_id: uuid.UUID | str) -> None:
    """Called on commit of the transaction that wrote the event (low latency, C2)."""
    # save=False: a delivery's outcome is on the outbox row; the queue's result table would
    # only grow by one row per event.
    async_task("outbox.tasks.outbox_deliver_event", str(event_id),
               q_options={"task_name": f"outbox:{event_id}", "save": False, "broker": _broker()})


def outbox_deliver_event(event_id: str) -> str:
    """Deliver one event if it is due and free; otherwise the drain will."""
    claimed = outbox_claim_due(worker=worker_name(), limit=1, event_id=event_id)
    if not claimed:
        return "not claimable"
    return outbox_deliver(event=claimed[0])


def outbox_drain_task() -> dict[str, int]:
    """Scheduled every minute; loops for OUTBOX_DRAIN_SECONDS so that there is always a
    drain running even though the scheduler fires late by up to ~30 s. Returns early when
    the worker role is stopping (outbox.worker_shutdown): no new event is taken after that."""
    # Stop early enough that the event in progress finishes before the queue's timeout.
    duration = min(settings.OUTBOX_DRAIN_SECONDS, settings.Q_CLUSTER["timeout"] - 20)
    deadline = time.monotonic() + duration
    total = DrainStats()
    while not worker_shutdown.stopping():
        left = deadline - time.monotonic()
        if left <= 0:
            break
        stats = outbox_drain(duration_seconds=min(DRAIN_SLICE_SECONDS, left))
        total.add(stats)
    return total.as_dict()


def enqueue_drain(*, reason: str) -> None:
    """Start a drain now rather than at the scheduler's next tick (up to ~30 s after a
    cluster starts). Counted as a run of the "outbox drain" schedule."""
    async_task("outbox.tasks.outbox_drain_task", q_options={"task_name": f"outbox drain ({reason})",
                                                            "group": "outbox drain"})
