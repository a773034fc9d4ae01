"""The on-commit enqueue keeps one queue broker per thread and process (outbox/tasks.py): the
ORM broker holds its thread's database connection, and a forked child (a django-q worker, a
gunicorn worker) must not write on its parent's Redis socket."""

from __future__ import annotations

import threading

import pytest

from outbox import tasks

# The ORM broker (no REDIS_URL in the tests) takes its thread's database connection.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh_thread_state():
    tasks._brokers.__dict__.clear()
    yield
    tasks._brokers.__dict__.clear()


def test_one_broker_per_thread_reused_across_enqueues():
    first = tasks._broker()
    assert tasks._broker() is first

    other: list = []
    worker = threading.Thread(target=lambda: other.append(tasks._broker()))
    worker.start()
    worker.join()

    assert other[0] is not first


def test_a_forked_child_makes_its_own(monkeypatch):
    parent = tasks._broker()
    monkeypatch.setattr(tasks.os, "getpid", lambda: -1)  # what a child sees after fork: another pid

    assert tasks._broker() is not parent
