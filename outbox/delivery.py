"""Delivering outbox events (C2, C3): claim in a short transaction, act outside any
transaction, record the result in its own transaction with a version check.

At-least-once: a worker that dies holding a lease leaves the event IN_FLIGHT until
`locked_until`, then another worker claims it again. Exactly-once effect comes from the
handlers' stable idempotency keys."""

from __future__ import annotations

import copy
import datetime as dt
import functools
import logging
import operator
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, close_old_connections, connection, transaction
from django.db.models import F, Min, Q
from django.utils import timezone

from common.compiled import CompiledQuery, Many, versioned_update_rows
from common.db import retry_on_deadlock
from common.faults import fault_point
from common.locking import CompiledLock
from common.request_context import log_context
from outbox.handlers import PerformFailed, UnknownTopic, Verdict, VerdictKind, handler_for, handler_lock
from outbox.models import UNFINISHED, DeadLetter, OutboxEvent, OutboxStatus
from outbox.policy import RetryPolicy

logger = logging.getLogger("reserve.outbox")

MAX_ERROR_HISTORY = 50
IDLE_POLL_SECONDS = 1.0  # bounds the delay of an event whose on-commit enqueue was lost
MIN_SLEEP_SECONDS = 0.05
WAITING_STEP_BACK = dt.timedelta(seconds=1)  # re-examined this soon after its predecessor
MIN_DEFER_SECONDS = 1.0  # a deferred event is never due again at once (no busy loop)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"[:128]


# When an event is due: a pending one once its `available_at` has come, an in-flight one once
# its lease (`locked_until`) has run out.
_DUE_AFTER = {OutboxStatus.PENDING: "available_at", OutboxStatus.IN_FLIGHT: "locked_until"}


def _due(now: dt.datetime) -> Q:
    return functools.reduce(operator.or_, (Q(status=status, **{f"{column}__lte": now})
                                           for status, column in _DUE_AFTER.items()))


# The claim's reads and the apply's lock, made by every drainer for every event: compiled once
# (common.compiled).
_OURS_LOCK = CompiledLock(
    lambda pk, version: OutboxEvent.objects.filter(pk=pk, version=version, status=OutboxStatus.IN_FLIGHT),
    pk=OutboxEvent._meta.pk, version=OutboxEvent._meta.get_field("version"))
_UNFINISHED_OF = CompiledQuery(
    lambda reservations: OutboxEvent.objects.filter(reservation_id__in=reservations, status__in=UNFINISHED).values_list(
        "id", "reservation_id", "status", "created_at", "locked_until"),
    reservations=Many(OutboxEvent._meta.get_field("reservation")))


_DUE_ONE = CompiledQuery(
    lambda now, pk: OutboxEvent.objects.select_for_update(skip_locked=True).filter(_due(now), pk=pk),
    now=OutboxEvent._meta.get_field("available_at"), pk=OutboxEvent._meta.pk)


@functools.cache
def _first_due(status: str, size: int) -> CompiledQuery:
    """The first `size` due events of one status, in the order they became due, locked; rows
    another worker is claiming right now are skipped (SKIP LOCKED), not waited for.

    One query per status, each walking its own index (outbox_due, outbox_lease) from its first
    due row: one query for both (`… WHERE pending-and-due OR lease-expired ORDER BY
    available_at`) was read along `available_at` through every delivered event before the due
    ones, so each claim cost grew with the table's history (4,500 rows read, 5 ms of the
    database's CPU per claim with 4,500 events delivered; tests/outbox/test_claim_plan.py)."""
    column = _DUE_AFTER[status]
    return CompiledQuery(
        lambda now: OutboxEvent.objects.select_for_update(skip_locked=True).filter(
            status=status, **{f"{column}__lte": now}).order_by(column)[:size],
        now=OutboxEvent._meta.get_field(column))


def _due_now(size: int, now: dt.datetime, *, takeovers: bool = True) -> list[OutboxEvent]:
    """The first `size` due events, locked, in the order they became due; with `takeovers`,
    in-flight events whose lease ran out are among them."""
    statuses = _DUE_AFTER if takeovers else (OutboxStatus.PENDING,)
    found = [event for status in statuses for event in _first_due(status, size).execute(now=now)]
    found.sort(key=lambda event: getattr(event, _DUE_AFTER[event.status]))
    return found[:size]


