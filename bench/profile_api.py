#!/usr/bin/env python
"""Where an API request's time goes, in-process (issue "performance": profile first). Calls the
WSGI application directly (no HTTP, no gunicorn) under production settings against a bench
database, N times per endpoint, and prints: milliseconds per request, SQL statements per
request, and the top functions by cumulative time (cProfile). Asserts nothing.

    .venv/bin/python bench/profile_api.py [--requests 500] [--top 25] [--only get|list|create|pay|webhook]

--top 0: no profiler, only the times and the statements (PROFILE_SORT=tottime: sort by own time).
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import json
import os
import pstats
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench._harness import SETUP_PREAMBLE, bench_env, django_shell, prepare_database, stripe_standin

DB = "reserve_bench_profile"
SETUP = SETUP_PREAMBLE + """
p = product("PROF")
listed = unpaid_reservations(p, 20)
attempts_for(listed)
payable = unpaid_reservations(p, %d)
pays = attempts_for(unpaid_reservations(p, %d), in_flight=True)
print(json.dumps({"token": token, "product": str(p.id), "read": str(listed[0].id),
                  "payable": [str(r.id) for r in payable], "hooked": hook_ids(pays)}))
"""


AREAS = (("/django/db/", "django ORM"), ("/django/", "django"), ("/rest_framework/", "DRF"), ("/knox/", "knox"),
         ("/stripe/", "stripe SDK"), ("/requests/", "requests"), ("/urllib3/", "urllib3"),
         ("/MySQLdb/", "mysqlclient"), ("/redis/", "redis"), ("/django_q/", "django-q"),
         ("/pybreaker/", "pybreaker"), ("/logging/", "logging"), ("/json/", "json"), ("/work/main/", "project"))


def _area(filename: str) -> str:
    if filename == "~":
        return "C calls (DB/socket I/O included)"
    return next((name for marker, name in AREAS if marker in filename), "other stdlib")


def print_areas(stats: pstats.Stats) -> None:
    """The profile's own time summed by area (AREAS), largest first."""
    areas: dict[str, float] = {}
    for (filename, _, _), (_, _, tottime, _, _) in stats.stats.items():
        areas[_area(filename)] = areas.get(_area(filename), 0) + tottime
    total = sum(areas.values())
    print("    own time by area: " + ", ".join(f"{a} {t / total:.0%}" for a, t in sorted(
        areas.items(), key=lambda x: -x[1])[:14]))


def server_questions() -> int:
    """The server's count of statements received (all clients: nothing else talks to it here)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW GLOBAL STATUS LIKE 'Questions'")
        return int(cursor.fetchone()[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--only", default="")
    args = parser.parse_args()

    standin, standin_port = stripe_standin(0)
    # As deployed (compose.yaml): Redis for the cache (throttles), the breakers and the task broker.
    env = bench_env(DB, STRIPE_API_BASE=f"http://127.0.0.1:{standin_port}", STRIPE_WEBHOOK_SECRET="whsec_bench_all",
                    REDIS_URL=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"))
    try:
        prepare_database(env, DB)
        ids = json.loads(django_shell(env, SETUP % (args.requests, args.requests)))
    except BaseException:
        standin.terminate()  # it holds our stdout: a caller reading it would wait forever
        raise
    os.environ.update(env)
    import django

    django.setup()
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connection
    from django.test import RequestFactory

    app = WSGIHandler()
    factory = RequestFactory()
    auth = {"HTTP_AUTHORIZATION": f"Token {ids['token']}", "SERVER_NAME": "127.0.0.1"}
    date = (dt.date.today() + dt.timedelta(days=10)).isoformat()
    create_body = json.dumps({"product": ids["product"], "date": date, "quantity": 1, "guest_name": "P",
                              "guest_email": "p@x.io"})
    payable = iter(ids["payable"])

    def environ(method: str, path: str, body: str | None = None, **extra: str) -> dict:
        request = getattr(factory, method.lower())(path, data=body or "", content_type="application/json",
                                                  **auth, **extra)
        return request.environ

    scenarios = {
        "get": lambda i: environ("GET", f"/api/v1/reservations/{ids['read']}/"),
        "list": lambda i: environ("GET", "/api/v1/reservations/?page_size=20"),
        "create": lambda i: environ("POST", "/api/v1/reservations/", create_body),
        "pay": lambda i: environ("POST", f"/api/v1/reservations/{next(payable)}/pay/",
                                 json.dumps({"payment_method": "pm_card_visa"}), HTTP_IDEMPOTENCY_KEY=f"prof-{i}"),
        "webhook": lambda i: webhook_environ(next(hooked)),
    }
    hooked = iter(ids["hooked"])

    def webhook_environ(hook: list[str]) -> dict:
        from bench.all import signed_event

        path, body, headers = signed_event(*hook)
        request = factory.post(path, data=body, content_type="application/json", SERVER_NAME="127.0.0.1",
                               HTTP_STRIPE_SIGNATURE=headers["Stripe-Signature"])
        return request.environ

    def call(e: dict, statuses: dict[int, int]) -> None:
        def start_response(status: str, headers: list) -> None:
            code = int(status.split(maxsplit=1)[0])
            statuses[code] = statuses.get(code, 0) + 1

        for _ in app(e, start_response):
            pass

    def profile(name: str, make, n: int) -> None:
        statuses: dict[int, int] = {}
        if name not in ("pay", "webhook"):
            for i in range(20):  # warm up (imports, connections)
                call(make(10_000_000 + i), statuses)
        # (CaptureQueriesContext sees nothing here: request_started clears the query log.)
        statements: list[str] = []

        def record(execute, sql, params, many, context):
            statements.append(sql)
            return execute(sql, params, many, context)

        with connection.execute_wrapper(record):
            call(make(0), statuses)
        profiler = cProfile.Profile()
        questions = server_questions()
        started, cpu_started = time.perf_counter(), time.process_time()
        if args.top:
            profiler.enable()
        for i in range(1, n):
            call(make(i), statuses)
        profiler.disable()
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        round_trips = (server_questions() - questions - 1) / (n - 1)
        sql = [q for q in statements if not q.startswith(("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE SAVEPOINT",
                                                          "ROLLBACK"))]
        print(f"\n=== {name}: {elapsed / (n - 1) * 1000:.2f} ms per request in-process ({cpu / (n - 1) * 1000:.2f} ms "
              f"of this process's CPU{', under cProfile' if args.top else ''}), {len(sql)} SQL "
              f"statements (+ {len(statements) - len(sql)} transaction control), statuses {statuses}; "
              f"{round_trips:.1f} statements per request received by the server (its Questions counter: "
              "transaction control and autocommit switches included)")
        for statement in sql:
            print(f"    {statement[:150]}")
        if not args.top:
            return
        stats = pstats.Stats(profiler)
        print_areas(stats)
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(os.environ.get("PROFILE_SORT", "cumulative")).print_stats(
            args.top)
        print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:6000])
        if os.environ.get("PROFILE_CALLERS"):  # e.g. PROFILE_CALLERS='client.py:128'
            pstats.Stats(profiler).print_callers(os.environ["PROFILE_CALLERS"])
        if os.environ.get("PROFILE_CALLEES"):  # e.g. PROFILE_CALLEES=set_autocommit
            pstats.Stats(profiler).print_callees(os.environ["PROFILE_CALLEES"])

    try:
        for name, make in scenarios.items():
            if not args.only or name == args.only:
                profile(name, make, args.requests)
    finally:
        standin.terminate()


if __name__ == "__main__":
    main()
