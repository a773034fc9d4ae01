"""Throttling (E6): the client address comes from NUM_PROXIES trusted proxies, so a client
cannot reset its budget with X-Forwarded-For; a Redis that is down or hangs lets requests
through (degraded) instead of failing them."""

from __future__ import annotations

import time
import uuid

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def login_attempt(client: APIClient, **headers: str) -> int:
    """A failed login, each for another username: the per-account lockout stays out of the way."""
    return client.post("/api/v1/auth/token/", {"username": f"nobody-{uuid.uuid4().hex[:8]}", "password": "x"},
                       format="json", **headers).status_code


def test_without_trusted_proxies_x_forwarded_for_is_ignored(strict_throttling, settings):
    settings.NUM_PROXIES = 0
    client = APIClient(REMOTE_ADDR="198.51.100.7")

    codes = [login_attempt(client, HTTP_X_FORWARDED_FOR=f"10.0.0.{i}") for i in range(4)]

    assert codes == [400, 400, 400, 429]


def test_behind_one_proxy_a_client_cannot_choose_its_address(strict_throttling, settings):
    """The proxy appends the address it saw; what the client wrote before it is ignored."""
    settings.NUM_PROXIES = 1
    proxy = APIClient(REMOTE_ADDR="10.0.0.2")

    codes = [login_attempt(proxy, HTTP_X_FORWARDED_FOR=f"1.2.3.{i}, 198.51.100.7") for i in range(4)]
    other_client = login_attempt(proxy, HTTP_X_FORWARDED_FOR="1.2.3.4, 198.51.100.8")

    assert codes == [400, 400, 400, 429]
    assert other_client == 400  # its own budget


@pytest.fixture
def redis_cache(settings, own_redis):
    settings.CACHES = {"default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": own_redis.url,
        "OPTIONS": {"socket_connect_timeout": settings.CACHE_CONNECT_TIMEOUT_SECONDS,
                    "socket_timeout": settings.CACHE_SOCKET_TIMEOUT_SECONDS}}}
    return own_redis


def test_throttles_count_in_redis(strict_throttling, redis_cache):
    client = APIClient(REMOTE_ADDR="198.51.100.9")
    assert [login_attempt(client) for _ in range(4)] == [400, 400, 400, 429]


@pytest.mark.parametrize("failure", ["paused", "stopped"])
def test_a_hanging_or_stopped_redis_degrades_throttling_instead_of_failing(redis_cache, strict_throttling,
                                                                          failure):
    client = APIClient(REMOTE_ADDR="198.51.100.10", raise_request_exception=False)
    assert login_attempt(client) == 400
    redis_cache.pause() if failure == "paused" else redis_cache.stop()

    started = time.monotonic()
    codes = [login_attempt(client) for _ in range(4)]
    elapsed = time.monotonic() - started

    assert codes == [400, 400, 400, 400]  # served (unthrottled), never a 500
    assert elapsed < 4 * 3  # each request waits at most the cache's timeouts, not forever
    if failure == "paused":
        redis_cache.resume()


def test_concurrent_requests_are_counted_exactly_in_redis(redis_cache):
    """8 threads, 25 requests each, against a 100/min budget: exactly 100 pass. (A
    read-modify-write of a shared history, as DRF's throttles do, lets lost updates through.)"""
    from concurrent.futures import ThreadPoolExecutor

    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    from common.throttling import window_hit

    cache = caches["default"]
    assert isinstance(cache, RedisCache)  # the one-round-trip path

    key = f"throttle_test_{uuid.uuid4().hex}"

    def hits(_: int) -> list[tuple[int, int]]:
        return [window_hit(cache, key, 60) for _ in range(25)]

    with ThreadPoolExecutor(8) as pool:
        results = [hit for batch in pool.map(hits, range(8)) for hit in batch]

    counts = sorted(count for count, _ in results)
    assert counts == list(range(1, 201))  # every request counted once
    assert sum(1 for count in counts if count <= 100) == 100
    assert all(1 <= closes_in <= 60 for _, closes_in in results)


def test_a_refused_request_says_when_the_window_closes(strict_throttling, redis_cache):
    client = APIClient(REMOTE_ADDR="198.51.100.11")
    for _ in range(3):
        login_attempt(client)
    response = client.post("/api/v1/auth/token/", {"username": "nobody-x", "password": "x"}, format="json")

    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60


def test_a_window_gets_its_end_once_and_survives_a_redis_that_lost_its_scripts(redis_cache):
    """The window opens with the first request and ends `duration` later whatever follows (EXPIRE
    NX); a key left without an end (say, counted by a process that died before setting it) gets
    one; and a server that lost its scripts (restart, SCRIPT FLUSH) is given it again."""
    from django.core.cache import caches

    from common.throttling import window_hit

    cache = caches["default"]
    key = f"throttle_test_{uuid.uuid4().hex}"
    full_key = cache.make_and_validate_key(key)
    client = cache._cache.get_client(full_key, write=True)

    assert window_hit(cache, key, 60) == (1, 60)
    client.expire(full_key, 5)  # as if 55 s had passed
    count, closes_in = window_hit(cache, key, 60)
    assert count == 2
    assert closes_in <= 5  # not pushed back by later requests
    client.persist(full_key)
    assert window_hit(cache, key, 60) == (3, 60)
    assert 0 < client.ttl(full_key) <= 60

    client.script_flush()
    assert window_hit(cache, key, 60)[0] == 4
