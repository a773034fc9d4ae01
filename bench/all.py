#!/usr/bin/env python
"""Every figure of the performance issue in one sitting, each next to its ceiling (bench/ceiling.py,
the same machine, minutes apart), so that the ratios hold whatever the machine's speed today.
Prints a table; asserts nothing. Needs wrk (`make bench` installs it), MariaDB and Redis.

    .venv/bin/python bench/all.py [--seconds 10] [--only api,pay,webhook,drain,memory] [--memory-minutes 1]
    make bench    (installs wrk, then runs this)

The project runs as deployed (compose.yaml): production settings, gunicorn with the web role's
gunicorn.conf.py (its worker model, unless a probe names another), Redis for the cache, the
breakers and the task broker; a Stripe stand-in answering in constant time (bench/stripe_standin.py)."""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import ceiling
from bench._harness import (
    PY,
    ROOT,
    SETUP_PREAMBLE,
    bench_env,
    django_shell,
    prepare_database,
    serving,
    serving_process,
    stripe_standin,
)
from bench._wrk import wrk, wrk_available

DB = "reserve_bench_all"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
WEBHOOK_SECRET = "whsec_bench_all"
SETUP = SETUP_PREAMBLE + """
p = product("ALL")
lister = User.objects.create(username="lister")
listed = unpaid_reservations(p, 20, user=lister)
attempts_for(listed)
payable = unpaid_reservations(p, %(payable)d)
pays = attempts_for(unpaid_reservations(p, %(hooked)d), in_flight=True)
customers = [api_token_issue(user=User.objects.create(username=f"c{i}")).token for i in range(50)]
print(json.dumps({"token": token, "lister": api_token_issue(user=lister).token, "product": str(p.id),
                  "read": str(listed[0].id), "payable": [str(r.id) for r in payable], "customers": customers,
                  "hooked": hook_ids(pays)}))
"""


def signed_event(intent_id: str, reservation_id: str, payment_id: str) -> tuple[str, str, dict[str, str]]:
    event = {"id": f"evt_{intent_id}", "object": "event", "type": "payment_intent.succeeded",
             "created": int(time.time()),
             "data": {"object": {"id": intent_id, "object": "payment_intent", "status": "succeeded",
                                 "amount": 1000, "currency": "eur", "latest_charge": f"ch_{intent_id[3:]}",
                                 "metadata": {"reservation_id": reservation_id, "payment_id": payment_id}}}}
    body = json.dumps(event)
    ts = int(time.time())
    mac = hmac.new(WEBHOOK_SECRET.encode(), f"{ts}.{body}".encode(), hashlib.sha256).hexdigest()
    return "/webhooks/stripe/", body, {"Stripe-Signature": f"t={ts},v1={mac}"}


