"""Run work in real threads that start together, each on its own database connection."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from django.db import connection


def run_in_threads(count: int, work: Callable[[int], Any], *, timeout: float = 120) -> list[Any]:
    """Start `count` threads that call work(i) at the same moment (a barrier, not a sleep) and
    return their results; an exception is returned in its thread's slot for the test to assert."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def runner(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except Exception as exc:  # surfaced by the caller's assertions
            results[i] = exc
        finally:
            connection.close()  # each thread opened its own connection

    threads = [threading.Thread(target=runner, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout)
    return results
