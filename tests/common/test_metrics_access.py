"""/metrics is served only with the bearer token or from METRICS_ALLOWED_NETWORKS (api.md),
with the client address decided by NUM_PROXIES."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.fixture
def metrics_settings(settings):
    settings.METRICS_TOKEN = "s3cret-token"
    settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8", "fd00::/8"]
    settings.NUM_PROXIES = 0
    return settings


def test_no_token_and_no_network_configured_is_forbidden(settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = []
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 403
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 403


def test_the_bearer_token_opens_it_from_anywhere(metrics_settings):
    client = Client(REMOTE_ADDR="203.0.113.5")
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token")
    assert response.status_code == 200
    assert b"reserve_outbox_oldest_due_age_seconds" in response.content


@pytest.mark.parametrize(("address", "status"), [("10.20.30.40", 200), ("fd00::7", 200), ("11.0.0.1", 403)])
def test_allowed_networks(metrics_settings, address, status):
    assert Client(REMOTE_ADDR=address).get("/metrics").status_code == status


def test_x_forwarded_for_cannot_fake_an_allowed_address(metrics_settings):
    client = Client(REMOTE_ADDR="203.0.113.5")
    assert client.get("/metrics", HTTP_X_FORWARDED_FOR="10.1.1.1").status_code == 403
    metrics_settings.NUM_PROXIES = 1
    assert client.get("/metrics", HTTP_X_FORWARDED_FOR="10.1.1.1, 203.0.113.99").status_code == 403


def test_a_failing_gauge_source_does_not_fail_the_scrape(metrics_settings, monkeypatch):
    from common import metrics

    def broken():
        raise RuntimeError("database gone")

    monkeypatch.setitem(metrics._GAUGE_SOURCES, "broken", broken)
    response = Client(REMOTE_ADDR="10.0.0.1").get("/metrics")

    assert response.status_code == 200
    assert b'reserve_metrics_source_up{source="broken"} 0.0' in response.content
    assert b'reserve_metrics_source_up{source="outbox"} 1.0' in response.content