def rss_mb(root_pid: int) -> dict[int, float]:
    """Resident memory of a process and its children, by pid (MB)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = {}, [root_pid]
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/status") as f:
                out[pid] = int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) / 1024
        except (OSError, AttributeError):
            pass
        todo.extend(children.get(pid, []))
    return out


# Each API probe, and the ceiling it is read against.
API_PAIRS = (("get", "reads"), ("list", "reads"), ("create", "payunit"))


def project_api(env: dict, ids: dict, seconds: float, rounds: int,
                ceiling_probe: Callable[[str, float], dict]) -> dict[str, dict]:
    """Each API probe right after its ceiling, `rounds` times over: the ratio of each pair, and
    their median. The machine's speed drifts by tens of percent within minutes (other tenants);
    two adjacent windows see the same machine, probes minutes apart do not."""
    date = (dt.date.today() + dt.timedelta(days=10)).isoformat()
    lister = {"Authorization": f"Token {ids['lister']}"}
    body = json.dumps({"product": ids["product"], "date": date, "quantity": 1, "guest_name": "Bench {n}",
                       "guest_email": "bench@example.test"})
    probes = {
        "get": lambda port: wrk(port, paths=[f"/api/v1/reservations/{ids['read']}/"], headers=lister,
                                seconds=seconds),
        "list": lambda port: wrk(port, paths=["/api/v1/reservations/?page_size=20"], headers=lister,
                                 seconds=seconds),
        "create": lambda port: wrk(port, method="POST", paths=["/api/v1/reservations/"], body=body,
                                   header_choices={"Authorization": [f"Token {t}" for t in ids["customers"]]},
                                   seconds=seconds),
    }
    pairs: dict[str, list[tuple[dict, dict]]] = {name: [] for name, _ in API_PAIRS}
    with serving(env, workers=4, threads=None) as port:
        for round_ in range(rounds):
            for name, ceiling_name in API_PAIRS:
                floor = ceiling_probe(ceiling_name, seconds)
                result = probes[name](port)
                pairs[name].append((result, floor))
                print(f"  round {round_ + 1}: {name} {result['req_per_s']} req/s, ceiling {ceiling_name} "
                      f"{floor['req_per_s']} = {result['req_per_s'] / floor['req_per_s']:.2f}x", flush=True)
    results = {}
    for name, measured in pairs.items():
        ratios = sorted(result["req_per_s"] / floor["req_per_s"] for result, floor in measured)
        result, floor = sorted(measured, key=lambda pair: pair[0]["req_per_s"] / pair[1]["req_per_s"])[
            len(measured) // 2]  # the median pair
        results[name] = {**result, "ceiling_req_per_s": floor["req_per_s"], "ratio": ratios[len(ratios) // 2],
                         "ratios": ratios}
    # The same GET on sync workers, the ceilings' serving model (the configured gthread model is
    # chosen for pay, which waits on Stripe).
    with serving(env, workers=4, threads=1) as port:
        floor = ceiling_probe("reads", seconds)
        result = probes["get"](port)
        results["get_sync"] = {**result, "ceiling_req_per_s": floor["req_per_s"],
                               "ratio": result["req_per_s"] / floor["req_per_s"]}
    return results


def project_pay(env: dict, ids: dict, seconds: float, runs: list[tuple[str, float, int, int]]) -> dict[str, dict]:
    """Each run: (name, Stripe latency ms, gunicorn threads per worker, wrk connections); each
    pays reservations of its own, each once, with a fresh Idempotency-Key."""
    results = {}
    payable = ids["payable"]
    per_run = len(payable) // len(runs)
    for index, (name, latency, threads, connections) in enumerate(runs):
        stand_in, stand_in_port = stripe_standin(latency)
        try:
            run_env = {**env, "STRIPE_API_BASE": f"http://127.0.0.1:{stand_in_port}",
                       "GUNICORN_THREADS": str(threads)}
            mine = payable[index * per_run:(index + 1) * per_run]
            with serving_process(run_env, workers=4, threads=None) as (port, server):
                results[name] = wrk(port, method="POST", paths=[f"/api/v1/reservations/{r}/pay/" for r in mine],
                                    body=json.dumps({"payment_method": "pm_card_visa"}),
                                    headers={"Authorization": f"Token {ids['token']}"},
                                    unique_header="Idempotency-Key", sequential=True, connections=connections,
                                    seconds=seconds)
                results[name]["rss_mb"] = sorted(round(mb) for mb in rss_mb(server.pid).values())
        finally:
            stand_in.terminate()
            stand_in.wait(timeout=10)
    return results


def project_webhook(env: dict, ids: dict, seconds: float) -> dict:
    with serving(env, workers=4, threads=None) as port:
        return wrk(port, method="POST", paths=["/"], items=[signed_event(*x) for x in ids["hooked"]],
                   seconds=seconds)


def drain_figures() -> dict[str, float]:
    """bench/drain.py's throughput (4 drainers, fast supplier) and on-commit latency."""
    out = subprocess.run([PY, str(ROOT / "bench" / "drain.py"), "--events", "2000", "--rate", "20"], cwd=ROOT, check=True,
                         capture_output=True, text=True, timeout=900).stdout
    print(out, flush=True)
    figures = {}
    if m := re.search(r"\[1\] throughput: .* = (\d+) events/s", out):
        figures["drain"] = float(m.group(1))
    if m := re.search(r"\[2\] on-commit path.*p95 (\d+) ms", out):
        figures["commit_to_supplier_p95_ms"] = float(m.group(1))
    return figures


