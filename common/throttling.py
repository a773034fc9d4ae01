"""API throttles (E6) that degrade instead of failing when the cache (Redis) is away.

The counters live in the shared cache, one counter per client and window: a window opens with
a client's first request and lasts the rate's duration (N per minute: at most N requests in
the minute after the first). DRF's own throttles keep every request's timestamp in a list
that they read, unpickle, append to and write back on every request (up to 300 entries at
300/min); a counter costs one Redis round trip (INCR, EXPIRE NX, TTL in one Lua script) and
is exact under concurrency, where two processes' read-modify-write of the list lose requests.

A Redis that is down or hangs costs each request at
most the cache's connect/socket timeout (settings.CACHE_*_TIMEOUT_SECONDS) and then lets
it through, logged: an unavailable rate limiter must not become an unavailable API."""

from __future__ import annotations

import logging
import time
from typing import Any

from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.redis import RedisCache
from redis import Redis
from redis.commands.core import Script
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


# Count, open the window if it has no end yet, say when it ends: atomic, as a script is. (A
# MULTI/EXEC pipeline did the same with five replies to parse per request, a tenth of a GET's
# Python time in the Redis client.)
_WINDOW_HIT = """
local count = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1], 'NX')
return {count, redis.call('TTL', KEYS[1])}
"""


def window_hit(cache: BaseCache, key: str, duration: int) -> tuple[int, int]:
    """Count a request in `key`'s window (opened by the first, lasting `duration` seconds).
    Returns (requests in the window so far, seconds until it closes)."""
    if isinstance(cache, RedisCache):
        # Django's cache API has no atomic "increment or create with a timeout" (its incr is
        # EXISTS then INCR): the Redis client it holds (with its timeouts) does it in one trip,
        # by the script's SHA (redis-py loads it again if the server lost it).
        full_key = cache.make_and_validate_key(key)
        client = cache._cache.get_client(full_key, write=True)
        count, ttl = _window_script(client)(keys=[full_key], args=[duration], client=client)
        return int(count), max(int(ttl), 1)
    # Another backend (LocMem in `make run` without Redis): add, else increment.
    now = time.time()
    if cache.add(key, 1, duration):
        cache.set(f"{key}:opened", now, duration)
        return 1, duration
    try:
        count = cache.incr(key)
    except ValueError:  # the window closed between add and incr
        return window_hit(cache, key, duration)
    opened = cache.get(f"{key}:opened", now)
    return count, max(int(duration - (now - opened)), 1)


_window_hit_script: Script | None = None


def _window_script(client: Redis) -> Script:
    """The script, its SHA worked out once (with the first client's encoding: UTF-8); run with
    each call's own client."""
    global _window_hit_script  # built once, on first use; a race builds it twice, equal
    if _window_hit_script is None:
        _window_hit_script = client.register_script(_WINDOW_HIT)
    return _window_hit_script


class _FixedWindow:
    """SimpleRateThrottle's interface (rate, scope, cache key, wait) on window_hit."""

    cache: BaseCache
    rate: str | None
    num_requests: int
    duration: int
    _retry_after: int | None = None

    def allow_request(self, request: Request, view: Any) -> bool:
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)  # type: ignore[attr-defined]  # DRF's, later in the MRO
        if key is None:
            return True
        # The cache itself, not django.core.cache.cache (a proxy DRF keeps as self.cache).
        count, closes_in = window_hit(caches[DEFAULT_CACHE_ALIAS], key, self.duration)
        if count <= self.num_requests:
            return True
        self._retry_after = closes_in
        return False

    def wait(self) -> int | None:
        return self._retry_after


class AnonRateThrottle(_DegradingThrottle, _FixedWindow, throttling.AnonRateThrottle):
    pass


class UserRateThrottle(_DegradingThrottle, _FixedWindow, throttling.UserRateThrottle):
    pass


class ReservationCreateThrottle(_DegradingThrottle, _FixedWindow, throttling.UserRateThrottle):
    """POST /reservations/ per user ("reservation_create" rate), on top of the general rate:
    each create takes capacity, so creating is what a hoarder would repeat."""

    scope = "reservation_create"
