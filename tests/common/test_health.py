from __future__ import annotations

import pytest
from django.db import connection
from rest_framework.test import APIClient

from tests.support.schedules import record_schedule_runs
from tests.support.servers import closed_port


def test_live_answers_without_touching_anything():
    response = APIClient().get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_db_reports_latency():
    body = APIClient().get("/health/db").json()
    assert body["status"] == "ok"
    assert body["latency_ms"] >= 0


@pytest.mark.django_db
def test_ready_lists_its_checks():
    record_schedule_runs()  # what a live cluster leaves behind
    response = APIClient().get("/health/ready")
    assert response.status_code == 200
    checks = response.json()["checks"]
    assert checks["db"]["status"] == "ok"
    assert checks["cache"]["status"] == "ok"


@pytest.mark.django_db(transaction=True)
def test_unreachable_database_makes_db_and_ready_503_then_recovers(monkeypatch):
    """A real refused connection (a closed port), not a mock; afterwards the next request
    reconnects by itself."""
    real_port = connection.settings_dict["PORT"]
    connection.close()
    monkeypatch.setitem(connection.settings_dict, "PORT", str(closed_port()))
    client = APIClient()

    db = client.get("/health/db")
    ready = client.get("/health/ready")

    assert db.status_code == 503
    assert db.json() == {"status": "error"}
    assert ready.status_code == 503
    assert ready.json()["checks"]["db"]["status"] == "error"
    monkeypatch.setitem(connection.settings_dict, "PORT", real_port)
    assert client.get("/health/db").status_code == 200
