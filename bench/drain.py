#!/usr/bin/env python
"""Outbox delivery figures against MariaDB and the fake supplier over real HTTP. Prints
figures; asserts nothing; every phase is bounded.

1. throughput: N supplier.book events already committed, D drainer processes, fast supplier
   → events/s until all are delivered.
2. latency (on-commit path): a real `manage.py qcluster`; "payments" commit at a steady rate
   (PAID + outbox row in one transaction, as payments does) → delay from commit to the
   supplier receiving the request (p50/p95/max).
3. latency (safety net): the same with the on-commit enqueue dropped, so only the looping
   drain task finds the events.
4. retry punctuality: a supplier that fails once per booking, BASE=2 s → delay between a
   retry's due time (`available_at`) and the supplier receiving it. The supplier breaker's
   threshold is raised for the bench so that it measures the outbox, not the breaker.

    .venv/bin/python bench/drain.py [--events 2000 (0: skip phase 1)] [--drainers 4] [--rate 20] [--seconds 10] [--broker redis|orm]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench._harness import bench_env, free_port, prepare_database

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
DB = "reserve_bench_drain"


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def fake_log(base_url: str) -> dict[str, float]:
    """First POST time per idempotency key."""
    with urllib.request.urlopen(f"{base_url}/_log", timeout=10) as response:
        first: dict[str, float] = {}
        for key, at in json.load(response):
            first.setdefault(key, at)
        return first


def fake_log_all(base_url: str) -> list[tuple[str, float]]:
    with urllib.request.urlopen(f"{base_url}/_log", timeout=10) as response:
        return [tuple(x) for x in json.load(response)]


def fake_control(base_url: str, body: dict) -> None:
    req = urllib.request.Request(f"{base_url}/_control", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    urllib.request.urlopen(req, timeout=10).read()


def setup_catalog(supplier_url: str):
    from django.contrib.auth.models import User

    from suppliers.models import Product, Supplier

    user, _ = User.objects.get_or_create(username="bench")
    supplier, _ = Supplier.objects.update_or_create(
        slug="bench", defaults={"name": "Bench", "base_url": supplier_url, "api_key": "sk_bench_secret",
                                "timeout_seconds": 5})
    product, _ = Product.objects.get_or_create(supplier=supplier, code="FAST",
                                               defaults={"name": "Fast", "unit_amount": 1000, "currency": "eur"})
    flaky, _ = Product.objects.get_or_create(supplier=supplier, code="FLAKY",
                                             defaults={"name": "Flaky", "unit_amount": 1000, "currency": "eur"})
    return user, product, flaky


def new_reservations(user, product, n: int, status: str):
    from reservations.models import Reservation

    date = dt.date.today() + dt.timedelta(days=10)
    rows = [Reservation(user=user, product=product, date=date, quantity=1, amount=1000, currency="eur",
                        guest_name="Bench", guest_email="bench@example.test", status=status,
                        supplier_status="PENDING" if status == "PAID" else "NOT_REQUESTED") for _ in range(n)]
    Reservation.objects.bulk_create(rows, batch_size=500)
    return rows


def _drainer(deadline: float, out: mp.Queue) -> None:
    from django.db import connection

    from outbox.delivery import outbox_drain_once
    from outbox.models import UNFINISHED, OutboxEvent

    delivered = 0
    while time.monotonic() < deadline:
        stats = outbox_drain_once(limit=20)
        delivered += stats.delivered
        if stats.total == 0 and not OutboxEvent.objects.filter(status__in=UNFINISHED).exists():
            break
    connection.close()
    out.put(delivered)


def phase_throughput(user, product, events: int, drainers: int) -> None:
    from django.db import connections

    new_reservations_with_events(user, product, events)
    connections.close_all()  # children must not share the parent's socket
    ctx = mp.get_context("fork")
    out: mp.Queue = ctx.Queue()
    started = time.monotonic()
    procs = [ctx.Process(target=_drainer, args=(started + 180, out)) for _ in range(drainers)]
    for p in procs:
        p.start()
    counts = [out.get(timeout=200) for _ in procs]
    elapsed = time.monotonic() - started
    for p in procs:
        p.join(timeout=10)
    print(f"[1] throughput: {sum(counts)} events delivered by {drainers} drainers in {elapsed:.1f} s "
          f"= {sum(counts) / elapsed:.0f} events/s (per drainer: {counts})")


def profile_delivery(user, product, events: int) -> None:
    """One drainer in this process under cProfile: CPU per delivered event and where it goes."""
    import cProfile
    import pstats

    from bench.profile_api import print_areas, server_questions
    from outbox.delivery import outbox_drain_once

    new_reservations_with_events(user, product, events)
    from django.db import connection

    statements: list[str] = []

    def record(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):  # one booking, and the events it leads to
        outbox_drain_once(limit=1)
    print(f"[profile] one delivery: {len(statements)} statements")
    for sql in statements:
        print(f"    {sql[:140]}")
    profiler = cProfile.Profile()
    questions = server_questions()
    started, cpu = time.perf_counter(), time.process_time()
    profiler.enable()
    delivered = 0
    while True:
        stats = outbox_drain_once(limit=20)
        delivered += stats.delivered
        if stats.total == 0:
            break
    profiler.disable()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    round_trips = (server_questions() - questions - 1) / delivered
    print(f"[profile] {delivered} deliveries by one drainer under cProfile: {elapsed / delivered * 1000:.1f} ms each, "
          f"{cpu / delivered * 1000:.1f} ms of this process's CPU, {round_trips:.1f} statements each received by the "
          "server (its Questions counter: transaction control and autocommit switches included)")
    stats = pstats.Stats(profiler)
    print_areas(stats)
    stats.sort_stats(os.environ.get("PROFILE_SORT", "cumulative")).print_stats(int(os.environ.get("PROFILE_TOP", "30")))
    for pattern in filter(None, os.environ.get("PROFILE_CALLERS", "").split(",")):  # e.g. PROFILE_CALLERS=gettext
        stats.print_callers(pattern)


def new_reservations_with_events(user, product, events: int) -> list:
    from django.utils import timezone

    from outbox.models import OutboxEvent
    from suppliers.booking import BOOK_TOPIC, supplier_book_dedup_key

    reservations = new_reservations(user, product, events, "PAID")
    # Bulk-inserted for speed, with the topic and dedup key the suppliers app owns.
    OutboxEvent.objects.bulk_create([
        OutboxEvent(topic=BOOK_TOPIC, dedup_key=supplier_book_dedup_key(r.id), payload={"reservation_id": str(r.id)},
                    reservation_id=r.id, available_at=timezone.now()) for r in reservations], batch_size=500)
    return reservations


def start_qcluster(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([PY, "manage.py", "qcluster"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def wait_for_cluster(timeout: float = 90) -> None:
    """Until the cluster's workers run tasks: probe tasks enqueued, their results awaited. A
    fixed pause measured the cluster's start-up on a slow sitting instead (Django imported by
    each of its processes on two cores): p95 0.1-0.5 s where a warm cluster delivers in 10 ms."""
    from django_q.tasks import async_task, result

    started = time.monotonic()
    probes = [async_task("math.floor", 1.5) for _ in range(8)]
    for task_id in probes:
        left = timeout - (time.monotonic() - started)
        if left <= 0 or result(task_id, wait=int(left * 1000)) != 1:
            raise SystemExit(f"qcluster did not run its probe tasks within {timeout:.0f} s")
    print(f"(qcluster ready after {time.monotonic() - started:.1f} s)", flush=True)


def pay_at_rate(user, product, *, rate: float, seconds: float) -> dict[str, float]:
    """Commit 'payment succeeded' like payments does; returns reservation id → commit time."""
    from django.db import transaction

    from reservations.models import ReservationStatus, SupplierStatus
    from reservations.services import reservation_get_locked, reservation_transition

    pending = new_reservations(user, product, int(rate * seconds) + 1, "PENDING_PAYMENT")
    committed: dict[str, float] = {}
    start = time.monotonic()
    for i, r in enumerate(pending):
        wait = start + i / rate - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        if time.monotonic() - start > seconds:
            break
        with transaction.atomic(durable=True):
            reservation = reservation_get_locked(reservation_id=r.id)
            # The suppliers app's transition hook queues the booking in this transaction.
            reservation_transition(reservation=reservation, to_status=ReservationStatus.PAID, actor="stripe",
                                   reason="bench payment", fields={"supplier_status": SupplierStatus.PENDING})
        committed[str(r.id)] = time.time()
    return committed


def report_latency(label: str, committed: dict[str, float], base_url: str, settle: float = 15) -> None:
    deadline = time.monotonic() + settle
    while time.monotonic() < deadline:
        first = fake_log(base_url)
        if all(f"reservation:{rid}:book" in first for rid in committed):
            break
        time.sleep(0.2)
    delays = [first[f"reservation:{rid}:book"] - t for rid, t in committed.items()
              if f"reservation:{rid}:book" in first]
    missing = len(committed) - len(delays)
    print(f"{label}: {len(delays)} events, commit → supplier request p50 {pct(delays, .5) * 1000:.0f} ms, "
          f"p95 {pct(delays, .95) * 1000:.0f} ms, max {max(delays) * 1000:.0f} ms"
          + (f", {missing} not delivered within {settle:.0f} s" if missing else ""))


def phase_retry(user, flaky, base_url: str) -> None:
    from outbox.models import OutboxEvent

    fake_control(base_url, {"products": {"FLAKY": "fail_then_confirm:1"}})
    committed = pay_at_rate(user, flaky, rate=5, seconds=4)
    deadline = time.monotonic() + 30
    keys = {f"reservation:{rid}:book" for rid in committed}
    while time.monotonic() < deadline:
        seen = [k for k, _ in fake_log_all(base_url) if k in keys]
        if len(seen) >= 2 * len(keys):
            break
        time.sleep(0.2)
    second: dict[str, float] = {}
    counts: dict[str, int] = {}
    for key, at in fake_log_all(base_url):
        counts[key] = counts.get(key, 0) + 1
        if counts[key] == 2:
            second[key] = at
    lateness = []
    for event in OutboxEvent.objects.filter(payload__reservation_id__in=list(committed)):
        due = next((e["retry_at"] for e in event.errors if "retry_at" in e), None)
        key = f"reservation:{event.payload['reservation_id']}:book"
        if due and key in second:
            lateness.append(second[key] - dt.datetime.fromisoformat(due).timestamp())
    print(f"[4] retry punctuality: {len(lateness)} retries, due time → supplier request "
          f"p50 {pct(lateness, .5) * 1000:.0f} ms, p95 {pct(lateness, .95) * 1000:.0f} ms, "
          f"max {max(lateness) * 1000 if lateness else float('nan'):.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--drainers", type=int, default=4)
    parser.add_argument("--rate", type=float, default=20, help="payments per second in the latency phases")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--broker", choices=["redis", "orm"], default="redis")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="only profile N deliveries by one drainer in this process (PROFILE_SORT, PROFILE_TOP, PROFILE_CALLERS)")
    args = parser.parse_args()

    supplier_port = free_port()
    base_url = f"http://127.0.0.1:{supplier_port}"
    # The broker as deployed (compose.yaml: Redis), or the ORM broker (no REDIS_URL) with --broker orm.
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13") if args.broker == "redis" else ""
    if redis_url:
        subprocess.run(["redis-cli", "-u", redis_url, "FLUSHDB"], check=True, capture_output=True)
    env = bench_env(DB, OUTBOX_BACKOFF_BASE_SECONDS="2", OUTBOX_DRAIN_SECONDS="90", Q_WORKERS="4",
                    REDIS_URL=redis_url, SUPPLIER_BREAKER_FAIL_MAX="100000")
    os.environ.update(env)
    prepare_database(env, DB)
    fake = subprocess.Popen([PY, "-m", "suppliers.fake_server", "--port", str(supplier_port)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    cluster = None
    try:
        import django

        django.setup()
        time.sleep(0.5)
        user, product, flaky = setup_catalog(base_url)
        if args.profile:
            profile_delivery(user, product, args.profile)
            return
        if args.events:
            phase_throughput(user, product, args.events, args.drainers)

        fake_control(base_url, {"reset": True})
        cluster = start_qcluster(env)
        from django_q.tasks import async_task

        wait_for_cluster()

        committed = pay_at_rate(user, product, rate=args.rate, seconds=args.seconds)
        report_latency(f"[2] on-commit path ({args.rate:g}/s for {args.seconds:g} s)", committed, base_url)

        import outbox.tasks

        async_task("outbox.tasks.outbox_drain_task")  # what the schedule starts every minute
        outbox.tasks.enqueue_delivery = lambda event_id: None  # the broker "loses" every enqueue
        time.sleep(1)
        committed = pay_at_rate(user, product, rate=args.rate, seconds=args.seconds)
        report_latency("[3] drain only, enqueue lost", committed, base_url)

        phase_retry(user, flaky, base_url)
    finally:
        for proc in (cluster, fake):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, 15)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, 9)


if __name__ == "__main__":
    main()
