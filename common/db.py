"""Database helpers: deadlock retry (E2) and version-conditional updates (A5)."""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, models, transaction
from django.utils import timezone

from common.compiled import versioned_update_rows
from common.exceptions import VersionConflict
from common.metrics import DEADLOCK_RETRIES

logger = logging.getLogger("reserve.db")

F = TypeVar("F", bound=Callable[..., Any])
M = TypeVar("M", bound=models.Model)

# MySQL/MariaDB: 1213 deadlock found, 1205 lock wait timeout exceeded,
# 1020 record has changed since last read (InnoDB snapshot conflict).
RETRYABLE_MYSQL_ERRORS = frozenset({1213, 1205, 1020})

deadlock_retries_total = 0  # this process's retries (tests read it); /metrics counts them across processes


def is_retryable_db_error(exc: BaseException) -> bool:
    if not isinstance(exc, OperationalError):
        return False
    args = getattr(exc, "args", ())
    return bool(args) and args[0] in RETRYABLE_MYSQL_ERRORS


def in_application_transaction() -> bool:
    """True inside an atomic block opened by our code (TestCase's wrapping blocks don't count,
    the same rule Django applies to durable=True)."""
    return bool(connection.atomic_blocks) and not connection.atomic_blocks[-1]._from_testcase


def create_unless_conflict(create: Callable[[], M]) -> M | None:
    """Run `create` (one INSERT); None when a unique constraint refuses it. Outside a
    transaction the INSERT commits by itself: one round trip, where an atomic block would add
    four (autocommit off, savepoint, release, commit, autocommit on). Inside one, a savepoint
    keeps the enclosing transaction usable after the refusal."""
    try:
        if connection.in_atomic_block:
            with transaction.atomic():
                return create()
        return create()
    except IntegrityError:
        return None


def retry_on_deadlock(
    func: F | None = None, *, attempts: int | None = None, base_delay: float = 0.02, max_delay: float = 0.5
) -> Any:
    """Re-run a whole transaction when MariaDB picked it as a deadlock victim or a lock wait
    timed out. Only for functions that *open* the outermost atomic block: a retry inside an
    outer transaction would re-run half of it, so that is refused. Side effects (HTTP calls,
    task enqueueing) belong outside or in on_commit, which a rolled back attempt never runs.
    """

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if in_application_transaction():
                raise RuntimeError(f"{fn.__qualname__} must open the outermost transaction to be retried")
            limit = attempts or settings.DEADLOCK_RETRY_ATTEMPTS
            for attempt in range(1, limit + 1):
                try:
                    return fn(*args, **kwargs)
                except OperationalError as exc:
                    if not is_retryable_db_error(exc) or attempt == limit:
                        raise
                    global deadlock_retries_total
                    deadlock_retries_total += 1
                    DEADLOCK_RETRIES.inc()
                    # Full jitter: two victims of the same deadlock must not collide again.
                    delay = random.uniform(0, min(max_delay, base_delay * 2 ** (attempt - 1)))
                    logger.warning(
                        "transaction retried after MySQL error %s",
                        exc.args[0],
                        extra={"attempt": attempt, "function": fn.__qualname__, "delay_s": round(delay, 3)},
                    )
                    time.sleep(delay)
            raise AssertionError("unreachable")

        return wrapper  # type: ignore[return-value]

    return decorate(func) if func is not None else decorate


def version_check(instance: models.Model, expected_version: int | None) -> None:
    """The one optimistic-locking check (A5): refuse with VersionConflict when the caller acted
    on another version than the row holds now (a stale page, a lost race). None: no check."""
    if expected_version is not None and expected_version != instance.version:
        raise VersionConflict(extra={"current_version": instance.version, "expected_version": expected_version})


def versioned_update(instance: models.Model, *, fields: dict[str, Any], expected_version: int | None = None) -> None:
    """`UPDATE … SET …, version = version + 1 WHERE pk = %s AND version = %s`.

    Raises VersionConflict when another writer got there first; on success the instance
    reflects the new values and version. `updated_at` is refreshed when the model has it.
    """
    version = instance.version if expected_version is None else expected_version
    values = dict(fields)
    if any(f.name == "updated_at" for f in instance._meta.concrete_fields):
        values.setdefault("updated_at", timezone.now())
    updated = versioned_update_rows(type(instance), pk=instance.pk, version=version, values=values)
    if updated != 1:
        raise VersionConflict(extra={"expected_version": version})
    for name, value in values.items():
        setattr(instance, name, value)
    instance.version = version + 1