def _first_in_line(candidates: list[OutboxEvent], now: dt.datetime) -> tuple[list[OutboxEvent], list[OutboxEvent]]:
    """Split the candidates into (may go now, must wait): a reservation's events go one at a
    time, oldest first (a supplier.cancel never overtakes the supplier.book it undoes)."""
    reservation_ids = {c.reservation_id for c in candidates if c.reservation_id}
    head: dict[Any, tuple[Any, Any]] = {}
    busy: set[Any] = set()
    rows = _UNFINISHED_OF.execute(reservations=list(reservation_ids))
    for event_id, reservation_id, status, created_at, locked_until in rows:
        if status == OutboxStatus.IN_FLIGHT and locked_until and locked_until > now:
            busy.add(reservation_id)
        key = (created_at, str(event_id))
        if reservation_id not in head or key < head[reservation_id]:
            head[reservation_id] = key
    chosen, waiting = [], []
    for c in candidates:
        if c.reservation_id is None:
            chosen.append(c)
        elif c.reservation_id not in busy and head.get(c.reservation_id, (None, str(c.id)))[1] == str(c.id):
            busy.add(c.reservation_id)  # one per reservation in this batch too
            chosen.append(c)
        else:
            waiting.append(c)
    return chosen, waiting


LEASE_EXPIRED = "lease expired"


def outbox_claim_due(*, worker: str, limit: int = 10, event_id: uuid.UUID | str | None = None) -> list[OutboxEvent]:
    """Lease up to `limit` due events to `worker`. Rows another worker is claiming right now
    are skipped (SKIP LOCKED) rather than waited for.

    Each claim is one attempt (a handler that made no call gives it back: Verdict.defer). An
    expired lease means its attempt never reported (the worker died, or its call outlived the
    lease): it stays counted, since that call may have arrived, is written into the error
    history, and once the attempts are spent the event is dead-lettered here instead of
    being called again every lease period forever."""
    claimed, spent = _claim(worker=worker, limit=limit, event_id=event_id)
    _dead_letter_spent(spent, RetryPolicy.from_settings())
    return claimed


def _dead_letter_spent(spent: list[OutboxEvent], policy: RetryPolicy) -> None:
    """After the claim's commit: the events whose last allowed attempt's lease ran out."""
    for event in spent:
        with log_context(event_id=event.id, reservation_id=event.reservation_id):
            try:
                _finish(event=event, verdict=Verdict.dead(f"{LEASE_EXPIRED} {_lease_expiries(event) + 1} times"),
                        policy=policy)
            except Exception:  # the claims must still be returned; the next claim retries this
                logger.exception("outbox dead-lettering after lease expiry failed", extra={"event_id": str(event.id)})


def _lease_expiries(event: OutboxEvent) -> int:
    """Expired leases among the attempts since the event was last (re)armed: every earlier
    attempt left exactly one history entry besides the deferrals, which are no attempts (a
    replay resets attempts, not the history)."""
    attempts = [entry for entry in event.errors if not entry.get("deferred")]
    earlier = attempts[-(event.attempts - 1):] if event.attempts > 1 else []
    return sum(1 for entry in earlier if str(entry.get("error", "")).startswith(LEASE_EXPIRED))


@retry_on_deadlock
def _claim(*, worker: str, limit: int, event_id: uuid.UUID | str | None) -> tuple[list[OutboxEvent], list[OutboxEvent]]:
    """(claimed, spent): spent events' leases expired on their last allowed attempt."""
    with transaction.atomic(durable=True):
        return _claim_in_transaction(worker=worker, limit=limit, event_id=event_id)


