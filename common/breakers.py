"""Circuit breakers whose state every process shares (B3, C4).

`get_breaker(name, ...)` returns a pybreaker.CircuitBreaker backed by Redis when
`settings.REDIS_URL` is set, else by a row of `circuit_breakers` in the database. Either way a
breaker opened by one web or worker process is open for all of them.

Callers choose which failures count: pass `exclude=[predicate]` where the predicate is true
for errors that do NOT mean "the dependency is unwell" (a card decline, a 4xx)."""

from __future__ import annotations

import datetime as dt
import math
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pybreaker
import redis
from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric

from common.models import CircuitBreakerRecord

_REDIS_NAMESPACE_PREFIX = "breaker"


class DatabaseCircuitStorage(pybreaker.CircuitBreakerStorage):
    """pybreaker storage on one `CircuitBreakerRecord` row. Counters change with
    `UPDATE … SET n = n + 1`, so concurrent processes never lose an increment. The row is
    created on first write (and again if a test flush removed it)."""

    def __init__(self, name: str) -> None:
        super().__init__("database")
        self._key = name

    def _row(self) -> dict[str, Any]:
        row = (
            CircuitBreakerRecord.objects.filter(name=self._key)
            .values("state", "fail_counter", "success_counter", "opened_at")
            .first()
        )
        return row or {"state": pybreaker.STATE_CLOSED, "fail_counter": 0, "success_counter": 0, "opened_at": None}

    def _update(self, **fields: Any) -> None:
        qs = CircuitBreakerRecord.objects.filter(name=self._key)
        if qs.update(**fields):
            return
        try:
            with transaction.atomic():
                CircuitBreakerRecord.objects.create(name=self._key)
        except IntegrityError:
            pass  # another process created it first
        qs.update(**fields)

    @property
    def state(self) -> str:
        return self._row()["state"]

    @state.setter
    def state(self, state: str) -> None:
        self._update(state=str(state))

    def increment_counter(self) -> None:
        self._update(fail_counter=models.F("fail_counter") + 1)

    def reset_counter(self) -> None:
        # pybreaker resets after every successful call: only write when there is something
        # to reset, so a healthy breaker costs one read per call, not a commit.
        CircuitBreakerRecord.objects.filter(name=self._key).exclude(fail_counter=0).update(fail_counter=0)

    def increment_success_counter(self) -> None:
        self._update(success_counter=models.F("success_counter") + 1)

    def reset_success_counter(self) -> None:
        CircuitBreakerRecord.objects.filter(name=self._key).exclude(success_counter=0).update(success_counter=0)

    @property
    def counter(self) -> int:
        return self._row()["fail_counter"]

    @property
    def success_counter(self) -> int:
        return self._row()["success_counter"]

    @property
    def opened_at(self) -> dt.datetime | None:
        return self._row()["opened_at"]

    @opened_at.setter
    def opened_at(self, now: dt.datetime) -> None:
        self._update(opened_at=now)


class SharedCircuitBreaker(pybreaker.CircuitBreaker):
    """pybreaker holds a per-instance lock for the whole guarded call, which would let only
    one thread of a process talk to Stripe at a time. The state lives in shared storage
    anyway, so the call runs without that lock (state changes still take it)."""

    def call(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return self.state.call(func, *args, **kwargs)

    def retry_after_seconds(self) -> int:
        """Seconds until an open breaker lets a trial call through (at least 1)."""
        opened_at = self._state_storage.opened_at
        if opened_at is None:
            return 1
        remaining = (opened_at + dt.timedelta(seconds=self.reset_timeout) - timezone.now()).total_seconds()
        return max(1, math.ceil(remaining))


_breakers: dict[str, SharedCircuitBreaker] = {}
_registry_lock = threading.Lock()


def _redis_client() -> Any:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1)


def _storage_for(name: str) -> pybreaker.CircuitBreakerStorage:
    if settings.REDIS_URL:
        return pybreaker.CircuitRedisStorage(
            pybreaker.STATE_CLOSED, _redis_client(), namespace=f"{_REDIS_NAMESPACE_PREFIX}:{name}"
        )
    return DatabaseCircuitStorage(name)


def get_breaker(
    name: str,
    *,
    fail_max: int,
    reset_timeout: float,
    exclude: Iterable[type[BaseException] | Callable[[BaseException], bool]] | None = None,
) -> SharedCircuitBreaker:
    """The process's breaker object for `name` (state shared through Redis or the DB).
    Thresholds are applied on every call, so a settings change takes effect at once."""
    with _registry_lock:
        breaker = _breakers.get(name)
        backend = "redis" if settings.REDIS_URL else "database"
        if breaker is None or breaker._state_storage.name != backend:
            breaker = SharedCircuitBreaker(
                fail_max=fail_max, reset_timeout=reset_timeout, exclude=list(exclude or []),
                state_storage=_storage_for(name), name=name,
            )
            _breakers[name] = breaker
    breaker.fail_max = fail_max
    breaker.reset_timeout = reset_timeout
    return breaker


def breaker_states() -> dict[str, str]:
    """{name: "closed" | "open" | "half-open"} for every breaker any process has used."""
    states: dict[str, str] = {}
    if settings.REDIS_URL:
        client = _redis_client()
        for raw_key in client.scan_iter(match=f"{_REDIS_NAMESPACE_PREFIX}:*:pybreaker:state"):
            key = raw_key.decode()
            name = key[len(_REDIS_NAMESPACE_PREFIX) + 1 : -len(":pybreaker:state")]
            value = client.get(key)
            states[name] = value.decode() if value else pybreaker.STATE_CLOSED
    else:
        states.update(CircuitBreakerRecord.objects.values_list("name", "state"))
    for name in _breakers:
        states.setdefault(name, pybreaker.STATE_CLOSED)
    return dict(sorted(states.items()))


def breakers_ready_check() -> tuple[bool, dict[str, str]]:
    """Readiness reports the breakers but does not fail on an open one: this process can
    still serve everything that does not need the unwell dependency."""
    return True, breaker_states()


BREAKER_STATES = (pybreaker.STATE_CLOSED, pybreaker.STATE_HALF_OPEN, pybreaker.STATE_OPEN)


def breaker_gauges() -> Iterator[Metric]:
    """/metrics: one series per breaker and state, 1 for the state it is in (F3)."""
    family = GaugeMetricFamily("reserve_circuit_breaker_state", "Shared circuit breaker state (1 = current).",
                               labels=["breaker", "state"])
    for name, current in breaker_states().items():
        for state in BREAKER_STATES:
            family.add_metric([name, state], 1 if current == state else 0)
    yield family
