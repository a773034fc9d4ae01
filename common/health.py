"""Health endpoints (E4). Liveness touches nothing; readiness asks every registered check.

Apps register their checks in AppConfig.ready() with `register_ready_check`, so this module
knows nothing of outbox rows or breakers. A check returns (healthy, details)."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from common.metrics import access_allowed
from common.net import client_ip

logger = logging.getLogger("reserve.health")

ReadyCheck = Callable[[], tuple[bool, Any]]
_READY_CHECKS: dict[str, ReadyCheck] = {}


def register_ready_check(name: str, check: ReadyCheck) -> None:
    _READY_CHECKS[name] = check


def db_ping() -> float:
    """Round trip to the database in ms; raises when it does not answer."""
    started = time.perf_counter()
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return round((time.perf_counter() - started) * 1000, 2)


def _check_db() -> tuple[bool, Any]:
    return True, {"status": "ok", "latency_ms": db_ping()}


def _check_cache() -> tuple[bool, Any]:
    key = f"health:{uuid.uuid4().hex}"
    cache.set(key, "1", timeout=5)
    ok = cache.get(key) == "1"
    cache.delete(key)
    return ok, {"status": "ok" if ok else "error"}


register_ready_check("db", _check_db)
register_ready_check("cache", _check_cache)


@never_cache
@require_GET
def live(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def db(request: HttpRequest) -> JsonResponse:
    try:
        latency = db_ping()
    except Exception:  # any failure to reach the DB is "not healthy", never a 500
        logger.warning("health db check failed", exc_info=True)
        connection.close()  # the next request reconnects (E3)
        return JsonResponse({"status": "error"}, status=503)
    return JsonResponse({"status": "ok", "latency_ms": latency})


@never_cache
@require_GET
def ready(request: HttpRequest) -> JsonResponse:
    """200 or 503. The checks' details (backlog, dead letters, breakers, schedules) are
    operational information: only a scraper with the metrics token or from an allowed network,
    or a logged-in staff member, sees them; anyone else gets the status alone."""
    checks: dict[str, Any] = {}
    healthy = True
    for name, check in _READY_CHECKS.items():
        try:
            ok, details = check()
        except Exception as exc:  # a failing dependency makes us not ready, never a 500
            logger.warning("readiness check %s failed", name, exc_info=True)
            ok, details = False, {"status": "error", "error": type(exc).__name__}
            if name == "db":
                connection.close()
        healthy = healthy and ok
        checks[name] = details
    body: dict[str, Any] = {"status": "ok" if healthy else "error"}
    if _may_see_details(request):
        body["checks"] = checks
    return JsonResponse(body, status=200 if healthy else 503)


def _may_see_details(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.is_staff:
        return True
    return access_allowed(authorization=request.headers.get("Authorization", ""), address=client_ip(request))
