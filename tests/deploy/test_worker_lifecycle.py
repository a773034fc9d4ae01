"""The worker role under an orchestrator: SIGTERM stops it gracefully within the grace
period, and a crash mid-delivery is taken over by the next worker with the same key."""

from __future__ import annotations

import signal
import time

import pytest
import requests

pytestmark = [pytest.mark.xdist_group("deploy"), pytest.mark.timeout(300)]

GRACE_PERIOD_S = 60  # compose.yaml stop_grace_period of the worker


def in_flight_at_supplier(deployment, reservation_id: str) -> bool:
    key = f"reservation:{reservation_id}:book"
    return any(k == key for k, _ in requests.get(f"{deployment.supplier.base_url}/_log", timeout=5).json())


def test_sigterm_lets_the_call_in_progress_finish_and_stops_the_drains(deployment):
    """A drain is running (one starts with the worker, the schedule keeps one going) and a slow
    supplier call is in progress: the call finishes and is recorded, the drains stop taking
    events, and the process exits long before a drain's 100 s would have ended."""
    deployment.run("manage", "shell", "-c", "from outbox.tasks import enqueue_drain; enqueue_drain(reason='test')")
    deployment.wait_for("a drain running", lambda: "outbox drain (test)" in deployment.log("worker"), timeout=10)
    paid = deployment.reserve_and_pay("SLOW-DEPLOY")  # the supplier answers after 15 s
    deployment.wait_for("call in flight", lambda: in_flight_at_supplier(deployment, paid["id"]), timeout=5)
    worker = deployment.worker

    started = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    worker.wait(timeout=GRACE_PERIOD_S)
    stopped_after = time.monotonic() - started

    assert worker.returncode == 0
    assert stopped_after < 30, f"stopped after {stopped_after:.1f} s"  # the 15 s call, not a 100 s drain
    assert deployment.reservation(paid["id"])["status"] == "CONFIRMED"
    assert deployment.sql("SELECT COUNT(*) FROM outbox_outboxevent WHERE status = 'IN_FLIGHT'")[0][0] == 0
    assert len(deployment.supplier.bookings(reference=deployment.reservation(paid["id"])["code"])) == 1
    deployment.start_worker()


def test_a_worker_killed_mid_delivery_is_taken_over_by_the_next_one(deployment):
    paid = deployment.reserve_and_pay("SLOW-DEPLOY")
    deployment.wait_for("call in flight", lambda: in_flight_at_supplier(deployment, paid["id"]), timeout=5)

    deployment.kill_worker()
    deployment.start_worker()

    # The lease (OUTBOX_LEASE_SECONDS, 60) ends, the new worker's drain claims it again and
    # calls with the same Idempotency-Key: the supplier returns the first booking.
    deployment.wait_for("CONFIRMED after the takeover",
                        lambda: deployment.reservation(paid["id"])["status"] == "CONFIRMED", timeout=80, step=1)
    code = deployment.reservation(paid["id"])["code"]
    assert len(deployment.supplier.bookings(reference=code)) == 1
    history = deployment.sql("SELECT errors FROM outbox_outboxevent WHERE reservation_id = %s AND topic = "
                             "'supplier.book'", paid["id"].replace("-", ""))[0][0]
    assert "lease expired" in history
