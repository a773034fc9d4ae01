"""Writing to the outbox, staff alerts, and the dead-letter actions (C1, C5, C6).
Delivery lives in outbox.delivery."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import sentry_sdk
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from common.compiled import insert_row
from common.db import retry_on_deadlock, version_check, versioned_update
from common.error_codes import ErrorCode
from common.exceptions import ApplicationError, InvalidState
from common.locking import lock_rows
from outbox.handlers import TopicHandler, UnknownTopic, handler_for, handler_lock
from outbox.models import DeadLetter, DeadLetterStatus, OutboxEvent, OutboxStatus
from outbox.tasks import enqueue_delivery

logger = logging.getLogger("reserve.outbox")

# The outbox's own topics: staff alerts (handlers in outbox.alerts, registered in OutboxConfig).
ALERT_EMAIL_TOPIC = "alert.email"
ALERT_SLACK_TOPIC = "alert.slack"


def _require_transaction(name: str) -> None:
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError(f"{name} must run inside the transaction of the state change")


def outbox_enqueue(*, topic: str, dedup_key: str, payload: dict[str, Any], reservation: Any = None,
                   dispatch: bool = True) -> OutboxEvent:
    """Add an event inside the caller's transaction (C1). A second enqueue with the same
    dedup_key returns the first event (the unique constraint decides, in a savepoint).
    `reservation` orders the event after that reservation's earlier events. `dispatch=False`
    when the caller delivers it itself right after commit (the drain is the safety net)."""
    _require_transaction("outbox_enqueue")
    try:
        with transaction.atomic():
            event = insert_row(OutboxEvent(
                topic=topic, dedup_key=dedup_key, payload=payload, reservation=reservation,
                available_at=timezone.now(),
            ))
    except IntegrityError:
        return OutboxEvent.objects.get(dedup_key=dedup_key)
    if dispatch:
        transaction.on_commit(lambda: _dispatch_soon(event.pk))
    return event


def _dispatch_soon(event_id: Any) -> None:
    """Low-latency path (C2): hand the event to a worker right after commit. The scheduled
    drain delivers it anyway if this enqueue is lost."""
    try:
        enqueue_delivery(event_id)
    except Exception:  # the broker being down must never fail the committed business write
        logger.warning("could not enqueue outbox delivery; the drain will pick it up",
                       extra={"event_id": str(event_id)}, exc_info=True)


def outbox_event_rearm(*, event: OutboxEvent) -> OutboxEvent:
    """Make an event due now with a fresh attempt budget; same id, so the same supplier
    idempotency key (a replay cannot book twice). Inside the caller's transaction."""
    _require_transaction("outbox_event_rearm")
    [event] = lock_rows(OutboxEvent.objects.filter(pk=event.pk))
    if event.status == OutboxStatus.IN_FLIGHT:
        return event  # a worker holds it now; its answer is what counts
    fields = {"status": OutboxStatus.PENDING, "attempts": 0, "available_at": timezone.now(),
              "locked_until": None, "locked_by": "", "delivered_at": None}
    OutboxEvent.objects.filter(pk=event.pk).update(version=F("version") + 1, **fields)
    event.refresh_from_db()
    transaction.on_commit(lambda: _dispatch_soon(event.pk))
    return event


def staff_alert_enqueue(*, reservation: Any, subject: str, body: str, dedup_key: str | None = None) -> None:
    """Tell staff (email to ALERT_EMAILS, Slack, Sentry) after the caller's transaction
    commits. Alerts are outbox events of their own: retried with timeouts, and their failure
    never touches the booking. Callers: the supplier flow, and the payments webhook for a
    refund or dispute after supplier confirmation."""
    _require_transaction("staff_alert_enqueue")
    key = dedup_key or uuid.uuid4().hex
    context = {"subject": subject[:200], "body": body,
               "reservation_id": str(reservation.id) if reservation else None,
               "reservation_code": reservation.code if reservation else None}
    if settings.ALERT_EMAILS:
        outbox_enqueue(topic=ALERT_EMAIL_TOPIC, dedup_key=f"{ALERT_EMAIL_TOPIC}:{key}", payload=context)
    if settings.SLACK_WEBHOOK_URL:
        outbox_enqueue(topic=ALERT_SLACK_TOPIC, dedup_key=f"{ALERT_SLACK_TOPIC}:{key}", payload=context)
    message = f"{subject} ({context['reservation_code'] or '-'})"
    transaction.on_commit(lambda: sentry_sdk.capture_message(message, level="error"))


