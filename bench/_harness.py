"""Shared bench plumbing: a MariaDB database of its own, gunicorn serving production
settings on loopback, and a multi-process HTTP load generator with bounded duration."""

from __future__ import annotations

import http.client
import json
import multiprocessing as mp
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_env(db_name: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "SECRET_KEY": "bench-only-secret-key-bench-only-secret-key",
        "DEBUG": "false",
        "SECURE_SSL_REDIRECT": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SUPPLIER_ALLOWED_HOSTS": "127.0.0.1,localhost",  # the fake supplier, on loopback
        "DATABASE_URL": f"mysql://root@127.0.0.1:3306/{db_name}",
        "API_THROTTLE_USER_RATE": "10000000/min",
        "API_THROTTLE_ANON_RATE": "10000000/min",
        "API_THROTTLE_RESERVATION_CREATE_RATE": "10000000/min",
        # One bench customer creates thousands of holds: the cap is a product rule, not load.
        "RESERVATION_MAX_UNPAID_HOLDS": "100000000",
        "LOG_LEVEL": "WARNING",
        # Production settings refuse to start without these (common/checks.py).
        "STRIPE_API_KEY": "sk_test_bench",
        "STRIPE_WEBHOOK_SECRET": "whsec_bench",
        "EMAIL_URL": "filemail:////tmp/reserve-bench-mail",
        **extra,
    }


def prepare_database(env: dict[str, str], db_name: str) -> None:
    subprocess.run(["mysql", "--protocol=tcp", "-h127.0.0.1", "-uroot", "-e",
                    f"DROP DATABASE IF EXISTS {db_name}; CREATE DATABASE {db_name} CHARACTER SET utf8mb4"],
                   check=True)
    subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)


def django_shell(env: dict[str, str], code: str) -> str:
    return subprocess.run([PY, "manage.py", "shell", "-c", code], cwd=ROOT, env=env, check=True,
                          capture_output=True, text=True).stdout.strip().splitlines()[-1]


