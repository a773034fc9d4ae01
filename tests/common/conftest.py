from __future__ import annotations

import contextlib

import pytest
from redis.exceptions import RedisError


@pytest.fixture
def strict_throttling(monkeypatch):
    """DRF binds THROTTLE_RATES at import time, so the rates are patched on the class."""
    from django.core.cache import cache
    from rest_framework.throttling import SimpleRateThrottle

    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"user": "3/min", "anon": "3/min"})
    cache.clear()
    yield
    with contextlib.suppress(RedisError, OSError):  # a test may have stopped the cache's Redis
        cache.clear()
