"""Redis as the deployment uses it (TEST_REDIS_URL; keys are namespaced, nothing is flushed):
the django-q2 broker with the options the settings give it, and the Django cache."""

from __future__ import annotations

import uuid

import pytest
import redis
from django.core.cache import caches
from django_q.brokers.redis_broker import Redis as RedisBroker
from django_q.signing import SignedPackage
from django_q.tasks import async_task


def broker_url(redis_url: str) -> str:
    """What config/settings/base.py hands django-q2 for REDIS_URL."""
    return redis_url + ("&" if "?" in redis_url else "?") + "socket_connect_timeout=2&socket_timeout=5"


def test_the_broker_carries_an_outbox_delivery_through_redis(redis_url):
    broker = RedisBroker(list_key=f"test-{uuid.uuid4().hex[:8]}")
    broker.connection = redis.Redis.from_url(broker_url(redis_url))
    try:
        assert broker.ping()
        async_task("outbox.tasks.outbox_deliver_event", "0b5c7d8e-event", broker=broker,
                   q_options={"task_name": "outbox:0b5c7d8e-event", "save": False})
        assert broker.queue_size() == 1

        [(_, payload)] = broker.dequeue()
        task = SignedPackage.loads(payload)
        assert (task["func"], task["args"], task["save"]) == ("outbox.tasks.outbox_deliver_event",
                                                              ("0b5c7d8e-event",), False)
    finally:
        broker.delete_queue()


@pytest.fixture
def redis_cache_settings(settings, redis_url):
    settings.CACHES = {**settings.CACHES, "redis": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url,
        "KEY_PREFIX": f"test-{uuid.uuid4().hex[:8]}",
        "OPTIONS": {"socket_connect_timeout": settings.CACHE_CONNECT_TIMEOUT_SECONDS,
                    "socket_timeout": settings.CACHE_SOCKET_TIMEOUT_SECONDS}}}


def test_the_django_cache_works_on_redis_with_timeouts(redis_cache_settings):
    cache = caches["redis"]
    cache.set("probe", {"n": 1}, timeout=10)
    assert cache.get("probe") == {"n": 1}
    pool = cache._cache.get_client(write=True).connection_pool
    assert pool.connection_kwargs["socket_timeout"] == 0.5
    assert pool.connection_kwargs["socket_connect_timeout"] == 0.5
    cache.delete("probe")