def _claim_in_transaction(*, worker: str, limit: int, event_id: uuid.UUID | str | None, takeovers: bool = True
                          ) -> tuple[list[OutboxEvent], list[OutboxEvent]]:
    """The claim, inside the caller's transaction (its own, or the one recording the drainer's
    previous delivery: _apply). It never waits for a lock (SKIP LOCKED), so it adds no wait to
    a transaction that holds others. `takeovers=False`: pending events only (see _apply)."""
    lease = dt.timedelta(seconds=settings.OUTBOX_LEASE_SECONDS)
    policy = RetryPolicy.from_settings()
    now = timezone.now()
    # SKIP LOCKED never waits, so claims stand outside the lock order (common/locking.py):
    # an event another worker is claiming, or a staff action holds, is left for later.
    candidates = (_due_now(limit * 3, now, takeovers=takeovers) if event_id is None
                  else _DUE_ONE.execute(now=now, pk=event_id))
    chosen, waiting = _first_in_line(candidates, now)
    # A waiting event steps back a little, behind the other due events: enough of them
    # must never fill the candidate window and starve the rest.
    if waiting:
        OutboxEvent.objects.filter(pk__in=[w.pk for w in waiting]).update(
            available_at=now + WAITING_STEP_BACK, version=F("version") + 1)
    claimed, spent = [], []
    for event in chosen:
        if len(claimed) >= limit:
            break
        fields: dict[str, Any] = {"status": OutboxStatus.IN_FLIGHT, "locked_until": now + lease,
                                  "locked_by": worker, "attempts": event.attempts + 1}
        if event.status == OutboxStatus.IN_FLIGHT:  # a takeover: the attempt under that lease is lost
            if policy.exhausted(event.attempts):
                spent.append(event)  # dead-lettered after this transaction, via the normal path
                continue
            error = f"{LEASE_EXPIRED} (held by {event.locked_by})"[:500]
            history = [*event.errors, {"attempt": event.attempts, "at": now.isoformat(), "error": error}]
            fields.update(errors=history[-MAX_ERROR_HISTORY:], last_error=error)
        if versioned_update_rows(OutboxEvent, pk=event.pk, version=event.version, values=fields):
            for name, value in fields.items():
                setattr(event, name, value)
            event.version += 1
            claimed.append(event)
    return claimed, spent


def outbox_deliver(*, event: OutboxEvent, policy: RetryPolicy | None = None) -> str:
    """Deliver one claimed event; returns the verdict applied, or "stale" when the lease was
    taken over meanwhile (the other worker's result counts, ours is dropped)."""
    return _deliver_and_claim(event=event, policy=policy or RetryPolicy.from_settings()).outcome


@dataclass(frozen=True)
class _NextClaim:
    """A drainer that wants its next event claimed by the transaction recording this one's
    outcome, unless its round has ended by then (`until`, monotonic: the call may have been long)."""

    worker: str
    until: float | None

    def wanted(self) -> bool:
        return self.until is None or time.monotonic() < self.until


@dataclass(frozen=True)
class _Delivered:
    outcome: str
    # Claimed for _NextClaim by the transaction that recorded the outcome, and when (monotonic).
    # That claim takes over no lease, so it never finds an event whose attempts are spent.
    next_claimed: list[OutboxEvent]
    claimed_at: float = 0.0


def _deliver_and_claim(*, event: OutboxEvent, policy: RetryPolicy, claim_next: _NextClaim | None = None
                       ) -> _Delivered:
    """Deliver one claimed event; with `claim_next`, the transaction that records its outcome
    also claims that drainer's next event (see outbox_drain_once)."""
    # Every log line of the delivery (ours, the supplier client's, the alerts') carries them (F1).
    with log_context(event_id=event.id, reservation_id=event.reservation_id):
        return _deliver(event=event, policy=policy, claim_next=claim_next)


def _deliver(*, event: OutboxEvent, policy: RetryPolicy, claim_next: _NextClaim | None) -> _Delivered:
    try:
        handler = handler_for(event.topic)
    except UnknownTopic:
        return _alone(_finish(event=event, verdict=Verdict.dead(f"no handler for topic {event.topic}"), policy=policy))
    fault_point(f"outbox.claimed:{event.topic}")
    try:
        result: Any = handler.perform(event)
    except Exception as exc:  # a failing handler costs an attempt; the row keeps the error
        logger.exception("outbox perform failed", extra={"event_id": str(event.id), "topic": event.topic})
        result = PerformFailed(f"{type(exc).__name__}: {exc}"[:500])
    fault_point(f"outbox.performed:{event.topic}")
    try:
        return _apply(event=event, handler=handler, result=result, policy=policy, claim_next=claim_next)
    except Exception as exc:  # recording failed: count the attempt as failed, if still ours
        logger.exception("outbox apply failed", extra={"event_id": str(event.id), "topic": event.topic})
        return _alone(_finish(event=event, verdict=Verdict.retry(f"apply failed: {type(exc).__name__}: {exc}"[:500]),
                              policy=policy))


