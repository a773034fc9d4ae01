"""What delivering one topic means, and the registry of topics (the outbox is a library: the
apps that produce events register their handlers from their own AppConfig.ready(); the outbox
imports none of them).

A handler's `perform` talks to the outside world and runs outside any transaction; `apply`
records the result inside the delivery's transaction and returns a Verdict. `apply` runs before
the lease is checked: the versioned update of the event row that records the outcome is that
check, and when the lease was taken over meanwhile the whole transaction is rolled back. So
`apply` only writes to the database and defers anything else to `transaction.on_commit` —
never a call, an e-mail or a log of something done. The handler's `lock` runs first and takes
the rows its `apply` or hooks will change, so that the delivery keeps the one lock order of
common/locking.py (the event row last); what it returns is handed to `apply` as `held` (those
rows as locked, so `apply` need not lock and read them again). The hooks carry the domain's reactions to what the
outbox does with an event: `on_dead` (attempts exhausted or a permanent error), `on_replayed`
and `on_discarded` (staff resolved its dead letter); each runs inside that transaction."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

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


class TopicHandler:
    """Base of every topic's handler; the hooks do nothing unless a topic needs them."""

    def lock(self, event: OutboxEvent) -> Any:
        """Lock, in the lock order, the rows `apply` and the hooks change (default: none), and
        return them: `apply` gets them as `held`."""
        return None

    def perform(self, event: OutboxEvent) -> Any:
        raise NotImplementedError

    def apply(self, event: OutboxEvent, result: Any, held: Any) -> Verdict:
        raise NotImplementedError

    def on_dead(self, event: OutboxEvent, error: str) -> None:
        """The event was dead-lettered (inside the transaction that did it)."""

    def on_replayed(self, event: OutboxEvent, actor: str) -> None:
        """Staff replayed its dead letter: the event is due again, same id and key."""

    def on_discarded(self, event: OutboxEvent, actor: str, reason: str) -> None:
        """Staff gave up on it for good, with a reason."""


_handlers: dict[str, TopicHandler] = {}


class UnknownTopic(LookupError):
    pass


def register_topic(topic: str, handler: TopicHandler) -> TopicHandler:
    """Called from the owning app's AppConfig.ready(). Registering a topic twice with another
    handler is a bug (two apps claiming one topic)."""
    current = _handlers.get(topic)
    if current is not None and type(current) is not type(handler):
        raise ValueError(f"outbox topic {topic!r} already has handler {type(current).__name__}")
    _handlers[topic] = handler
    return handler


def registered_topics() -> list[str]:
    return sorted(_handlers)


def handler_for(topic: str) -> TopicHandler:
    try:
        return _handlers[topic]
    except KeyError:
        raise UnknownTopic(topic) from None


def handler_lock(handler: TopicHandler | None, event: OutboxEvent) -> Any:
    return handler.lock(event) if handler is not None else None
