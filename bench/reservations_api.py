#!/usr/bin/env python
"""Throughput of GET /api/v1/reservations/{id}/ and POST /api/v1/reservations/ against
MariaDB through gunicorn with production settings. Prints figures; asserts nothing.

    .venv/bin/python bench/reservations_api.py [--seconds 10] [--clients 8] [--workers 4]
"""

from __future__ import annotations

import argparse
import datetime as dt
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
    wrk_available,
    wrk_load,
)

DB = "reserve_bench_reservations"
SETUP = SETUP_PREAMBLE + """
from reservations.services import reservation_create
p, c = product("UNLIMITED"), product("CAPPED", capacity=1000000)
r = reservation_create(user=u, product=p, date=dt.date.today() + dt.timedelta(days=5), quantity=1, guest_name="B",
                       guest_email="b@x.io")
print(json.dumps({"token": token, "product": str(p.id), "capped": str(c.id), "reservation": str(r.id)}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()

    env = bench_env(DB)
    prepare_database(env, DB)
    ids = json.loads(django_shell(env, SETUP))
    auth = {"Authorization": f"Token {ids['token']}"}
    date = (dt.date.today() + dt.timedelta(days=7)).isoformat()
    with serving(env, workers=args.workers) as port:
        scenarios = {
            "GET  /api/v1/reservations/{id}/": lambda w, i: (
                "GET", f"/api/v1/reservations/{ids['reservation']}/", None, auth),
            "POST /api/v1/reservations/ (unlimited product)": lambda w, i: (
                "POST", "/api/v1/reservations/",
                {"product": ids["product"], "date": date, "quantity": 1, "guest_name": "Bench",
                 "guest_email": "bench@example.test"}, auth),
            "POST /api/v1/reservations/ (capacity row lock, one hot date)": lambda w, i: (
                "POST", "/api/v1/reservations/",
                {"product": ids["capped"], "date": date, "quantity": 1, "guest_name": "Bench",
                 "guest_email": "bench@example.test"}, auth),
        }
        print(f"gunicorn {args.workers} sync workers, {args.clients} client processes, {args.seconds:.0f} s each, "
              f"MariaDB, production settings")
        for name, make in scenarios.items():
            result = load(port, make, clients=args.clients, seconds=args.seconds)
            print(f"{name:<62} {describe(result)}")
        if wrk_available():
            print("the same with wrk (16 connections; a client that leaves the server the CPU):")
            body = {"product": ids["product"], "date": date, "quantity": 1, "guest_name": "Bench",
                    "guest_email": "bench@example.test"}
            for name, method, path, payload in [
                ("GET  /api/v1/reservations/{id}/", "GET", f"/api/v1/reservations/{ids['reservation']}/", None),
                ("POST /api/v1/reservations/ (unlimited product)", "POST", "/api/v1/reservations/", body),
                ("POST /api/v1/reservations/ (capacity row lock, one hot date)", "POST", "/api/v1/reservations/",
                 {**body, "product": ids["capped"]}),
            ]:
                r = wrk_load(port, method, path, body=payload, headers=auth, seconds=args.seconds)
                print(f"{name:<62} {r['req_per_s']:>8} req/s  p50 {r['p50_ms']} ms  p99 {r['p99_ms']} ms  "
                      f"non-2xx {r['non_2xx']}")


if __name__ == "__main__":
    main()