def _alone(outcome: str) -> _Delivered:
    """An outcome recorded without claiming the next event."""
    return _Delivered(outcome, [])


def _locked_if_still_ours(event: OutboxEvent, handler: Any) -> OutboxEvent | None:
    """The event row, locked, if our lease still stands, for _finish (an outcome recorded without
    the handler's apply). The handler's rows are locked first: the event row comes last in the
    one lock order (common/locking.py), as in staff retry-now and dead-letter replay and in
    _apply's versioned update, so those never deadlock with a delivery."""
    handler_lock(handler, event)
    rows = _OURS_LOCK(pk=event.pk, version=event.version)
    return rows[0] if rows else None


class _LeaseLost(Exception):
    """The event's version moved since this worker claimed it (its lease was taken over):
    raised by _record inside the transaction recording the outcome, which it rolls back."""


@retry_on_deadlock
def _apply(*, event: OutboxEvent, handler: Any, result: Any, policy: RetryPolicy,
           claim_next: _NextClaim | None) -> _Delivered:
    # The event row is not read again under a lock: it changes only with its version, so the
    # versioned update that records the outcome (its last write, in the one lock order after
    # the handler's rows) is the check that the lease is still ours, one statement less per
    # delivery (bench/drain.py). If it is not, everything the handler applied is rolled back.
    # Each attempt (retry_on_deadlock) works on a fresh copy: _record advances its version.
    mine = copy.copy(event)
    try:
        with transaction.atomic(durable=True):
            held = handler_lock(handler, mine)
            verdict = (Verdict.retry(result.error) if isinstance(result, PerformFailed)
                       else handler.apply(mine, result, held))
            outcome = _record(mine, verdict, policy, handler)
            if claim_next is None or not claim_next.wanted():
                return _alone(outcome)
            try:
                # Pending events only: a lease that ran out (its worker died, or its call outlived
                # it) is rare, and looking for one with every event cost one query in ten
                # (bench/drain.py). The first claim of every round looks for them, so a drainer takes
                # over one per round (at most `limit` events later): k dead workers' events wait up
                # to k rounds. A reservation's later events still wait behind such an event
                # (_first_in_line reads its in-flight events too).
                claimed, _ = _claim_in_transaction(worker=claim_next.worker, limit=1, event_id=None,
                                                   takeovers=False)
            except DatabaseError:
                raise  # the transaction itself failed (its statements are gone): nothing of it stands
            except Exception:
                # A bug in claiming must not cost the outcome (an e-mail sent twice, a booking
                # dead-lettered). The lease is the claim's last write, so none was taken; a waiting
                # event it stepped back is only looked at a second later. The drain claims anew.
                logger.exception("outbox next claim failed; the outcome stands", extra={"event_id": str(event.id)})
                return _alone(outcome)
            return _Delivered(outcome, claimed, time.monotonic())
    except _LeaseLost:
        logger.warning("outbox result dropped: lease taken over", extra={"event_id": str(event.id)})
        return _alone("stale")


@retry_on_deadlock
def _finish(*, event: OutboxEvent, verdict: Verdict, policy: RetryPolicy) -> str:
    try:
        handler = handler_for(event.topic)
    except UnknownTopic:
        handler = None
    with transaction.atomic(durable=True):
        locked = _locked_if_still_ours(event, handler)
        if locked is None:
            return "stale"
        return _record(locked, verdict, policy, handler)


def _deferral(event: OutboxEvent, verdict: Verdict, now: dt.datetime) -> dict[str, Any]:
    """The fields of a deferred event: due again after the handler's delay, with the attempt
    its claim counted given back. Consecutive deferrals share one history entry (a breaker
    may stay open for a long time), so they never push real attempts out of the history."""
    retry_at = now + dt.timedelta(seconds=max(verdict.delay_seconds, MIN_DEFER_SECONDS))
    history = list(event.errors)
    times = history.pop()["deferred"] + 1 if history and history[-1].get("deferred") else 1
    history.append({"attempt": event.attempts, "at": now.isoformat(), "error": f"deferred: {verdict.error}",
                    "deferred": times, "retry_at": retry_at.isoformat()})
    return {"status": OutboxStatus.PENDING, "attempts": max(event.attempts - 1, 0), "available_at": retry_at,
            "errors": history[-MAX_ERROR_HISTORY:], "last_error": verdict.error}


