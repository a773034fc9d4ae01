"""The production topology, run the way the image runs it but without Docker (no daemon here):
deploy/entrypoint.sh's roles as real processes under production settings, on MariaDB (a
database of its own), Redis (broker, cache and breakers) and a django-q2 cluster name of its
own, with a private localstripe and the fake supplier over HTTP.

    migrate  → web (gunicorn, gunicorn.conf.py) → worker (run_worker: qcluster)

Only the image build itself is not exercised (README, "Deploy")."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import MySQLdb
import redis
import requests

from tests.support.fake_supplier import FakeSupplier
from tests.support.servers import ROOT, free_port, start_server, wait_for_port

ENTRYPOINT = ROOT / "deploy" / "entrypoint.sh"
VENV_BIN = Path(sys.executable).parent
METRICS_TOKEN = "deploy-test-metrics-token"
STAFF = ("opsstaff", "ops-staff-pass-123")


def _mysql(database: str | None = None) -> MySQLdb.Connection:
    url = urlparse(os.environ.get("DATABASE_URL", "mysql://root@127.0.0.1:3306/reserve"))
    kwargs: dict[str, Any] = {"host": url.hostname or "127.0.0.1", "port": url.port or 3306,
                              "user": url.username or "root", "passwd": url.password or "", "autocommit": True}
    if database:
        kwargs["db"] = database
    return MySQLdb.connect(**kwargs)


def base_database_url() -> str:
    return os.environ.get("DATABASE_URL", "mysql://root@127.0.0.1:3306/reserve")


@dataclass
class Deployment:
    tmp: Path
    db_name: str
    redis_url: str
    stripe_url: str
    supplier: FakeSupplier
    web_port: int = field(default_factory=free_port)
    worker_metrics_port: int = field(default_factory=free_port)
    cluster_name: str = field(default_factory=lambda: f"deploytest{uuid.uuid4().hex[:8]}")
    web: subprocess.Popen | None = None
    worker: subprocess.Popen | None = None
    token: str = ""
    products: dict[str, str] = field(default_factory=dict)

    # --- processes ------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def mail_dir(self) -> Path:
        return self.tmp / "mail"

    def env(self, **extra: str) -> dict[str, str]:
        db = urlparse(base_database_url())
        database_url = db._replace(path=f"/{self.db_name}").geturl()
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DJANGO_"))},
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHON": sys.executable,
            "DJANGO_SETTINGS_MODULE": "config.settings.production",
            "SECRET_KEY": "deploy-test-secret-key-not-for-production-0123456789",
            "DEBUG": "false",
            "SECURE_SSL_REDIRECT": "false",
            "INSECURE_LOCAL_HTTP": "true",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SUPPLIER_ALLOWED_HOSTS": "127.0.0.1,localhost",  # the fake supplier, on loopback
            "DATABASE_URL": database_url,
            "REDIS_URL": self.redis_url,
            "Q_CLUSTER_NAME": self.cluster_name,
            "STRIPE_API_KEY": "sk_test_deploy",
            "STRIPE_API_BASE": self.stripe_url,
            "STRIPE_WEBHOOK_SECRET": "whsec_deploy_test_secret",
            "EMAIL_URL": f"filemail:///{self.mail_dir}",
            "STATIC_ROOT": str(self.tmp / "static"),
            "PORT": str(self.web_port),
            "BIND_HOST": "127.0.0.1",
            "GUNICORN_WORKERS": "2",
            "GUNICORN_THREADS": "4",
            "WORKER_METRICS_PORT": str(self.worker_metrics_port),
            "WORKER_METRICS_HOST": "127.0.0.1",
            "METRICS_TOKEN": METRICS_TOKEN,
            "LOG_LEVEL": "INFO",
            "API_THROTTLE_USER_RATE": "100000/min",
            "API_THROTTLE_ANON_RATE": "100000/min",
            "API_THROTTLE_RESERVATION_CREATE_RATE": "100000/min",
            **extra,
        }

    def run(self, *args: str, timeout: float = 120, check: bool = True, **extra_env: str) -> str:
        """A one-shot role (migrate, manage …), as the image's entrypoint runs it."""
        result = subprocess.run([str(ENTRYPOINT), *args], cwd=ROOT, env=self.env(**extra_env), capture_output=True,
                                text=True, timeout=timeout, check=False)
        if not check:
            return f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def spawn(self, role: str, *, log: str, **extra: str) -> subprocess.Popen:
        handle = open(self.tmp / f"{log}.log", "ab")  # noqa: SIM115 - closed with the process
        env = self.env(PROMETHEUS_MULTIPROC_DIR=str(self.tmp / f"metrics-{log}"), **extra)
        return subprocess.Popen([str(ENTRYPOINT), role], cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT,
                                start_new_session=True)

    def start_web(self) -> None:
        self.web = self.spawn("web", log="web")
        wait_for_port(self.web_port, timeout=60, proc=self.web)

    def start_worker(self) -> subprocess.Popen:
        self.worker = self.spawn("worker", log="worker")
        wait_for_port(self.worker_metrics_port, timeout=60, proc=self.worker)
        return self.worker

    def kill_worker(self) -> None:
        """A crash: the whole process group, no chance to clean up."""
        assert self.worker is not None
        os.killpg(self.worker.pid, signal.SIGKILL)
        self.worker.wait(timeout=10)

    def stop(self) -> None:
        for proc in (self.web, self.worker):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in (self.web, self.worker):
            if proc is None:
                continue
            try:
                proc.wait(timeout=70)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
            if proc.poll() is None:
                continue
            with contextlib.suppress(ProcessLookupError):  # whatever the role left in its group
                os.killpg(proc.pid, signal.SIGKILL)

    def log(self, name: str) -> str:
        path = self.tmp / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # --- database and API -----------------------------------------------------------------

    def sql(self, query: str, *params: Any) -> list[tuple]:
        conn = _mysql(self.db_name)
        try:
            with conn.cursor() as cursor:
                cursor.execute(query, params or None)
                return list(cursor.fetchall())
        finally:
            conn.close()

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Token {self.token}", **kwargs.pop("headers", {})}
        return requests.request(method, f"{self.base_url}{path}", headers=headers, timeout=40, **kwargs)

    def reserve_and_pay(self, product_code: str, *, guest_email: str = "guest@example.com") -> dict[str, Any]:
        date = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 7 * 86400))
        reservation = self.api("POST", "/api/v1/reservations/", json={
            "product": self.products[product_code], "date": date, "quantity": 1, "guest_name": "Grace Hopper",
            "guest_email": guest_email})
        assert reservation.status_code == 201, reservation.text
        rid = reservation.json()["id"]
        paid = self.api("POST", f"/api/v1/reservations/{rid}/pay/", json={"payment_method": "pm_card_visa"},
                        headers={"Idempotency-Key": f"pay-{rid}"})
        assert paid.status_code == 200, paid.text
        return paid.json()

    def reservation(self, rid: str) -> dict[str, Any]:
        return self.api("GET", f"/api/v1/reservations/{rid}/").json()

    def wait_for(self, what: str, predicate: Callable[[], Any], *, timeout: float, step: float = 0.25) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"not within {timeout:g} s: {what}\n--- worker log tail ---\n"
                                     f"{self.log('worker')[-3000:]}")
            time.sleep(step)

    def metrics(self, url: str | None = None) -> str:
        response = requests.get(url or f"{self.base_url}/metrics", timeout=10,
                                headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert response.status_code == 200, response.text
        return response.text

    def outbox_events(self) -> list[dict[str, Any]]:
        rows = self.sql("SELECT id, topic, status, attempts, created_at, delivered_at, errors FROM outbox_outboxevent")
        return [{"id": r[0], "topic": r[1], "status": r[2], "attempts": r[3], "created_at": r[4],
                 "delivered_at": r[5], "errors": json.loads(r[6] or "[]")} for r in rows]


SEED = """
from django.contrib.auth import get_user_model
from common.tokens import api_token_issue
from suppliers.models import Product, Supplier
User = get_user_model()
customer = User.objects.create_user("deploy-customer", password="deploy-customer-pass-1")
staff = User.objects.create_user({staff_user!r}, password={staff_pass!r}, is_staff=True, is_superuser=True)
supplier = Supplier.objects.create(name="Deploy supplier", slug="deploy-supplier", base_url={supplier_url!r},
                                   api_key="deploy-supplier-key", connect_timeout_seconds=2, timeout_seconds=20)
ids = {{}}
for code in ("DEPLOY-OK", "FLAKY-DEPLOY", "REJECT-DEPLOY", "SLOW-DEPLOY", "BAD-DEPLOY"):
    ids[code] = str(Product.objects.create(supplier=supplier, code=code, name=code, unit_amount=5000,
                                           currency="eur").id)
import json
print(json.dumps({{"token": api_token_issue(user=customer).token, "products": ids}}))
"""


def deploy(tmp: Path, *, redis_url: str, supplier: FakeSupplier) -> Deployment:
    """Bring the topology up; the caller stops it (Deployment.stop, drop_deployment)."""
    localstripe_port, stripe_port = free_port(), free_port()
    localstripe = start_server([str(VENV_BIN / "localstripe"), "--port", str(localstripe_port), "--from-scratch"],
                               localstripe_port, log_name="localstripe-deploy")
    # Production Stripe's rules in front of it, as `make run` has them (payments/local_stripe.py).
    stripe = start_server([sys.executable, "-m", "payments.local_stripe", "--port", str(stripe_port),
                           "--upstream", f"http://127.0.0.1:{localstripe_port}"], stripe_port,
                          log_name="stripe-standin-deploy")
    deployment = Deployment(tmp=tmp, db_name=f"deploytest_{uuid.uuid4().hex[:10]}", redis_url=redis_url,
                            stripe_url=f"http://127.0.0.1:{stripe_port}", supplier=supplier)
    deployment.stripe_procs = [stripe, localstripe]  # type: ignore[attr-defined]
    deployment.mail_dir.mkdir(parents=True, exist_ok=True)
    conn = _mysql()
    with conn.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{deployment.db_name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    conn.close()
    # The image's build step, then its one-shot migrate service.
    deployment.run("manage", "collectstatic", "--noinput", "-v0")
    deployment.run("migrate", "-v0")
    seeded = json.loads(deployment.run("manage", "shell", "-c", SEED.format(
        staff_user=STAFF[0], staff_pass=STAFF[1], supplier_url=supplier.base_url)).strip().splitlines()[-1])
    deployment.token, deployment.products = seeded["token"], seeded["products"]
    deployment.start_web()
    deployment.run("manage", "stripe_register_local_webhook", f"--url={deployment.base_url}/webhooks/stripe/",
                   f"--id=deploy-{deployment.cluster_name}")
    deployment.start_worker()
    return deployment


def drop_deployment(deployment: Deployment) -> None:
    deployment.stop()
    from tests.support.servers import stop_server

    for proc in deployment.stripe_procs:  # type: ignore[attr-defined]
        stop_server(proc)
    conn = _mysql()
    with conn.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS `{deployment.db_name}`")
    conn.close()
    client = redis.Redis.from_url(deployment.redis_url)
    for key in client.scan_iter(match=f"django_q:{deployment.cluster_name}:*"):
        client.delete(key)
