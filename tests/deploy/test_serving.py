"""What the web role serves under production settings (gunicorn, DEBUG=false): health with
the schedules check, /metrics across gunicorn workers, static files, offline API docs, the
JSON access log; and what the roles refuse to start with."""

from __future__ import annotations

import json
import re

import pytest
import requests

from tests.support.deployment import METRICS_TOKEN

pytestmark = [pytest.mark.xdist_group("deploy"), pytest.mark.timeout(300)]


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one series in Prometheus text format (0 when absent)."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        series, value = line.rsplit(" ", 1)
        found = dict(re.findall(r'(\w+)="([^"]*)"', series))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(value)
    return total


def test_ready_reports_every_schedule_after_migrate_alone(deployment):
    anonymous = requests.get(f"{deployment.base_url}/health/ready", timeout=10)
    response = requests.get(f"{deployment.base_url}/health/ready", timeout=10,
                            headers={"Authorization": f"Bearer {METRICS_TOKEN}"})

    assert anonymous.status_code == response.status_code == 200, response.text
    assert anonymous.json() == {"status": "ok"}  # the details are for operators
    schedules = response.json()["checks"]["schedules"]
    assert set(schedules) == {"outbox drain", "reservation expiry", "payments reconcile", "idempotency keys purge",
                              "api tokens purge", "ledgers reconcile"}
    assert all(s["status"] == "ok" for s in schedules.values())


