#!/usr/bin/env python
"""Does the application keep anything per request? In-process (WSGI, no gunicorn), production
settings, Redis and a Stripe stand-in: warm up, then tracemalloc's Python heap growth over N
rounds of one GET and one pay, with the largest growing allocation sites. Complements
bench/memory.py, whose RSS includes the C allocator. Prints; asserts nothing.

    .venv/bin/python bench/heap.py [--rounds 1200]
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import sys
import tracemalloc

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench._harness import SETUP_PREAMBLE, bench_env, django_shell, prepare_database, stripe_standin

DB = "reserve_bench_heap"
SETUP = SETUP_PREAMBLE + """
payable = unpaid_reservations(product("HEAP"), %d)
print(json.dumps({"token": token, "read": str(payable[0].id), "payable": [str(r.id) for r in payable[1:]]}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=1200)
    args = parser.parse_args()
    warm_up = 300
    standin, port = stripe_standin(0)
    env = bench_env(DB, STRIPE_API_BASE=f"http://127.0.0.1:{port}",
                    REDIS_URL=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"))
    try:
        prepare_database(env, DB)
        ids = json.loads(django_shell(env, SETUP % (warm_up + args.rounds + 1)))
        os.environ.update(env)
        import django

        django.setup()
        logging.disable(logging.CRITICAL)  # the access log would be most of what is allocated
        from django.core.handlers.wsgi import WSGIHandler
        from django.test import RequestFactory

        app, factory = WSGIHandler(), RequestFactory()
        auth = {"HTTP_AUTHORIZATION": f"Token {ids['token']}", "SERVER_NAME": "127.0.0.1"}
        payable = iter(ids["payable"])

        def rounds(n: int) -> None:
            for _ in range(n):
                for request in (factory.get(f"/api/v1/reservations/{ids['read']}/", **auth),
                                factory.post(f"/api/v1/reservations/{next(payable)}/pay/",
                                             data=json.dumps({"payment_method": "pm_card_visa"}),
                                             content_type="application/json",
                                             HTTP_IDEMPOTENCY_KEY=f"heap-{os.urandom(8).hex()}", **auth)):
                    for _ in app(request.environ, lambda status, headers: None):
                        pass

        rounds(warm_up)
        gc.collect()
        tracemalloc.start(12)
        before = tracemalloc.take_snapshot()
        rounds(args.rounds)
        gc.collect()
        diff = tracemalloc.take_snapshot().compare_to(before, "traceback")
        print(f"Python heap growth over {args.rounds} rounds of GET + pay (after {warm_up}): "
              f"{sum(d.size_diff for d in diff) / 1024:.1f} KiB")
        for d in diff[:5]:
            print(f"  {d.size_diff / 1024:8.1f} KiB {d.count_diff:+6d} blocks  {d.traceback.format()[-2].strip()}")
    finally:
        standin.terminate()


if __name__ == "__main__":
    main()
