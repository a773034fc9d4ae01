"""A worker that dies holding a lease: a real `manage.py qcluster` is SIGKILLed while it waits
for a slow supplier; after the lease the event is delivered again, and the supplier holds
exactly one booking (stable idempotency key)."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest
from django.db import connection
from django.utils import timezone

from outbox.delivery import outbox_drain_once
from outbox.models import OutboxEvent, OutboxStatus
from reservations.models import ReservationStatus
from tests.support.outbox import paid_reservation, wait_until
from tests.support.servers import ROOT, python_cmd

pytestmark = pytest.mark.django_db(transaction=True)


def _qcluster(*, lease_seconds: int) -> subprocess.Popen:
    s = connection.settings_dict
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test",
           "DATABASE_URL": f"mysql://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 3306}/{s['NAME']}",
           "OUTBOX_LEASE_SECONDS": str(lease_seconds), "Q_WORKERS": "1", "REDIS_URL": "", "TEST_QUIET_LOGS": "1"}
    log = open(ROOT / ".test-logs" / f"qcluster-{os.getpid()}.log", "ab")  # noqa: SIM115
    return subprocess.Popen(python_cmd("manage.py", "qcluster"), cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


def test_a_killed_worker_s_event_is_delivered_again_after_its_lease(fake_supplier, product):
    (ROOT / ".test-logs").mkdir(exist_ok=True)
    fake_supplier.set_mode(product.code, "slow:60:1")  # the first call hangs; a repeat answers at once
    reservation = paid_reservation(product)  # committed: its on-commit task waits in the ORM queue
    event = OutboxEvent.objects.get(reservation=reservation)
    worker = _qcluster(lease_seconds=3)
    try:
        # The worker took the event and is inside the supplier call.
        wait_until(lambda: fake_supplier.state()["key_requests"], timeout=60, message="the worker's supplier call")
        event.refresh_from_db()
        assert (event.status, event.attempts) == (OutboxStatus.IN_FLIGHT, 1)
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)

    event.refresh_from_db()
    assert event.status == OutboxStatus.IN_FLIGHT  # the dead worker's lease still stands
    assert outbox_drain_once().total == 0  # not before it expires
    wait_until(lambda: OutboxEvent.objects.filter(pk=event.pk, locked_until__lte=timezone.now()).exists(),
               timeout=30, message="the lease to expire")

    wait_until(lambda: outbox_drain_once().delivered, timeout=30, message="redelivery")

    event.refresh_from_db()
    reservation.refresh_from_db()
    assert (event.status, event.attempts) == (OutboxStatus.DELIVERED, 2)
    assert reservation.status == ReservationStatus.CONFIRMED
    [booking] = fake_supplier.bookings(reference=reservation.code)
    assert reservation.supplier_booking_id == booking["booking_id"]
    assert fake_supplier.state()["key_requests"] == {f"reservation:{reservation.id}:book": 2}
