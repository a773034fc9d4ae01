"""common.breakers: the generic shared breaker, on the database and on Redis."""

from __future__ import annotations

import uuid

import pybreaker
import pytest

from common.breakers import DatabaseCircuitStorage, breaker_states, get_breaker

pytestmark = pytest.mark.django_db


class Unwell(Exception):
    pass


class BusinessError(Exception):
    pass


@pytest.fixture(params=["database", "redis"])
def storage_backend(request, settings):
    if request.param == "redis":
        settings.REDIS_URL = request.getfixturevalue("redis_url")
    else:
        settings.REDIS_URL = ""
    return request.param


def _fail(exc: Exception):
    def call():
        raise exc

    return call


def test_breaker_opens_after_fail_max_and_refuses_without_calling(storage_backend):
    name = f"test-{uuid.uuid4().hex[:8]}"  # unique: Redis is shared with other test runs
    breaker = get_breaker(name, fail_max=2, reset_timeout=60, exclude=[BusinessError])
    calls = []

    with pytest.raises(Unwell):
        breaker.call(_fail(Unwell()))
    with pytest.raises(pybreaker.CircuitBreakerError):
        breaker.call(_fail(Unwell()))  # the second failure trips it
    with pytest.raises(pybreaker.CircuitBreakerError):
        breaker.call(lambda: calls.append(1))

    assert calls == []
    assert breaker_states()[name] == "open"
    assert breaker.retry_after_seconds() >= 1


def test_excluded_errors_do_not_count(storage_backend):
    name = f"test-{uuid.uuid4().hex[:8]}"
    breaker = get_breaker(name, fail_max=2, reset_timeout=60, exclude=[BusinessError])
    for _ in range(5):
        with pytest.raises(BusinessError):
            breaker.call(_fail(BusinessError()))
    assert breaker.current_state == "closed"
    assert breaker.call(lambda: "ok") == "ok"


def test_a_second_breaker_object_on_the_same_storage_sees_the_open_state(settings):
    """What a second process sees: its own breaker object, the same row."""
    settings.REDIS_URL = ""
    name = f"test-{uuid.uuid4().hex[:8]}"
    first = get_breaker(name, fail_max=1, reset_timeout=60)
    with pytest.raises(pybreaker.CircuitBreakerError):
        first.call(_fail(Unwell()))

    other_process = pybreaker.CircuitBreaker(fail_max=1, reset_timeout=60, state_storage=DatabaseCircuitStorage(name))

    assert other_process.current_state == "open"
    with pytest.raises(pybreaker.CircuitBreakerError):
        other_process.call(lambda: None)


def test_readiness_reports_breaker_states(client, settings):
    settings.REDIS_URL = ""
    name = f"test-{uuid.uuid4().hex[:8]}"
    breaker = get_breaker(name, fail_max=1, reset_timeout=60)
    with pytest.raises(pybreaker.CircuitBreakerError):
        breaker.call(_fail(Unwell()))

    body = client.get("/health/ready").json()

    assert body["checks"]["breakers"][name] == "open"
