#!/usr/bin/env python
"""Scaling out, measured in one sitting (README, "Scaling out"): throughput with 1 vs 2 web
processes and 1 vs 2 worker clusters, and what they share. Prints figures; asserts nothing.

Everything runs on loopback under production settings, on a MariaDB and a Redis of the bench's
own (chaos/processes.py), so that MariaDB's global counters count this bench alone:

1. web: `deploy/entrypoint.sh web` (gunicorn, GUNICORN_WORKERS x GUNICORN_THREADS per process) once
   and twice, the load generator spreading its clients over the processes:
   - GET /api/v1/reservations/{id}/ (CPU: Django, DRF, three reads);
   - POST …/pay/ against a constant-latency Stripe stand-in (bench/stripe_standin.py), and the
     database work one pay costs (statements, rows written, commits, from SHOW GLOBAL STATUS);
   - POST /api/v1/reservations/ on one product and date (one hot inventory row) vs spread dates.
2. workers: N supplier.book deliveries queued on Redis (as on-commit enqueues queue them), then
   one or two `deploy/entrypoint.sh worker` clusters (Q_WORKERS each) deliver them to the fake
   supplier (with a fixed latency): events per second from first to last delivery.

    .venv/bin/python bench/scale_out.py [--seconds 8] [--clients 16] [--events 600]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import redis as redis_client

from bench._harness import PY, ROOT, SETUP_PREAMBLE, bench_env, describe, free_port, load
from chaos.processes import PrivateMariaDB, PrivateRedis, Process, start_on_a_free_port

DB = "reserve_bench_scale"
ENTRYPOINT = ROOT / "deploy" / "entrypoint.sh"
# Statements by kind, commits, and rows written (MariaDB's handler counters: rows inserted,
# updated, deleted in any table).
WRITES = ("Com_select", "Com_insert", "Com_update", "Com_delete", "Com_commit", "Handler_write", "Handler_update",
          "Handler_delete")

SETUP = SETUP_PREAMBLE + """
from outbox.models import OutboxEvent
s.base_url = %(supplier)r
s.api_key = "bench-supplier-key"
s.save()
p = product("SCALE")
hot = product("SCALE-HOT", capacity=10**9)
rows = unpaid_reservations(p, %(n)d)
print(json.dumps({"token": t.key, "ids": [str(r.id) for r in rows], "product": str(p.id), "hot": str(hot.id)}))
"""

QUEUE = """
from django.db import transaction
from outbox.services import outbox_enqueue
from reservations.models import Reservation
ids = list(Reservation.objects.filter(status="PENDING_PAYMENT").values_list("id", flat=True)[:%(n)d])
Reservation.objects.filter(id__in=ids).update(status="PAID", supplier_status="PENDING")
for rid in ids:
    with transaction.atomic():  # one commit each: its on-commit enqueue puts one task on Redis
        outbox_enqueue(topic="supplier.book", dedup_key=f"supplier.book:{rid}:%(tag)s",
                       payload={"reservation_id": str(rid)}, reservation=Reservation(pk=rid))
print(len(ids))
"""

DELIVERY_SPAN = """
from django.db.models import Count, Max, Min
from outbox.models import OutboxEvent
print(__import__("json").dumps({k: str(v) for k, v in OutboxEvent.objects.filter(
    dedup_key__endswith=":%(tag)s", status="DELIVERED").aggregate(n=Count("id"), first=Min("delivered_at"),
    last=Max("delivered_at")).items()}))
