"""E3: losing the database connection mid-request leaves nothing half-written, answers 503,
and the next request reconnects. The connection is killed for real with KILL CONNECTION
from a second connection."""

from __future__ import annotations

import datetime as dt

import pytest
import requests
from django.utils import timezone

from reservations import services
from reservations.models import DailyInventory, Reservation
from tests.conftest import client_for
from tests.factories import ProductFactory, UserFactory
from tests.support.db import connection_id, kill_connection, raw_connection

pytestmark = pytest.mark.django_db(transaction=True)


def _body(product) -> dict:
    return {"product": str(product.id), "date": (timezone.localdate() + dt.timedelta(days=2)).isoformat(),
            "quantity": 2, "guest_name": "Ada", "guest_email": "ada@example.test"}


def test_connection_killed_inside_the_create_transaction_is_503_and_nothing_is_written(monkeypatch):
    product = ProductFactory(daily_capacity=10)
    client = client_for(UserFactory())
    real_record_event = services.reservation_record_event

    def kill_then_continue(**kwargs):
        # Test hook: the inventory is incremented and the reservation inserted, uncommitted;
        # now the server drops our connection, as a crash or failover would.
        kill_connection(connection_id())
        return real_record_event(**kwargs)

    monkeypatch.setattr(services, "reservation_record_event", kill_then_continue)
    response = client.post("/api/v1/reservations/", _body(product), format="json")

    assert response.status_code == 503
    assert response.json()["code"] == "database_unavailable"
    assert response["Retry-After"]
    monkeypatch.setattr(services, "reservation_record_event", real_record_event)
    assert Reservation.objects.count() == 0
    assert not DailyInventory.objects.filter(product=product, reserved__gt=0).exists()
    retry = client.post("/api/v1/reservations/", _body(product), format="json")
    assert retry.status_code == 201
    assert DailyInventory.objects.get(product=product).reserved == 2


def test_connections_killed_between_requests_are_replaced_transparently(live_server):
    """Through a real WSGI server (the test client skips Django's per-request connection
    check): every server-side connection of the web thread is killed between two requests;
    CONN_HEALTH_CHECKS notices at the start of the next request and reconnects."""
    product = ProductFactory()
    user = UserFactory()
    token = client_for(user)._credentials["HTTP_AUTHORIZATION"]
    session = requests.Session()
    session.headers["Authorization"] = token
    url = f"{live_server.url}/api/v1/reservations/"
    assert session.post(url, json=_body(product), timeout=10).status_code == 201

    mine = connection_id()
    killer = raw_connection()
    with killer.cursor() as cur:
        cur.execute("SELECT id FROM information_schema.processlist WHERE db = DATABASE() AND id NOT IN (%s, %s)",
                    [mine, connection_id(killer)])
        victims = [row[0] for row in cur.fetchall()]
    killer.close()
    assert victims, "the web thread should hold a persistent connection"
    for victim in victims:
        kill_connection(victim)

    response = session.post(url, json=_body(product), timeout=10)
    assert response.status_code == 201, response.text
    assert Reservation.objects.filter(user=user).count() == 2
