"""Run work in real threads that start together, each on its own database connection."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from django.db import connection

from tests.support.db import connection_id, raw_connection


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


def waiting_for_a_row_lock(monitor: Any, conn_id: int | None) -> bool:
    """Whether the server connection `conn_id` is blocked on a row lock right now (InnoDB's
    LOCK WAIT), asked through `monitor`, a raw connection of its own. Read from SHOW ENGINE
    INNODB STATUS: information_schema.INNODB_TRX is a cache that is not refreshed while it
    is read more often than every 0.1 s, so polling it sees a stale picture."""
    if conn_id is None:
        return False
    with monitor.cursor() as cur:
        cur.execute("SHOW ENGINE INNODB STATUS")
        status = cur.fetchone()[2]
    return any("LOCK WAIT" in trx and f" thread id {conn_id}," in trx for trx in status.split("---TRANSACTION"))


def run_overlapping(works: list[Callable[[], Any]], *, point: Callable[[str], bool],
                    timeout: float = 20) -> list[Any]:
    """Run each work in its own thread and connection (started together, as run_in_threads),
    each held inside its transaction right after its first SQL statement for which
    `point(sql)` is true, until every other work has reached its own point, is blocked on a
    row lock, or has finished. The transactions then overlap exactly where the race is: two
    lock orders that can deadlock do deadlock, a missing lock lets both read the same row.
    Bounded polling, never a sleep that hopes the other thread got there."""
    count = len(works)
    reached = [threading.Event() for _ in range(count)]
    finished = [threading.Event() for _ in range(count)]
    conn_ids: list[int | None] = [None] * count

    def others_there(i: int, monitor: Any) -> bool:
        return all(reached[j].is_set() or finished[j].is_set() or waiting_for_a_row_lock(monitor, conn_ids[j])
                   for j in range(count) if j != i)

    def hold(i: int) -> None:
        monitor = raw_connection()
        try:
            deadline = time.monotonic() + timeout
            while not others_there(i, monitor):
                if time.monotonic() > deadline:
                    raise AssertionError(f"work {i}: the others never reached their point")
                time.sleep(0.02)
        finally:
            monitor.close()

    def work(i: int) -> Any:
        conn_ids[i] = connection_id()

        def wrapper(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
            result = execute(sql, params, many, context)
            if not reached[i].is_set() and point(sql):
                reached[i].set()
                hold(i)
            return result

        try:
            with connection.execute_wrapper(wrapper):
                return works[i]()
        finally:
            finished[i].set()

    return run_in_threads(count, work, timeout=timeout * 3)
