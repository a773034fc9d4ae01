"""What the chaos run starts, all on loopback, the way the image runs it (deploy/entrypoint.sh)
but without Docker: its own MariaDB and Redis; `migrate`; two `web` roles (gunicorn, production
settings, each its own master and port: the load driver balances between them); two `worker`
roles (django-q2 clusters sharing one queue on Redis); localstripe behind the strict Stripe
stand-in (fault modes switched through its control port); the fake supplier; the webhook relay
that localstripe posts its events to."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from chaos.processes import ROOT, PrivateMariaDB, PrivateRedis, Process, free_port, start_on_a_free_port

ENTRYPOINT = ROOT / "deploy" / "entrypoint.sh"
VENV_BIN = Path(sys.executable).parent
DATABASE = "reserve_chaos"
WEBHOOK_SECRET = "whsec_chaos_run_secret"
STRIPE_KEY = "sk_test_chaos"

# The products customers buy, by weight: what each exercises at the supplier.
PRODUCTS: dict[str, dict[str, Any]] = {
    "CHAOS-HOT": {"supplier": "steady", "weight": 5, "capacity": 24},  # one hot inventory row per date
    "CHAOS-OPEN": {"supplier": "steady", "weight": 4, "capacity": None},
    "SLOW-CHAOS": {"supplier": "steady", "weight": 1, "capacity": None, "mode": "slow:5:1"},  # times out once booked
    "RATE-CHAOS": {"supplier": "steady", "weight": 1, "capacity": None, "mode": "rate_limited_then_confirm:2"},
    "ONREQ-CHAOS": {"supplier": "steady", "weight": 1, "capacity": None},  # staff decide
    "REJECT-CHAOS": {"supplier": "steady", "weight": 1, "capacity": None},  # compensation
    "FLAP-CHAOS": {"supplier": "flappy", "weight": 2, "capacity": None, "mode": "flap:0.4"},  # recovers at the end
}
FLAPPING_PRODUCT = "FLAP-CHAOS"

SEED = """
import json
from django.contrib.auth import get_user_model
from common.tokens import api_token_issue
from suppliers.models import Product, Supplier
User = get_user_model()
spec = json.loads({spec!r})
tokens = []
for i in range(spec["customers"]):
    user = User.objects.create_user(f"chaos-{{i}}", password="chaos-customer-pass-1")
    tokens.append(api_token_issue(user=user).token)
User.objects.create_user("chaos-staff", password="chaos-staff-pass-123", is_staff=True)
suppliers = {{slug: Supplier.objects.create(name=f"Chaos {{slug}}", slug=f"chaos-{{slug}}",
                                           base_url=spec["supplier_url"], api_key="chaos-supplier-key",
                                           connect_timeout_seconds=1, timeout_seconds=3)
             for slug in ("steady", "flappy")}}
ids = {{}}
for code, product in spec["products"].items():
    ids[code] = str(Product.objects.create(supplier=suppliers[product["supplier"]], code=code, name=code,
                                           unit_amount=2500, currency="eur", daily_capacity=product["capacity"]).id)