def _record(event: OutboxEvent, verdict: Verdict, policy: RetryPolicy, handler: Any) -> str:
    now = timezone.now()
    fields: dict[str, Any] = {"locked_until": None, "locked_by": ""}
    kind = verdict.kind
    if kind is VerdictKind.DEFER:
        fields.update(_deferral(event, verdict, now))
    elif kind is not VerdictKind.DELIVERED:
        event.errors = [*event.errors, {"attempt": event.attempts, "at": now.isoformat(), "error": verdict.error}]
        fields.update(errors=event.errors[-MAX_ERROR_HISTORY:], last_error=verdict.error)
        if kind is VerdictKind.RETRY and policy.exhausted(event.attempts):
            kind = VerdictKind.DEAD
    if kind is VerdictKind.DELIVERED:
        fields.update(status=OutboxStatus.DELIVERED, delivered_at=now)
    elif kind is VerdictKind.RETRY:
        fields.update(status=OutboxStatus.PENDING, available_at=now + policy.delay(event.attempts))
        fields["errors"][-1]["retry_at"] = fields["available_at"].isoformat()
    elif kind is VerdictKind.DEAD:
        fields.update(status=OutboxStatus.DEAD)
    if not versioned_update_rows(OutboxEvent, pk=event.pk, version=event.version, values=fields):
        raise _LeaseLost
    for name, value in fields.items():
        setattr(event, name, value)
    event.version += 1
    if kind is VerdictKind.DEAD:
        DeadLetter.objects.create(event=event, topic=event.topic, reservation_id=event.reservation_id,
                                  payload=event.payload, error_history=event.errors, last_error=verdict.error,
                                  attempts=event.attempts)
        if handler is not None:
            handler.on_dead(event, verdict.error)
        logger.error("outbox event dead-lettered", extra={"event_id": str(event.id), "topic": event.topic,
                                                          "error": verdict.error})
    return kind.value


# --- draining ------------------------------------------------------------------------------

_OUTCOME_FIELD = {"delivered": "delivered", "retry": "retried", "dead": "dead", "defer": "deferred"}


@dataclass
class DrainStats:
    delivered: int = 0
    retried: int = 0
    dead: int = 0
    stale: int = 0
    failed: int = 0  # raised: left to its lease
    deferred: int = 0  # refused before any call (breaker open): not an attempt

    FIELDS = ("delivered", "retried", "dead", "stale", "failed", "deferred")

    def count(self, outcome: str) -> None:
        name = _OUTCOME_FIELD.get(outcome, "stale")
        setattr(self, name, getattr(self, name) + 1)

    def add(self, other: DrainStats) -> None:
        for name in self.FIELDS:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.FIELDS}

    @property
    def total(self) -> int:
        return sum(getattr(self, name) for name in self.FIELDS)


