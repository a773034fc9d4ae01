"""What delivering one topic means. A handler's `perform` talks to the outside world and runs
outside any transaction; `apply` records the result inside the delivery's transaction, after
the event row is locked and its version checked, and returns a Verdict. Before the event row
is locked, the handler's optional `lock` takes the rows its `apply` or `on_dead` will change,
so that the delivery keeps the one lock order of common/locking.py (the event row last)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Protocol

from django.utils.module_loading import import_string

from outbox.models import OutboxEvent


class VerdictKind(enum.StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"  # retried per the RetryPolicy, dead when it is exhausted
    DEAD = "dead"  # retrying cannot help
    DEFER = "defer"  # no call left this process: due again later, the attempt given back


@dataclass(frozen=True)
class Verdict:
    kind: VerdictKind
    error: str = ""
    note: str = ""
    delay_seconds: float = 0  # DEFER only: when to look again

    @classmethod
    def delivered(cls, note: str = "") -> Verdict:
        return cls(VerdictKind.DELIVERED, note=note)

    @classmethod
    def retry(cls, error: str) -> Verdict:
        return cls(VerdictKind.RETRY, error=error)

    @classmethod
    def dead(cls, error: str) -> Verdict:
        return cls(VerdictKind.DEAD, error=error)

    @classmethod
    def defer(cls, *, seconds: float, reason: str) -> Verdict:
        """Nothing reached the outside world (an open circuit breaker refused the call): due
        again in `seconds`, and the attempt is given back. It never counts toward
        OUTBOX_MAX_ATTEMPTS and never dead-letters: only calls that may have arrived do."""
        return cls(VerdictKind.DEFER, error=reason, delay_seconds=seconds)


@dataclass(frozen=True)
class PerformFailed:
    """`perform` raised: recorded as a retryable attempt (a bug must not lose the event)."""

    error: str


class TopicHandler(Protocol):
    def perform(self, event: OutboxEvent) -> Any: ...

    # Optional: lock, inside the delivery's transaction, the rows that `apply` and `on_dead`
    # change (e.g. the reservation), before the delivery locks the event row. Default: none.
    def lock(self, event: OutboxEvent) -> None: ...

    def apply(self, event: OutboxEvent, result: Any) -> Verdict: ...

    def on_dead(self, event: OutboxEvent, error: str) -> None: ...


def handler_lock(handler: TopicHandler | None, event: OutboxEvent) -> None:
    """Run the handler's `lock` hook, if it has one (notifications change no domain row)."""
    lock = getattr(handler, "lock", None)
    if lock is not None:
        lock(event)


# topic -> handler class. Dotted paths keep the outbox free of imports of the apps it serves.
HANDLERS: dict[str, str] = {
    "supplier.book": "suppliers.booking.SupplierBookHandler",
    "supplier.cancel": "suppliers.booking.SupplierCancelHandler",
    "reservation.compensate": "payments.services.cancel.CompensationHandler",
    "payment.refund": "payments.services.refunds.RefundSendHandler",
    "payment.cancel_intent": "payments.services.cancel.IntentCancelHandler",
    "alert.email": "outbox.alerts.AlertEmailHandler",
    "alert.slack": "outbox.alerts.AlertSlackHandler",
    "email.customer": "outbox.alerts.CustomerEmailHandler",
}

_instances: dict[str, TopicHandler] = {}


class UnknownTopic(LookupError):
    pass


def handler_for(topic: str) -> TopicHandler:
    if topic not in _instances:
        if topic not in HANDLERS:
            raise UnknownTopic(topic)
        _instances[topic] = import_string(HANDLERS[topic])()
    return _instances[topic]