print(json.dumps({{"tokens": tokens, "products": ids}}))
"""


@dataclass
class Topology:
    run_dir: Path
    customers: int = 50
    web_count: int = 2
    cluster_count: int = 2
    cluster_name: str = field(default_factory=lambda: f"chaos{uuid.uuid4().hex[:8]}")

    def __post_init__(self) -> None:
        self.logs = self.run_dir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.mariadb = PrivateMariaDB(self.run_dir)
        self.redis = PrivateRedis(self.run_dir)
        # Ports are picked when each process starts (start_on_a_free_port): the machine is shared.
        self.localstripe_port = self.stripe_port = self.stripe_control_port = self.supplier_port = 0
        self.web_ports: list[int] = []
        self.metrics_ports: list[int] = []
        self.webs: list[Process] = []
        self.clusters: list[Process] = []
        self.support: list[Process] = []
        self.tokens: list[str] = []
        self.products: dict[str, str] = {}

    # --- addresses ------------------------------------------------------------------------------

    @property
    def stripe_url(self) -> str:
        return f"http://127.0.0.1:{self.stripe_port}"

    @property
    def supplier_url(self) -> str:
        return f"http://127.0.0.1:{self.supplier_port}"

    @property
    def web_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.web_ports]

    def env(self, **extra: str) -> dict[str, str]:
        """Production settings with the run's own services, and the short timeouts, backoffs and
        holds that let a one-minute run exercise what takes hours in production."""
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DJANGO_"))},
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHON": sys.executable,
            "DJANGO_SETTINGS_MODULE": "config.settings.production",
            "SECRET_KEY": "chaos-run-secret-key-not-for-production-0123456789abcdef",
            "DEBUG": "false",
            "SECURE_SSL_REDIRECT": "false",
            "INSECURE_LOCAL_HTTP": "true",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": self.mariadb.url(DATABASE),
            "DB_CONNECT_TIMEOUT_SECONDS": "2",
            "REDIS_URL": self.redis.url,
            "Q_CLUSTER_NAME": self.cluster_name,
            "Q_WORKERS": "4",
            "STRIPE_API_KEY": STRIPE_KEY,
            "STRIPE_API_BASE": self.stripe_url,
            "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "STRIPE_TIMEOUT_SECONDS": "3",
            "STRIPE_BREAKER_RESET_SECONDS": "10",
            "SUPPLIER_BREAKER_RESET_SECONDS": "10",
            "OUTBOX_BACKOFF_BASE_SECONDS": "2",
            "OUTBOX_LEASE_SECONDS": "20",
            "IDEMPOTENCY_LOCK_STALE_SECONDS": "20",
            "RESERVATION_HOLD_MINUTES": "1",
            "RESERVATION_MAX_UNPAID_HOLDS": "5",
            "STRIPE_SEARCH_SETTLED_SECONDS": "10",
            "EMAIL_URL": f"filemail:///{self.run_dir / 'mail'}",
            "STATIC_ROOT": str(self.run_dir / "static"),
            "BIND_HOST": "127.0.0.1",
            "GUNICORN_WORKERS": "2",
            "GUNICORN_THREADS": "4",
            "WORKER_METRICS_HOST": "127.0.0.1",
            "METRICS_TOKEN": "chaos-metrics-token",
            "LOG_LEVEL": "WARNING",
            "ACCESS_LOG_LEVEL": "WARNING",
            "API_THROTTLE_USER_RATE": "1000000/min",
            "API_THROTTLE_ANON_RATE": "1000000/min",
            "API_THROTTLE_RESERVATION_CREATE_RATE": "1000000/min",
            "SUPPLIER_ALLOWED_HOSTS": "127.0.0.1,localhost",  # the fake supplier, over http on loopback
            **extra,
        }

    # --- bring up -------------------------------------------------------------------------------

    def up(self, *, relay_url: str) -> None:
        (self.run_dir / "mail").mkdir(exist_ok=True)
        self.mariadb.install()
        self.mariadb.start()
        self.mariadb.sql(f"CREATE DATABASE {DATABASE} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        self.redis.start()
        self._start_support()
        self.manage_role("migrate", "-v0")
        spec = json.dumps({"customers": self.customers, "supplier_url": self.supplier_url, "products": PRODUCTS})
        seeded = json.loads(self.manage_role("manage", "shell", "-c", SEED.format(spec=spec)).strip().splitlines()[-1])
        self.tokens, self.products = seeded["tokens"], seeded["products"]
        self.supplier_control(products={code: p["mode"] for code, p in PRODUCTS.items() if "mode" in p})
        self.manage_role("manage", "stripe_register_local_webhook", f"--url={relay_url}", "--id=chaos")
        for i in range(self.web_count):
            self.webs.append(start_on_a_free_port(lambda port, i=i: self._web(i, port)))
            self.web_ports.append(self.webs[-1].port)
        for i in range(self.cluster_count):
            self.clusters.append(start_on_a_free_port(lambda port, i=i: self._cluster(i, port)))
            self.metrics_ports.append(self.clusters[-1].port)

    def _start_support(self) -> None:
        env = dict(os.environ)

        def localstripe(port: int) -> Process:
            return Process("localstripe", [str(VENV_BIN / "localstripe"), "--port", str(port), "--from-scratch"],
                           env=env, log_dir=self.logs, port=port)

        def standin(port: int) -> Process:
            self.stripe_control_port = free_port()
            return Process("stripe-standin", [
                sys.executable, "-m", "payments.local_stripe", "--port", str(port),
                "--upstream", f"http://127.0.0.1:{self.localstripe_port}", "--control-port",
                str(self.stripe_control_port)], env=env, log_dir=self.logs, port=port)

        def supplier(port: int) -> Process:
            return Process("fake-supplier", [sys.executable, "-m", "suppliers.fake_server", "--port", str(port)],
                           env=env, log_dir=self.logs, port=port)

        self.support.append(start_on_a_free_port(localstripe))
        self.localstripe_port = self.support[-1].port
        self.support.append(start_on_a_free_port(standin))
        self.stripe_port = self.support[-1].port
        self.support.append(start_on_a_free_port(supplier))
        self.supplier_port = self.support[-1].port

    def _web(self, i: int, port: int) -> Process:
        return self._role("web", f"web-{i}", port=port, PORT=str(port))

    def _role(self, role: str, name: str, *, port: int | None = None, **extra: str) -> Process:
        env = self.env(PROMETHEUS_MULTIPROC_DIR=str(self.run_dir / f"metrics-{name}"), **extra)
        return Process(name, [str(ENTRYPOINT), role], env=env, log_dir=self.logs, port=port)

    def _cluster(self, i: int, port: int) -> Process:
        return self._role("worker", f"worker-{i}", port=port, WORKER_METRICS_PORT=str(port))

    def restart_cluster(self, i: int) -> None:
        self.clusters[i] = start_on_a_free_port(lambda port: self._cluster(i, port))

    def manage_role(self, role: str, *args: str, timeout: float = 300) -> str:
        """A one-shot role (migrate, manage …) as the image's entrypoint runs it."""
        result = subprocess.run([str(ENTRYPOINT), role, *args], cwd=ROOT, env=self.env(), capture_output=True,
                                text=True, timeout=timeout, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{role} {' '.join(args[:2])} failed ({result.returncode}):\n{result.stdout[-3000:]}\n"
                               f"{result.stderr[-3000:]}")
        return result.stdout

    # --- steering the stand-ins -----------------------------------------------------------------

    def stripe_control(self, **body: Any) -> dict[str, Any]:
        response = requests.post(f"http://127.0.0.1:{self.stripe_control_port}/_control", json=body, timeout=10)
        response.raise_for_status()
        return response.json()

    def supplier_control(self, **body: Any) -> dict[str, Any]:
        response = requests.post(f"{self.supplier_url}/_control", json=body, timeout=10)
        response.raise_for_status()
        return response.json()

    # --- health and teardown --------------------------------------------------------------------

    def ensure_running(self) -> list[str]:
        """Restart whatever is down (as a supervisor would); returns what was restarted."""
        restarted = []
        for i, cluster in enumerate(self.clusters):
            if not cluster.alive():
                self.restart_cluster(i)
                restarted.append(cluster.name)
        for i, web in enumerate(self.webs):
            if not web.alive():  # the load driver knows this port: the new master takes it again
                self.webs[i] = self._web(i, self.web_ports[i]).start()
                restarted.append(web.name)
        return restarted

    def down(self) -> None:
        for process in [*self.webs, *self.clusters]:
            if process.alive():
                process.popen.send_signal(15)  # SIGTERM to each at once; each stops its own children
        for process in [*self.webs, *self.clusters, *self.support]:
            process.stop(grace=30)
        self.redis.stop()
        self.mariadb.stop()