def test_metrics_need_the_token(deployment):
    assert requests.get(f"{deployment.base_url}/metrics", timeout=10).status_code == 403
    assert requests.get(f"{deployment.base_url}/metrics", timeout=10,
                        headers={"Authorization": "Bearer wrong"}).status_code == 403
    response = requests.get(f"{deployment.base_url}/metrics", timeout=10,
                            headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")


def test_stripe_counters_are_summed_across_gunicorn_workers(deployment):
    """Two gunicorn workers serve the pays; whichever answers the scrape reports them all."""
    for _ in range(6):
        deployment.reserve_and_pay("DEPLOY-OK")
    payments = deployment.sql("SELECT COUNT(*) FROM payments_payment")[0][0]

    scrapes = [deployment.metrics() for _ in range(4)]

    for text in scrapes:
        assert sample(text, "reserve_stripe_calls_total", operation="payment_intent.create", outcome="ok") == payments
        assert sample(text, "reserve_stripe_call_seconds_count", operation="payment_intent.create") == payments


def test_state_gauges_come_from_the_database(deployment):
    text = deployment.metrics()

    open_letters = deployment.sql("SELECT COUNT(*) FROM outbox_deadletter WHERE status = 'OPEN'")[0][0]
    on_request = deployment.sql("SELECT COUNT(*) FROM reservations_reservation WHERE status = 'CONFIRMED_INTERNAL' "
                                "AND supplier_status = 'ON_REQUEST'")[0][0]
    succeeded = deployment.sql("SELECT COUNT(*) FROM payments_payment WHERE status = 'SUCCEEDED'")[0][0]
    assert sample(text, "reserve_dead_letters_open") == open_letters
    assert sample(text, "reserve_reservations_on_request") == on_request
    assert sample(text, "reserve_payments", status="SUCCEEDED") == succeeded
    assert "reserve_outbox_oldest_due_age_seconds" in text
    assert "reserve_outbox_events" in text
    assert sample(text, "reserve_circuit_breaker_state", breaker="stripe", state="closed") == 1
    assert sample(text, "reserve_metrics_source_up") == sample(text, "reserve_metrics_source_up", source="outbox") + \
        sample(text, "reserve_metrics_source_up", source="payments") + \
        sample(text, "reserve_metrics_source_up", source="reservations") + \
        sample(text, "reserve_metrics_source_up", source="breakers") == 4


def test_supplier_calls_reach_prometheus_through_the_worker_port(deployment):
    paid = deployment.reserve_and_pay("DEPLOY-OK")
    deployment.wait_for("CONFIRMED", lambda: deployment.reservation(paid["id"])["status"] == "CONFIRMED", timeout=10)
    url = f"http://127.0.0.1:{deployment.worker_metrics_port}/metrics"

    assert requests.get(url, timeout=10).status_code == 403
    text = deployment.metrics(url)

    assert sample(text, "reserve_supplier_calls_total", supplier="deploy-supplier", operation="book",
                  outcome="confirmed") >= 1
    assert sample(text, "reserve_supplier_call_seconds_count", supplier="deploy-supplier", operation="book") >= 1
    assert requests.get(f"http://127.0.0.1:{deployment.worker_metrics_port}/health/live", timeout=5).json() == {
        "status": "ok"}


def test_admin_static_files_are_served_by_the_web_role(deployment):
    response = requests.get(f"{deployment.base_url}/static/admin/css/base.css", timeout=10)

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/css")
    login = requests.get(f"{deployment.base_url}/admin/login/", timeout=10).text
    hashed = re.search(r'href="(/static/admin/css/base\.[0-9a-f]{12}\.css)"', login)
    assert hashed, "the admin links the cache-busted (manifest) name"
    cached = requests.get(deployment.base_url + hashed.group(1), timeout=10, headers={"Accept-Encoding": "gzip"})
    assert cached.status_code == 200
    assert "max-age=315360000" in cached.headers["Cache-Control"]
    assert cached.headers.get("Content-Encoding") == "gzip"


@pytest.mark.parametrize("path", ["/api/docs/", "/api/redoc/"])
def test_api_docs_load_only_assets_we_serve(deployment, path):
    page = requests.get(deployment.base_url + path, timeout=10)

    assert page.status_code == 200
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets
    for asset in assets:
        assert asset.startswith("/"), f"{asset} is not served by us"
        assert requests.get(deployment.base_url + asset, timeout=10).status_code == 200, asset
    assert "cdn" not in page.text.lower()


def test_access_log_has_one_json_line_per_request(deployment):
    paid = deployment.reserve_and_pay("DEPLOY-OK")
    requests.get(f"{deployment.base_url}/health/live", headers={"X-Request-ID": "access-log-probe"}, timeout=10)
    user_id = deployment.sql("SELECT id FROM auth_user WHERE username = 'deploy-customer'")[0][0]

    lines = [json.loads(line) for line in deployment.log("web").splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get("logger") == "reserve.access"]

    probe = [line for line in access if line.get("request_id") == "access-log-probe"]
    assert len(probe) == 1
    assert {k: probe[0][k] for k in ("method", "path", "status")} == {"method": "GET", "path": "/health/live",
                                                                         "status": 200}
    assert probe[0]["duration_ms"] >= 0
    pay = [line for line in access if line["path"] == f"/api/v1/reservations/{paid['id']}/pay/"]
    assert len(pay) == 1
    assert (pay[0]["method"], pay[0]["status"], pay[0]["user_id"]) == ("POST", 200, user_id)
    assert pay[0]["request_id"]


@pytest.mark.parametrize(("override", "error"), [
    ({"EMAIL_URL": "consolemail://"}, "reserve.E001"),
    ({"STRIPE_API_KEY": ""}, "reserve.E002"),
    ({"STRIPE_WEBHOOK_SECRET": ""}, "reserve.E003"),
])
def test_roles_refuse_to_start_without_production_configuration(deployment, override, error):
    out = deployment.run("migrate", check=False, **override)
    assert out.startswith("exit 1")
    assert error in out
    out = deployment.run("web", "--bind", "127.0.0.1:1", check=False, **override)
    assert not out.startswith("exit 0")
    assert error in out


def test_demo_seed_commands_refuse_production_settings(deployment):
    for command in ("seed_demo", "seed_backoffice_demo"):
        out = deployment.run("manage", command, check=False)
        assert out.startswith("exit 1")
        assert "Refusing to load demo data under production settings" in out
