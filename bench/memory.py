#!/usr/bin/env python
"""Resident memory of every web and worker process under a steady mixed load (issue
"performance": print RSS per process; a 5-minute run shows no growth). Prints a sample per
slice and each process's growth from the first slice after warm-up; asserts nothing.

The deployed topology on loopback: gunicorn with the web role's gunicorn.conf.py, a qcluster
(Redis broker), the fake supplier, a Stripe stand-in at 50 ms. Each slice runs wrk twice at
once: GETs of one reservation, and pays of fresh reservations (each paid reservation makes
the worker book it with the supplier and send the guest e-mail).

    .venv/bin/python bench/memory.py [--minutes 5] [--slice-seconds 30] [--tracemalloc]

--tracemalloc: the web workers also trace their Python heap (bench/gunicorn_tracemalloc.py) from
the first slice to the last, and the growth is printed at the end: whether a rise in RSS is the
application keeping objects or the C allocator. Tracing slows the workers down several times.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench._harness import (
    PY,
    ROOT,
    SETUP_PREAMBLE,
    bench_env,
    django_shell,
    free_port,
    prepare_database,
    serving_process,
    stripe_standin,
)
from bench._wrk import wrk, wrk_available
from bench.all import rss_mb

DB = "reserve_bench_memory"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
SETUP = SETUP_PREAMBLE + """
s.base_url = "%(supplier)s"
s.save()
p = product("MEM")
payable = unpaid_reservations(p, %(payable)d)
warmup = unpaid_reservations(p, 4000)
print(json.dumps({"token": token, "read": str(payable[0].id), "payable": [str(r.id) for r in payable[1:]],
                  "warmup": [str(r.id) for r in warmup]}))
"""


def gunicorn_threads() -> int:
    """Threads per web worker, as the web role's gunicorn.conf.py sets them."""
    import runpy

    return int(runpy.run_path(str(ROOT / "gunicorn.conf.py"))["threads"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=5)
    parser.add_argument("--slice-seconds", type=float, default=30)
    parser.add_argument("--tracemalloc", action="store_true")
    args = parser.parse_args()
    if not wrk_available():
        raise SystemExit("wrk is not installed: apt-get install wrk (make bench installs it)")
    subprocess.run(["redis-cli", "-u", REDIS_URL, "FLUSHDB"], check=True, capture_output=True)
    slices = max(2, int(args.minutes * 60 / args.slice_seconds))
    supplier_port = free_port()
    supplier = subprocess.Popen([PY, "-m", "suppliers.fake_server", "--port", str(supplier_port)], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stand_in, stand_in_port = stripe_standin(50)
    env = bench_env(DB, REDIS_URL=REDIS_URL, STRIPE_API_BASE=f"http://127.0.0.1:{stand_in_port}", Q_WORKERS="4",
                    EMAIL_URL="filemail:////tmp/reserve-bench-mail")
    prepare_database(env, DB)
    ids = json.loads(django_shell(env, SETUP % {"supplier": f"http://127.0.0.1:{supplier_port}",
                                                 "payable": int(60 * args.slice_seconds * slices) + 1000}))
    cluster = subprocess.Popen([PY, "manage.py", "qcluster"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    auth = {"Authorization": f"Token {ids['token']}"}
    per_slice = len(ids["payable"]) // slices
    samples: list[tuple[float, dict[str, float]]] = []
    try:
        trace_dir = Path(tempfile.mkdtemp(prefix="reserve-bench-trace-"))
        if args.tracemalloc:  # from the end of the first slice (after warm-up) to the end of the last
            env.update(BENCH_TRACE_DIR=str(trace_dir), BENCH_TRACE_BASE=str(30 + args.slice_seconds),
                       BENCH_TRACE_END=str(15 + args.slice_seconds * slices))
        config = str(ROOT / "bench" / "gunicorn_tracemalloc.py") if args.tracemalloc else None
        with serving_process(env, workers=4, threads=None, config_file=config) as (port, web):
            # Warm-up: enough connections for every thread of every worker to serve a GET and a
            # pay (each thread opens its own database connection, Stripe session and queue
            # broker on first use), so that what follows measures growth, not threads taking
            # their first pay one by one over the minutes.
            every_thread = 4 * gunicorn_threads() + 16
            wrk(port, paths=[f"/api/v1/reservations/{ids['read']}/"], headers=auth, connections=every_thread,
                threads=4, seconds=10)
            wrk(port, method="POST", paths=[f"/api/v1/reservations/{r}/pay/" for r in ids["warmup"]],
                body=json.dumps({"payment_method": "pm_card_visa"}), headers=auth, unique_header="Idempotency-Key",
                sequential=True, connections=every_thread, threads=4, seconds=10)
            started = time.monotonic()
            for n in range(slices):
                mine = ids["payable"][n * per_slice:(n + 1) * per_slice]
                results: dict[str, dict] = {}
                reader = threading.Thread(target=lambda out=results: out.update(get=wrk(
                    port, paths=[f"/api/v1/reservations/{ids['read']}/"], headers=auth, connections=4,
                    seconds=args.slice_seconds)))
                reader.start()
                results["pay"] = wrk(port, method="POST", paths=[f"/api/v1/reservations/{r}/pay/" for r in mine],
                                     body=json.dumps({"payment_method": "pm_card_visa"}), headers=auth,
                                     unique_header="Idempotency-Key", sequential=True, connections=8,
                                     seconds=args.slice_seconds)
                reader.join()
                rss = {("web master" if pid == web.pid else f"web {pid}"): mb for pid, mb in rss_mb(web.pid).items()}
                rss.update({("qcluster main" if pid == cluster.pid else f"qcluster {pid}"): mb
                            for pid, mb in rss_mb(cluster.pid).items()})
                samples.append((time.monotonic() - started, rss))
                print(f"t={samples[-1][0]:5.0f}s  GET {results['get']['req_per_s']}/s  pay {results['pay']['req_per_s']}/s "
                      f"{results['pay']['statuses']}  RSS MB: "
                      + ", ".join(f"{name} {mb:.0f}" for name, mb in sorted(rss.items())), flush=True)
    finally:
        os.killpg(cluster.pid, 15)
        try:
            cluster.wait(timeout=30)
        except subprocess.TimeoutExpired:  # a drain task still looping: the samples are taken
            os.killpg(cluster.pid, 9)
        for proc in (supplier, stand_in):
            proc.terminate()
            proc.wait(timeout=10)
    for report in sorted(trace_dir.glob("*.txt")):
        print(f"\nweb {report.stem}, tracemalloc: {report.read_text()}")
    first = samples[1][1] if len(samples) > 2 else samples[0][1]  # after a slice of warm-up
    last = samples[-1][1]
    print(f"\ngrowth from t={samples[1][0] if len(samples) > 2 else samples[0][0]:.0f}s to t={samples[-1][0]:.0f}s "
          "(MB, per process alive throughout):")
    for name in sorted(set(first) & set(last)):
        print(f"  {name:<16} {first[name]:7.1f} → {last[name]:7.1f}  ({last[name] - first[name]:+.1f})")


if __name__ == "__main__":
    main()
