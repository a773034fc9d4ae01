"""A graceful stop for the drain loops of a django-q2 cluster (the worker role).

django-q2 stops a cluster by letting each worker finish its current task, and a drain task
loops for OUTBOX_DRAIN_SECONDS: on SIGTERM it would hold the stop for up to 100 s, past any
orchestrator's grace period, and then be killed mid-call. The worker role
(`manage.py run_worker`) creates this event before django-q2 forks its processes, so every
worker process shares it; on SIGTERM it is set, and each drain stops taking events and
returns after the event in progress (whose call is bounded by the outbox call budget).

Under a plain `manage.py qcluster` there is no event and drains run to their end."""

from __future__ import annotations

import multiprocessing
from multiprocessing.synchronize import Event

_stop: Event | None = None


def install() -> Event:
    """Call in the cluster's main process, before it starts (fork shares the event)."""
    global _stop
    _stop = multiprocessing.get_context("fork").Event()
    return _stop


def stopping() -> bool:
    return _stop is not None and _stop.is_set()


def request_stop() -> None:
    if _stop is not None:
        _stop.set()