def outbox_drain_once(*, worker: str | None = None, limit: int = 10, stop_at: float | None = None) -> DrainStats:
    """Deliver up to `limit` due events (used by the drain loop, and directly by tests),
    stopping early when the monotonic `stop_at` passes.

    Each event is claimed just before it is performed, never in a batch ahead of time: a
    batch's tail would sit on leases that run out while the head waits for slow calls, be
    taken over by another worker, and then be performed a second time by this one (an email
    or Slack alert has no idempotency key to absorb that). With the claim right before the
    call, a lease only has to outlive one call, which the timeout budget guarantees
    (policy.call_budget_seconds, validated where supplier timeouts are set).

    The next event is claimed by the transaction that records the previous one's outcome
    (_apply), committed right before its call as a claim of its own would be: one transaction
    per event instead of two (bench/drain.py, issue "performance"). When that transaction does
    not claim (the last event of the round, a lease taken over, a failed recording), the next
    claim is a transaction of its own."""
    stats = DrainStats()
    worker = worker or worker_name()
    policy = RetryPolicy.from_settings()
    held: list[OutboxEvent] = []
    held_since = 0.0
    for delivered in range(limit):
        if not held:
            if stop_at is not None and time.monotonic() >= stop_at:
                break
            held = outbox_claim_due(worker=worker, limit=1)
            if not held:
                break
        elif time.monotonic() - held_since > HELD_RENEW_AFTER_SECONDS and not _renewed(held[0], worker):
            held = []  # taken over meanwhile: the other worker delivers it
            continue
        event = held.pop()
        more = _NextClaim(worker, stop_at) if delivered + 1 < limit else None
        try:
            done = _deliver_and_claim(event=event, policy=policy, claim_next=more)
        except (OperationalError, InterfaceError):
            raise  # the database is gone for every event: the drain loop reconnects
        except Exception:
            # One event's bug (an on_dead that raises, say) must not stop the others: this
            # one stays IN_FLIGHT and is taken over when its lease ends, like a crash.
            logger.exception("outbox delivery failed; the event is left to its lease",
                             extra={"event_id": str(event.id), "topic": event.topic})
            stats.failed += 1
            continue
        stats.count(done.outcome)
        held, held_since = list(done.next_claimed), done.claimed_at
    return stats


# An event claimed with the previous one's outcome is called right after that commit. Should
# more than this pass in between (the commit's on-commit callbacks waiting on a hung broker),
# its lease is renewed first: the call must start with a lease that outlives it.
HELD_RENEW_AFTER_SECONDS = 1.0


def _renewed(event: OutboxEvent, worker: str) -> bool:
    """A fresh lease for an event this worker holds, if it still does (one versioned UPDATE)."""
    locked_until = timezone.now() + dt.timedelta(seconds=settings.OUTBOX_LEASE_SECONDS)
    if not versioned_update_rows(OutboxEvent, pk=event.pk, version=event.version,
                                 values={"locked_until": locked_until, "locked_by": worker}):
        logger.warning("outbox held event taken over before its call", extra={"event_id": str(event.id)})
        return False
    event.locked_until, event.locked_by = locked_until, worker
    event.version += 1
    return True


def outbox_next_wakeup(*, now: dt.datetime) -> float:
    """Seconds until something may become due, bounded so that new events are seen soon."""
    nearest = OutboxEvent.objects.filter(status__in=UNFINISHED).aggregate(
        pending=Min("available_at", filter=Q(status=OutboxStatus.PENDING)),
        lease=Min("locked_until", filter=Q(status=OutboxStatus.IN_FLIGHT)),
    )
    times = [t for t in nearest.values() if t is not None]
    if not times:
        return IDLE_POLL_SECONDS

    return min(max((min(times) - now).total_seconds(), MIN_SLEEP_SECONDS), IDLE_POLL_SECONDS)


def outbox_drain(*, duration_seconds: float, limit: int = 10) -> DrainStats:
    """Deliver whatever is due for `duration_seconds`, sleeping until the next due time in
    between (bounded by IDLE_POLL_SECONDS). The queue's scheduler only fires about every
    30 s (facts.md), so the drain itself keeps attempts within ~1 s of their due time."""
    total = DrainStats()
    worker = worker_name()
    deadline = time.monotonic() + duration_seconds
    while time.monotonic() < deadline:
        close_old_connections()  # a long-running task must survive a server-side disconnect
        try:
            batch = outbox_drain_once(worker=worker, limit=limit, stop_at=deadline)
        except (OperationalError, InterfaceError):
            # The database went away: claims made so far come back when their lease ends.
            # Keep looping (reconnecting) rather than leave no drain until the next schedule.
            logger.warning("outbox drain lost the database; retrying", exc_info=True)
            connection.close()
            time.sleep(min(IDLE_POLL_SECONDS, max(deadline - time.monotonic(), 0)))
            continue
        except Exception:
            # Not one event's failure (those are handled per event) but a bug in claiming:
            # log it and keep draining; ending here would leave no drain until the next schedule.
            logger.exception("outbox drain round failed; retrying")
            time.sleep(min(IDLE_POLL_SECONDS, max(deadline - time.monotonic(), 0)))
            continue
        total.add(batch)
        if batch.total:
            continue
        time.sleep(min(outbox_next_wakeup(now=timezone.now()), max(deadline - time.monotonic(), 0)))
    return total
