"""The deployed topology (deploy/entrypoint.sh's roles as real processes, production settings,
MariaDB, Redis broker, localstripe, the fake supplier) books, retries and delivers with
nothing run but migrate and the processes (G4, C3)."""

from __future__ import annotations

import calendar
import re
import time

import pytest
import requests

from tests.support.deployment import STAFF, Deployment

pytestmark = [pytest.mark.xdist_group("deploy"), pytest.mark.timeout(300)]

COMMIT_TO_CALL_BUDGET_S = 2.0  # C3 / G4: every new event goes out within 2 s of its commit


def epoch(naive_utc) -> float:
    return calendar.timegm(naive_utc.timetuple()) + naive_utc.microsecond / 1e6


def supplier_posts(deployment: Deployment, reservation_id: str) -> list[float]:
    key = f"reservation:{reservation_id}:book"
    return sorted(at for k, at in requests.get(f"{deployment.supplier.base_url}/_log", timeout=5).json() if k == key)


def first_attempt_delay(event: dict) -> float:
    """Commit (≈ created_at) → the first attempt's end, from the outbox row."""
    if event["errors"]:
        first = event["errors"][0]["at"]
        from datetime import datetime

        first_at = datetime.fromisoformat(first).timestamp()
    else:
        first_at = epoch(event["delivered_at"])
    return first_at - epoch(event["created_at"])


def events_for(deployment: Deployment, reservation_id: str) -> dict[str, dict]:
    rows = deployment.sql(
        "SELECT id FROM outbox_outboxevent WHERE reservation_id = %s OR JSON_UNQUOTE(JSON_EXTRACT(payload, "
        "'$.reservation_id')) = %s", reservation_id.replace("-", ""), reservation_id)
    ids = {r[0] for r in rows}
    return {e["topic"]: e for e in deployment.outbox_events() if e["id"] in ids}


def test_pay_books_with_the_supplier_within_two_seconds_of_commit(deployment):
    paid = deployment.reserve_and_pay("DEPLOY-OK")
    assert (paid["status"], paid["supplier_status"]) == ("PAID", "PENDING")

    deployment.wait_for("CONFIRMED", lambda: deployment.reservation(paid["id"])["status"] == "CONFIRMED", timeout=10)

    book = events_for(deployment, paid["id"])["supplier.book"]
    assert first_attempt_delay(book) < COMMIT_TO_CALL_BUDGET_S


def test_a_supplier_failing_twice_then_answering_201_ends_confirmed_within_a_minute(deployment):
    """No setup_schedules, no command: migrate created the drain schedule, the worker drains."""
    paid = deployment.reserve_and_pay("FLAKY-DEPLOY")
    started = time.monotonic()

    deployment.wait_for("CONFIRMED after two 503s",
                        lambda: deployment.reservation(paid["id"])["status"] == "CONFIRMED", timeout=60, step=0.5)

    assert time.monotonic() - started < 60
    posts = supplier_posts(deployment, paid["id"])
    assert len(posts) == 3
    book = events_for(deployment, paid["id"])["supplier.book"]
    # Each retry was made within 2 s of its due time (backoff 15 s, then 30 s).
    for failure, next_post in zip(book["errors"], posts[1:], strict=True):
        from datetime import datetime

        due = datetime.fromisoformat(failure["retry_at"]).timestamp()
        assert -0.1 <= next_post - due < COMMIT_TO_CALL_BUDGET_S


def test_an_email_enqueued_by_a_handler_goes_out_within_two_seconds(deployment):
    """Supplier says no: the compensation handler refunds, cancels and enqueues the guest
    e-mail inside its own delivery; that e-mail must not wait for anything else."""
    paid = deployment.reserve_and_pay("REJECT-DEPLOY", guest_email="reject-guest@example.com")

    deployment.wait_for("CANCELLED", lambda: deployment.reservation(paid["id"])["status"] == "CANCELLED", timeout=15)
    deployment.wait_for("e-mail written", lambda: any(
        "reject-guest@example.com" in p.read_text(errors="replace") for p in deployment.mail_dir.iterdir()), timeout=5)

    # The refund (a Stripe call) may still be in flight when the e-mail is written.
    deployment.wait_for("every event delivered", lambda: all(
        event["status"] == "DELIVERED" for event in events_for(deployment, paid["id"]).values()), timeout=15)
    events = events_for(deployment, paid["id"])
    assert set(events) >= {"supplier.book", "reservation.compensate", "email.customer"}
    for topic, event in events.items():
        assert event["status"] == "DELIVERED", topic
        assert first_attempt_delay(event) < COMMIT_TO_CALL_BUDGET_S, topic
    assert deployment.reservation(paid["id"])["payment"]["status"] == "REFUNDED"


def _dead_letter_for(deployment: Deployment, reservation_id: str) -> tuple[int, int]:
    rows = deployment.sql("SELECT id, version FROM outbox_deadletter WHERE reservation_id = %s AND status = 'OPEN'",
                          reservation_id.replace("-", ""))
    return rows[0] if rows else None


def test_a_dead_letter_replayed_by_command_goes_out_within_two_seconds(deployment):
    paid = deployment.reserve_and_pay("BAD-DEPLOY")
    dead = deployment.wait_for("dead letter", lambda: _dead_letter_for(deployment, paid["id"]), timeout=10)

    deployment.run("manage", "deadletters", "replay", str(dead[0]), "--actor", "staff:ops")
    replayed_at = time.time()

    posts = deployment.wait_for("second supplier call", lambda: (p := supplier_posts(deployment, paid["id"]))
                                and len(p) == 2 and p, timeout=5)
    assert posts[1] - replayed_at < COMMIT_TO_CALL_BUDGET_S


def test_a_dead_letter_replayed_in_the_admin_goes_out_within_two_seconds(deployment):
    paid = deployment.reserve_and_pay("BAD-DEPLOY")
    dead = deployment.wait_for("dead letter", lambda: _dead_letter_for(deployment, paid["id"]), timeout=10)
    admin = requests.Session()
    login = admin.get(f"{deployment.base_url}/admin/login/", timeout=10)
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
    response = admin.post(f"{deployment.base_url}/admin/login/?next=/admin/", timeout=10, data={
        "csrfmiddlewaretoken": csrf, "username": STAFF[0], "password": STAFF[1]})
    assert "Log out" in response.text or "logout" in response.text
    replay_url = f"{deployment.base_url}/admin/outbox/deadletter/{dead[0]}/replay/"
    form = admin.get(replay_url, timeout=10)
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)

    response = admin.post(replay_url, data={"csrfmiddlewaretoken": csrf, "version": dead[1]},
                          headers={"Referer": replay_url}, timeout=10)
    replayed_at = time.time()

    assert response.status_code == 200
    posts = deployment.wait_for("second supplier call", lambda: (p := supplier_posts(deployment, paid["id"]))
                                and len(p) == 2 and p, timeout=5)
    assert posts[1] - replayed_at < COMMIT_TO_CALL_BUDGET_S