def start_gunicorn(env: dict[str, str], port: int, *, workers: int = 4, threads: int | None = 1,
                   app: str = "config.wsgi", config_file: str | None = None) -> subprocess.Popen:
    # The web role's gunicorn.conf.py (read from the working directory, unless another config
    # file is named) with the bench's serving model on top: sync workers, or gthread when
    # threads > 1; threads=None keeps the config's own model (GUNICORN_WORKER_CLASS/THREADS).
    model = [] if threads is None else ["-k", "gthread" if threads > 1 else "sync", "--threads", str(threads)]
    proc = subprocess.Popen(
        [str(Path(PY).parent / "gunicorn"), app, "-b", f"127.0.0.1:{port}", "-w", str(workers), *model,
         "--log-level", "warning", *(["-c", config_file] if config_file else [])],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                _wait_for_workers(proc, workers)
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("gunicorn did not start")


def _wait_for_workers(master: subprocess.Popen, workers: int, boot_seconds: float = 3.0) -> None:
    """Until every worker has forked and had time to load the application: a load generator that
    opened its connections while only the first worker was up would have given that worker all of
    them (they stay alive), and measured one worker instead of the server."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{master.pid}/task/{master.pid}/children") as f:
                if len(f.read().split()) >= workers:
                    break
        except OSError:
            break
        time.sleep(0.1)
    time.sleep(boot_seconds)


def stripe_standin(latency_ms: float) -> tuple[subprocess.Popen, int]:
    """bench/stripe_standin.py on a free loopback port: (process, port). The caller terminates it."""
    port = free_port()
    proc = subprocess.Popen([PY, str(ROOT / "bench" / "stripe_standin.py"), "--port", str(port),
                             "--latency-ms", str(latency_ms)])
    return proc, port


RequestFn = Callable[[int, int], tuple[str, str, dict | None, dict[str, str]]]


def _client(port: int | list[int], make_request: RequestFn, worker: int, seconds: float, out: mp.Queue) -> None:
    # Several ports: several web processes, the clients spread over them (a load balancer).
    port = port[worker % len(port)] if isinstance(port, list) else port
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    deadline = time.monotonic() + seconds
    i = 0
    while time.monotonic() < deadline:
        method, path, body, headers = make_request(worker, i)
        payload = json.dumps(body) if body is not None else None
        hdrs = {"Content-Type": "application/json", **headers}
        started = time.perf_counter()
        conn.request(method, path, body=payload, headers=hdrs)
        response = conn.getresponse()
        response.read()
        latencies.append(time.perf_counter() - started)
        statuses[response.status] = statuses.get(response.status, 0) + 1
        i += 1
    out.put((latencies, statuses))


def load(port: int | list[int], make_request: RequestFn, *, clients: int, seconds: float) -> dict:
    out: mp.Queue = mp.Queue()
    procs = [mp.Process(target=_client, args=(port, make_request, w, seconds, out)) for w in range(clients)]
    started = time.perf_counter()
    for p in procs:
        p.start()
    results = [out.get(timeout=seconds + 60) for _ in procs]
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - started
    latencies = sorted(x for r in results for x in r[0])
    statuses: dict[int, int] = {}
    for _, s in results:
        for code, n in s.items():
            statuses[code] = statuses.get(code, 0) + n
    return {
        "requests": len(latencies),
        "req_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 1) if latencies else None,
        "p95_ms": round(latencies[int(len(latencies) * 0.95) - 1] * 1000, 1) if latencies else None,
        "statuses": statuses,
    }


@contextmanager
def serving_process(env: dict[str, str], *, workers: int = 4, threads: int | None = 1, app: str = "config.wsgi",
                    config_file: str | None = None) -> Iterator[tuple[int, subprocess.Popen]]:
    """gunicorn on a free loopback port for the duration of the block; yields (port, master)."""
    port = free_port()
    server = start_gunicorn(env, port, workers=workers, threads=threads, app=app, config_file=config_file)
    try:
        yield port, server
    finally:
        server.terminate()
        server.wait(timeout=10)


@contextmanager
def serving(env: dict[str, str], *, workers: int = 4, threads: int | None = 1, app: str = "config.wsgi",
            config_file: str | None = None) -> Iterator[int]:
    """gunicorn on a free loopback port for the duration of the block; yields the port."""
    with serving_process(env, workers=workers, threads=threads, app=app, config_file=config_file) as (port, _):
        yield port


def describe(result: dict, unit: str = "req/s") -> str:
    return (f"{result['req_per_s']:>8} {unit}  p50 {result['p50_ms']} ms  p95 {result['p95_ms']} ms  "
            f"statuses {result['statuses']}")


def wrk_available() -> bool:
    import shutil

    return shutil.which("wrk") is not None


def wrk_load(port: int, method: str, path: str, *, body: dict | None, headers: dict[str, str],
             connections: int = 16, seconds: float = 10, threads: int = 2) -> dict:
    """The same request through wrk (a C load generator: the client costs far less CPU than the
    Python one, which shares the 2 cores with the server). Returns req/s and percentiles."""
    import re
    import tempfile

    lua = [f'wrk.method = "{method}"']
    if body is not None:
        lua.append(f"wrk.body = [[{json.dumps(body)}]]")
    for name, value in {"Content-Type": "application/json", **headers}.items():
        lua.append(f'wrk.headers["{name}"] = "{value}"')
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write("\n".join(lua) + "\n")
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{int(seconds)}s", "--latency",
                          "-s", script.name, f"http://127.0.0.1:{port}{path}"],
                         capture_output=True, text=True, check=True).stdout
    os.unlink(script.name)

    def ms(label: str) -> float | None:
        m = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return None
        return round(float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)], 1)

    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"req_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50_ms": ms("50"), "p99_ms": ms("99"), "non_2xx": int(non2xx.group(1)) if non2xx else 0}


# Prepended to the benches' `manage.py shell` setup code: the bench customer, its token, a
# supplier, and helpers to make products and unpaid reservations in bulk.
SETUP_PREAMBLE = """
from django.contrib.auth.models import User
from django.utils import timezone
from common.tokens import api_token_issue
from suppliers.models import Supplier, Product
from reservations.models import Reservation
import datetime as dt, json, uuid
u, _ = User.objects.get_or_create(username="bench")
token = api_token_issue(user=u).token
s, _ = Supplier.objects.get_or_create(slug="bench", defaults=dict(name="Bench", base_url="http://127.0.0.1:9/"))
def product(code, capacity=None):
    return Product.objects.get_or_create(supplier=s, code=code, defaults=dict(
        name=code, unit_amount=1000, currency="eur", daily_capacity=capacity))[0]
def unpaid_reservations(p, n, user=None):
    day = dt.date.today() + dt.timedelta(days=5)
    # Codes of the bench's own (44 random bits): tens of thousands of the 6-character codes
    # would collide on the unique column.
    rows = [Reservation(user=user or u, product=p, date=day, quantity=1, amount=1000, currency="eur", guest_name="B",
                        guest_email="b@x.io", expires_at=timezone.now() + dt.timedelta(hours=2),
                        code="B" + uuid.uuid4().hex[:11].upper()) for _ in range(n)]
    Reservation.objects.bulk_create(rows, batch_size=1000)
    return rows
def attempts_for(rows, in_flight=False):
    # One payment attempt per reservation: settled-looking ones to list, or in flight, as a
    # pay leaves them before Stripe's webhook (the webhook benches apply those).
    from payments.models import Payment
    pays = [Payment(reservation=r, amount=1000, currency="eur", attempt_key="k",
                    stripe_payment_intent_id="pi_" + uuid.uuid4().hex, in_flight_for=r.id if in_flight else None)
            for r in rows]
    Payment.objects.bulk_create(pays, batch_size=1000)
    return pays
def hook_ids(pays):
    return [[x.stripe_payment_intent_id, str(x.reservation_id), str(x.id)] for x in pays]
"""