def memory_figures(minutes: float) -> None:
    """bench/memory.py for a short run (the 5-minute one: `bench/memory.py --minutes 5`)."""
    out = subprocess.run([PY, str(ROOT / "bench" / "memory.py"), "--minutes", str(minutes), "--slice-seconds", "20"],
                         cwd=ROOT, check=True, capture_output=True, text=True, timeout=1800).stdout
    print(out, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--only", default="api,pay,webhook,drain,memory")
    parser.add_argument("--memory-minutes", type=float, default=1)
    parser.add_argument("--rounds", type=int, default=3, help="API probes: pairs (ceiling, probe) per probe")
    args = parser.parse_args()
    only = set(args.only.split(","))
    if not wrk_available():
        raise SystemExit("wrk is not installed: apt-get install wrk (make bench installs it)")
    subprocess.run(["redis-cli", "-u", REDIS_URL, "FLUSHDB"], check=True, capture_output=True)

    with ceiling.ceiling_server() as ceiling_probe:
        print(f"ceilings (bench/ceiling.py), {args.seconds:g} s each ...", flush=True)
        ceilings = {name: ceiling_probe(name, args.seconds) for name in ceiling.PROBES}
        for name, r in ceilings.items():
            print(f"  ceiling {name:<8} {r['req_per_s']:>8} req/s  p50 {r['p50_ms']} ms  p99 {r['p99_ms']} ms",
                  flush=True)

        env = bench_env(DB, REDIS_URL=REDIS_URL, STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET)
        prepare_database(env, DB)
        ids = json.loads(django_shell(env, SETUP % {"payable": 50000, "hooked": 15000}))
        rows: list[tuple[str, dict, str | None, float | None, str]] = []  # name, result, ceiling, target, note

        if "api" in only:
            print(f"API probes, each after its ceiling, {args.rounds} round(s) ...", flush=True)
            api = project_api(env, ids, args.seconds, args.rounds, ceiling_probe)
            rows += [("GET /reservations/{id}/", api["get"], "reads", 0.5, ""),
                     ("GET /reservations/{id}/, 4 sync workers", api["get_sync"], "reads", 0.5, ""),
                     ("GET /reservations/ (20 rows)", api["list"], "reads", 0.3, ""),
                     ("POST /reservations/", api["create"], "payunit", 0.4, "")]
    if "pay" in only:
        pays = project_pay(env, ids, args.seconds, [
            ("pay, Stripe 50 ms, 4w x 8t, 16 conn", 50, 8, 16),
            ("pay, Stripe 400 ms, 4w x 8t, 64 conn", 400, 8, 64),
            ("pay, Stripe 400 ms, 4w x 16t, 64 conn", 400, 16, 64),
            ("pay, Stripe 400 ms, 4w x 32t, 64 conn", 400, 32, 64),
            ("pay, Stripe 400 ms, 4w x 32t, 128 conn", 400, 32, 128),
        ])
        for name, result in pays.items():
            target = "≥ 200 req/s" if "50 ms" in name else "≥ 100 req/s, p95 < 1.5 s"
            rows.append((name, result, "payunit", None, target))
    if "webhook" in only:
        rows.append(("webhook ingest, new events", project_webhook(env, ids, args.seconds), "payunit", None,
                     "≥ 500 events/s"))
    drain = drain_figures() if "drain" in only else {}
    if "memory" in only:
        memory_figures(args.memory_minutes)

    print("\n| probe | req/s | p50 ms | p95 ms | statuses | ceiling | ratio | target |")
    print("|---|---|---|---|---|---|---|---|")
    for name, result, ceiling_name, target_ratio, note in rows:
        ceiling_rps = result.get("ceiling_req_per_s") or (ceilings[ceiling_name]["req_per_s"] if ceiling_name else None)
        ratio = result.get("ratio") or (result["req_per_s"] / ceiling_rps if ceiling_rps else None)
        target = note or (f"≥ {target_ratio}x {ceiling_name}" if target_ratio else "")
        if len(result.get("ratios", [])) > 1:
            target += f" (median of {', '.join(f'{r:.2f}' for r in result['ratios'])})"
        if "rss_mb" in result:
            target += f" (gunicorn RSS MB: {result['rss_mb']})"
        print(f"| {name} | {result['req_per_s']} | {result['p50_ms']} | {result['p95_ms']} | {result['statuses']} "
              f"| {ceiling_name} {ceiling_rps} | {ratio:.2f}x | {target} |")
    if drain:
        print(f"| outbox drain, 4 drainers, fast supplier | {drain.get('drain')} events/s | | | | | | ≥ 500 events/s |")
        print(f"| payment commit → supplier request p95 | {drain.get('commit_to_supplier_p95_ms')} ms | | | | | "
              f"| < 250 ms |")


if __name__ == "__main__":
    main()