# --- dead letters (C6) ----------------------------------------------------------------------

def dead_letter_mark_replayed(*, dead_letter: DeadLetter, actor: str) -> bool:
    """Inside a transaction, with the dead letter locked: re-arm its event and mark it
    REPLAYED. False when it was not OPEN any more (a second replay does nothing)."""
    _require_transaction("dead_letter_mark_replayed")
    if dead_letter.status != DeadLetterStatus.OPEN:
        return False
    [event] = lock_rows(OutboxEvent.objects.filter(pk=dead_letter.event_id))
    if event.status == OutboxStatus.DEAD:
        outbox_event_rearm(event=event)
    versioned_update(dead_letter, fields={"status": DeadLetterStatus.REPLAYED, "resolved_by": actor[:160],
                                          "resolved_at": timezone.now()})
    return True


def _lock_dead_letter(dead_letter: DeadLetter, *, expected_version: int | None
                      ) -> tuple[DeadLetter, OutboxEvent, TopicHandler | None]:
    """Lock in the one order (common/locking.py): the domain rows the event's handler changes
    (its `lock` hook), the dead letter, then (when re-armed) the event. Refuses a stale page."""
    event = OutboxEvent.objects.get(pk=dead_letter.event_id)
    try:
        handler: TopicHandler | None = handler_for(event.topic)
    except UnknownTopic:
        handler = None
    handler_lock(handler, event)
    [locked] = lock_rows(DeadLetter.objects.filter(pk=dead_letter.pk))
    version_check(locked, expected_version)
    return locked, event, handler


@retry_on_deadlock
def dead_letter_replay(*, dead_letter: DeadLetter, actor: str, expected_version: int | None = None) -> DeadLetter:
    """Deliver a dead event again (same event id, attempts reset). Idempotent: replaying
    twice delivers once. The event's handler reacts (`on_replayed`: e.g. the timeline)."""
    with transaction.atomic(durable=True):
        locked, event, handler = _lock_dead_letter(dead_letter, expected_version=expected_version)
        if not dead_letter_mark_replayed(dead_letter=locked, actor=actor):
            return locked
        if handler is not None:
            handler.on_replayed(event, actor)
    logger.info("dead letter replayed", extra={"dead_letter_id": locked.pk, "event_id": str(locked.event_id)})
    return locked


@retry_on_deadlock
def dead_letter_discard(*, dead_letter: DeadLetter, actor: str, reason: str,
                        expected_version: int | None = None) -> DeadLetter:
    """Give up on a dead event for good, with a reason (`on_discarded`: e.g. the timeline)."""
    if not reason.strip():
        raise ApplicationError("A reason is required to discard a dead letter.", code=ErrorCode.REASON_REQUIRED)
    with transaction.atomic(durable=True):
        locked, event, handler = _lock_dead_letter(dead_letter, expected_version=expected_version)
        if locked.status == DeadLetterStatus.DISCARDED:
            return locked
        if locked.status != DeadLetterStatus.OPEN:
            raise InvalidState(f"A {locked.status} dead letter cannot be discarded.",
                               extra={"current_status": locked.status})
        OutboxEvent.objects.filter(pk=locked.event_id, status=OutboxStatus.DEAD).update(
            status=OutboxStatus.DISCARDED, version=F("version") + 1)
        versioned_update(locked, fields={"status": DeadLetterStatus.DISCARDED, "resolved_by": actor[:160],
                                         "reason": reason[:500], "resolved_at": timezone.now()})
        if handler is not None:
            handler.on_discarded(event, actor, reason)
    return locked
