#!/usr/bin/env python
"""The framework's floor on this machine (issue "performance"): the one-file Django apps of
bench/ceiling_app.py, served by gunicorn 4 sync workers, loaded by wrk with 16 connections.
Prints req/s per probe; asserts nothing. bench/all.py reads these as the denominators.

    .venv/bin/python bench/ceiling.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench._harness import SETUP_PREAMBLE, bench_env, django_shell, prepare_database, serving
from bench._wrk import wrk, wrk_available

DB = "reserve_bench_ceiling"
SETUP = SETUP_PREAMBLE + """
p = product("CEIL")
listed = unpaid_reservations(p, 20)
attempts_for(listed)
writable = unpaid_reservations(p, %d)
customers = [api_token_issue(user=User.objects.get_or_create(username=f"bench-{i}")[0]).token for i in range(50)]
print(json.dumps({"token": token, "product": str(p.id), "read": str(listed[0].id),
                  "writable": [str(r.id) for r in writable], "customers": customers}))
"""

PROBES = ("ping", "reads", "list", "payunit", "create")


@contextlib.contextmanager
def ceiling_server(*, reservations: int = 20000) -> Iterator[Callable[[str, float], dict]]:
    """The ceiling apps served for the block, on a fresh database (every sitting starts alike);
    yields `probe(name, seconds)`, which runs wrk on one of PROBES and returns its result."""
    env = bench_env(DB)
    prepare_database(env, DB)
    ids = json.loads(django_shell(env, SETUP % reservations))
    auth = {"Authorization": f"Token {ids['token']}"}
    ceiling_env = {**env, "CEILING_DATABASE_URL": f"mysql://root@127.0.0.1:3306/{DB}"}
    body = json.dumps({"date": "2030-01-01", "quantity": 1, "guest_name": "Bench", "guest_email": "b@x.io"})
    with serving(ceiling_env, workers=4, app="bench.ceiling_app:application", config_file="/dev/null") as port:
        runs = {
            "ping": lambda seconds: wrk(port, paths=["/ping"], seconds=seconds),
            "reads": lambda seconds: wrk(port, paths=[f"/reads/{ids['read']}"], headers=auth, seconds=seconds),
            "list": lambda seconds: wrk(port, paths=["/list"], headers=auth, seconds=seconds),
            "payunit": lambda seconds: wrk(port, method="POST", paths=[f"/payunit/{r}" for r in ids["writable"]],
                                           headers=auth, seconds=seconds),
            # Creates come from many customers: each locks its own customer row (the unpaid-hold count).
            "create": lambda seconds: wrk(port, method="POST", paths=[f"/create/{ids['product']}"], body=body,
                                          header_choices={"Authorization": [f"Token {t}" for t in ids["customers"]]},
                                          seconds=seconds),
        }
        yield lambda name, seconds: runs[name](seconds)


def measure(*, seconds: float, reservations: int = 20000) -> dict[str, dict]:
    """Each probe's wrk result."""
    with ceiling_server(reservations=reservations) as probe:
        return {name: probe(name, seconds) for name in PROBES}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    if not wrk_available():
        raise SystemExit("wrk is not installed: apt-get install wrk (make bench installs it)")
    for name, result in measure(seconds=args.seconds).items():
        print(f"ceiling {name:<8} {result['req_per_s']:>8} req/s  p50 {result['p50_ms']} ms  "
              f"p99 {result['p99_ms']} ms  statuses {result['statuses']}", flush=True)


if __name__ == "__main__":
    main()
