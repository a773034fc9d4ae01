#!/usr/bin/env python
"""Pay throughput: POST /api/v1/reservations/{id}/pay/ through gunicorn (production settings)
against MariaDB, with a constant-latency Stripe stand-in (bench/stripe_standin.py). Each
request pays a fresh reservation with a fresh Idempotency-Key. Prints figures; asserts nothing.

    .venv/bin/python bench/pay.py [--seconds 10] [--clients 16] [--latency-ms 50]
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench._harness import (
    SETUP_PREAMBLE,
    bench_env,
    describe,
    django_shell,
    load,
    prepare_database,
    serving,
    stripe_standin,
)

DB = "reserve_bench_pay"
SETUP = SETUP_PREAMBLE + """
rows = unpaid_reservations(product("PAY"), %d)
print(json.dumps({"token": token, "ids": [str(r.id) for r in rows]}))
"""


def run(env: dict, ids: list[str], token: str, *, clients: int, seconds: float, workers: int, threads: int) -> dict:
    per_client = [ids[c::clients] for c in range(clients)]

    def make_request(worker: int, i: int):
        mine = per_client[worker]
        rid = mine[i % len(mine)]  # wraps only if the run outlasts the prepared rows (then 409)
        return ("POST", f"/api/v1/reservations/{rid}/pay/", {"payment_method": "pm_card_visa"},
                {"Authorization": f"Token {token}", "Idempotency-Key": f"bench-{worker}-{i}"})

    with serving(env, workers=workers, threads=threads) as port:
        return load(port, make_request, clients=clients, seconds=seconds)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--reservations", type=int, default=8000)
    args = parser.parse_args()

    standin, standin_port = stripe_standin(args.latency_ms)
    env = bench_env(DB, STRIPE_API_BASE=f"http://127.0.0.1:{standin_port}", STRIPE_API_KEY="sk_test_bench",
                    STRIPE_WEBHOOK_SECRET="whsec_bench", STRIPE_TIMEOUT_SECONDS="8")
    try:
        for workers, threads in ((4, 1), (4, 8)):
            prepare_database(env, DB)
            data = json.loads(django_shell(env, SETUP % args.reservations))
            result = run(env, data["ids"], data["token"], clients=args.clients, seconds=args.seconds,
                         workers=workers, threads=threads)
            print(f"pay  gunicorn {workers}w x {threads}t  Stripe latency {args.latency_ms:.0f} ms  "
                  f"clients {args.clients}: {describe(result)}", flush=True)
    finally:
        standin.terminate()
        standin.wait(timeout=10)


if __name__ == "__main__":
    main()