"""


def global_status(mariadb: PrivateMariaDB) -> dict[str, int]:
    return {name: int(value) for name, value in mariadb.sql("SHOW GLOBAL STATUS") if name in WRITES}


def manage(env: dict[str, str], *args: str) -> str:
    return subprocess.run([str(ENTRYPOINT), "manage", *args], cwd=ROOT, env=env, check=True, capture_output=True,
                          text=True).stdout.strip().splitlines()[-1]


def webs(env: dict[str, str], count: int, logs: Path) -> list[Process]:
    def web(i: int, port: int) -> Process:
        return Process(f"web-{count}-{i}", [str(ENTRYPOINT), "web"], log_dir=logs, port=port, env={
            **env, "PORT": str(port), "PROMETHEUS_MULTIPROC_DIR": str(logs / f"metrics-web-{count}-{i}")})

    return [start_on_a_free_port(functools.partial(web, i)) for i in range(count)]


def _get(w: int, i: int, *, ids: list[str], auth: dict[str, str]) -> tuple:
    return "GET", f"/api/v1/reservations/{ids[(w * 7919 + i) % len(ids)]}/", None, auth


def _pay(w: int, i: int, *, per_client: list[list[str]], auth: dict[str, str], tag: str) -> tuple:
    mine = per_client[w]  # wraps only if the run outlasts the prepared rows (then 409)
    return ("POST", f"/api/v1/reservations/{mine[i % len(mine)]}/pay/", {"payment_method": "pm_card_visa"},
            {**auth, "Idempotency-Key": f"scale-{tag}-{w}-{i}"})


def _create(w: int, i: int, *, product: str, dates: list[str], auth: dict[str, str]) -> tuple:
    return ("POST", "/api/v1/reservations/", {"product": product, "date": dates[(w + i) % len(dates)], "quantity": 1,
                                              "guest_name": "B", "guest_email": "b@example.test"}, auth)


def phase_web(env: dict[str, str], data: dict, mariadb: PrivateMariaDB, args: argparse.Namespace,
              logs: Path) -> None:
    auth = {"Authorization": f"Token {data['token']}"}
    ids = data["ids"]
    spread = [f"2031-01-{d:02d}" for d in range(1, 29)]
    # 1, 2, 1, 2: the machine is shared, so each figure has a twin measured minutes apart.
    for run, count in enumerate((1, 2, 1, 2)):
        procs = webs(env, count, logs)
        ports = [p.port for p in procs]
        try:
            result = load(ports, functools.partial(_get, ids=ids, auth=auth), clients=args.clients,
                          seconds=args.seconds)
            print(f"[web] {count} process(es): GET reservation {describe(result)}", flush=True)

            quarter = len(ids) // 4  # each round pays reservations of its own
            own = ids[quarter * run:quarter * (run + 1)]
            per_client = [own[c::args.clients] for c in range(args.clients)]
            before = global_status(mariadb)
            result = load(ports, functools.partial(_pay, per_client=per_client, auth=auth, tag=str(run)),
                          clients=args.clients, seconds=args.seconds)
            after = global_status(mariadb)
            paid = result["statuses"].get(200, 0)
            print(f"[web] {count} process(es): pay (Stripe {args.stripe_latency_ms:g} ms) {describe(result)}",
                  flush=True)
            if paid:
                per_pay = {name: round((after[name] - before[name]) / paid, 1) for name in WRITES}
                print(f"[db]  per pay: {json.dumps(per_pay)}", flush=True)

            for label, dates in (("one hot date", spread[:1]), ("28 dates", spread)):
                result = load(ports, functools.partial(_create, product=data["hot"], dates=dates, auth=auth),
                              clients=args.clients, seconds=args.seconds)
                print(f"[web] {count} process(es): create, {label}: {describe(result)}", flush=True)
        finally:
            for proc in procs:
                proc.stop()


CLEAR = """
from outbox.models import OutboxEvent
OutboxEvent.objects.exclude(status="DELIVERED").update(status="DELIVERED")
print(0)
"""


def phase_workers(env: dict[str, str], mariadb: PrivateMariaDB, redis: PrivateRedis, args: argparse.Namespace,
                  logs: Path) -> None:
    # What the web phase left (its paid reservations' bookings, queued with no worker running)
    # must not be delivered on the clock of this phase.
    manage(env, "shell", "-c", CLEAR)
    redis_client.Redis.from_url(redis.url).flushdb()  # the bench's own Redis
    for run, count in enumerate((1, 2, 1, 2)):
        tag = f"run{run}-clusters{count}"
        queued = manage(env, "shell", "-c", QUEUE % {"n": args.events, "tag": tag})
        before = global_status(mariadb)
        started = time.monotonic()
        clusters = [Process(f"worker-{tag}-{i}", [str(ENTRYPOINT), "worker"], log_dir=logs, env={
            **env, "WORKER_METRICS_PORT": "0", "PROMETHEUS_MULTIPROC_DIR": str(logs / f"metrics-{tag}-{i}")}).start()
            for i in range(count)]
        try:
            while time.monotonic() - started < 300:
                span = json.loads(manage(env, "shell", "-c", DELIVERY_SPAN % {"tag": tag}))
                if int(span["n"]) >= int(queued):
                    break
                time.sleep(2)
        finally:
            for cluster in clusters:
                cluster.stop()
        after = global_status(mariadb)
        first, last = (time.mktime(time.strptime(span[k][:19], "%Y-%m-%d %H:%M:%S")) + float("0." + (
            span[k][20:26] or "0")) for k in ("first", "last"))
        rate = int(span["n"]) / max(last - first, 0.001)
        print(f"[workers] {count} cluster(s) x Q_WORKERS {env['Q_WORKERS']}: {span['n']} of {queued} deliveries "
              f"in {last - first:.1f} s = {rate:.0f} events/s (supplier latency {args.supplier_latency_ms:g} ms)",
              flush=True)
        # Each booking: its delivery, the guest e-mail it queues and that e-mail's delivery, the
        # clusters' own bookkeeping (schedules, drains polling) while they ran.
        per_booking = {name: round((after[name] - before[name]) / max(int(span["n"]), 1), 1) for name in WRITES}
        print(f"[db]  per booking, clusters' polling included: {json.dumps(per_booking)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--reservations", type=int, default=8000)
    parser.add_argument("--events", type=int, default=600)
    parser.add_argument("--stripe-latency-ms", type=float, default=50)
    parser.add_argument("--supplier-latency-ms", type=float, default=50)
    parser.add_argument("--only", choices=["web", "workers"], help="one phase only")
    parser.add_argument("--keep", action="store_true", help="keep the run directory (logs)")
    args = parser.parse_args()
    run_dir = Path(tempfile.mkdtemp(prefix="reserve-scale-"))
    logs = run_dir / "logs"
    logs.mkdir()
    mariadb, redis = PrivateMariaDB(run_dir), PrivateRedis(run_dir)
    mariadb.install()
    mariadb.start()
    mariadb.sql(f"CREATE DATABASE {DB} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    redis.start()
    stripe_port, supplier_port = free_port(), free_port()
    helpers = [
        Process("stripe", [PY, str(ROOT / "bench" / "stripe_standin.py"), "--port", str(stripe_port),
                           "--latency-ms", str(args.stripe_latency_ms)], env=dict(os.environ), log_dir=logs,
                port=stripe_port).start(),
        Process("supplier", [PY, "-m", "suppliers.fake_server", "--port", str(supplier_port), "--mode",
                             f"slow:{args.supplier_latency_ms / 1000}"], env=dict(os.environ), log_dir=logs,
                port=supplier_port).start(),
    ]
    env = {**bench_env(DB), "DATABASE_URL": mariadb.url(DB), "REDIS_URL": redis.url, "PYTHON": PY,
           "PATH": f"{Path(PY).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "STRIPE_API_BASE": f"http://127.0.0.1:{stripe_port}", "BIND_HOST": "127.0.0.1",
           "GUNICORN_WORKERS": "2", "GUNICORN_THREADS": "4", "Q_WORKERS": "4", "Q_CLUSTER_NAME": "scalebench",
           "SUPPLIER_BREAKER_FAIL_MAX": "100000"}
    try:
        subprocess.run([str(ENTRYPOINT), "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        data = json.loads(manage(env, "shell", "-c", SETUP % {"n": args.reservations,
                                                              "supplier": f"http://127.0.0.1:{supplier_port}"}))
        print(f"machine: {os.cpu_count()} cores; each web process: gunicorn {env['GUNICORN_WORKERS']} workers x "
              f"{env['GUNICORN_THREADS']} threads; load: {args.clients} client processes, {args.seconds:g} s each",
              flush=True)
        if args.only != "workers":
            phase_web(env, data, mariadb, args, logs)
        if args.only != "web":
            phase_workers(env, mariadb, redis, args, logs)
    finally:
        for proc in helpers:
            proc.stop()
        redis.stop()
        mariadb.stop()
        if not args.keep:
            subprocess.run(["rm", "-rf", str(run_dir)], check=False)
        else:
            print(f"kept {run_dir}")


if __name__ == "__main__":
    main()
