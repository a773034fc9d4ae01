"""The one retry policy of the outbox (C3)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True)
class RetryPolicy:
    """`min(base * 2**(attempt-1), max_delay)` seconds after failed attempt `attempt`.

    `max_attempts` (OUTBOX_MAX_ATTEMPTS) counts the calls in all, the first included (api.md),
    so the default is the first call, then retries after 15, 30, 60 and 120 s; the event is
    dead when the fifth call fails too."""

    base_seconds: float
    max_attempts: int
    max_delay_seconds: float = 300

    @classmethod
    def from_settings(cls) -> RetryPolicy:
        return cls(base_seconds=settings.OUTBOX_BACKOFF_BASE_SECONDS, max_attempts=settings.OUTBOX_MAX_ATTEMPTS)

    def delay(self, attempt: int) -> dt.timedelta:
        """How long to wait after failed attempt number `attempt` (1-based)."""
        return dt.timedelta(seconds=min(self.base_seconds * 2 ** (attempt - 1), self.max_delay_seconds))

    def exhausted(self, attempts: int) -> bool:
        """True when `attempts` calls have been made and no call is left."""
        return attempts >= self.max_attempts

    def schedule(self) -> list[float]:
        """Every retry delay in seconds, in order (for docs, admin and tests): one fewer than
        the calls, since the first call waits for nothing."""
        return [self.delay(n).total_seconds() for n in range(1, self.max_attempts)]


# One outbox call (supplier connect + read timeout) must end well inside the lease that
# covers it, or another worker takes the event over while the call is still running and
# it is performed twice. The margin covers the handler's own database work and clock skew
# between worker hosts.
LEASE_MARGIN_SECONDS = 15


def call_budget_seconds() -> float:
    """The longest one outbox call may take: OUTBOX_LEASE_SECONDS minus the margin (half the
    lease when the lease is too short for the margin, as in tests with a few-second lease)."""
    lease = settings.OUTBOX_LEASE_SECONDS
    return max(lease - LEASE_MARGIN_SECONDS, lease / 2)


def call_budget_error(*, connect_seconds: float, read_seconds: float) -> str | None:
    """Why these timeouts do not fit in one lease, or None when they do."""
    budget = call_budget_seconds()
    if connect_seconds + read_seconds <= budget:
        return None
    return (f"Connect timeout + read timeout ({connect_seconds:g} + {read_seconds:g} s) must not exceed "
            f"{budget:g} s: a longer call outlives the delivery lease and is performed twice.")
