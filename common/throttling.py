"""API throttles (E6) that degrade instead of failing when the cache (Redis) is away.

The counters live in the shared cache. A Redis that is down or hangs costs each request at
most the cache's connect/socket timeout (settings.CACHE_*_TIMEOUT_SECONDS) and then lets
it through, logged: an unavailable rate limiter must not become an unavailable API."""

from __future__ import annotations

import logging
from typing import Any

from redis.exceptions import RedisError
from rest_framework import throttling
from rest_framework.request import Request

from common.net import client_ip

logger = logging.getLogger("reserve.throttling")

# What a cache backend raises when its server is unreachable or too slow.
CACHE_UNAVAILABLE = (RedisError, OSError)


class _DegradingThrottle:
    def get_ident(self, request: Request) -> str:
        return client_ip(request)

    def allow_request(self, request: Request, view: Any) -> bool:
        try:
            return super().allow_request(request, view)  # type: ignore[misc]
        except CACHE_UNAVAILABLE as exc:
            logger.warning("throttle cache unavailable; request let through",
                           extra={"scope": getattr(self, "scope", ""), "error": type(exc).__name__})
            return True


class AnonRateThrottle(_DegradingThrottle, throttling.AnonRateThrottle):
    pass


class UserRateThrottle(_DegradingThrottle, throttling.UserRateThrottle):
    pass


class ReservationCreateThrottle(_DegradingThrottle, throttling.UserRateThrottle):
    """POST /reservations/ per user ("reservation_create" rate), on top of the general rate:
    each create takes capacity, so creating is what a hoarder would repeat."""

    scope = "reservation_create"
