"""Writing to the outbox. Delivery lives in outbox.delivery."""

from __future__ import annotations

import logging
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from outbox.models import OutboxEvent

logger = logging.getLogger("reserve.outbox")


def outbox_enqueue(*, topic: str, dedup_key: str, payload: dict[str, Any], reservation: Any = None) -> OutboxEvent:
    """Add an event inside the caller's transaction (C1). A second enqueue with the same
    dedup_key returns the first event (the unique constraint decides, in a savepoint)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("outbox_enqueue must run inside the transaction of the state change")
    try:
        with transaction.atomic():
            event = OutboxEvent.objects.create(
                topic=topic, dedup_key=dedup_key, payload=payload, reservation=reservation,
                available_at=timezone.now(),
            )
    except IntegrityError:
        return OutboxEvent.objects.get(dedup_key=dedup_key)
    transaction.on_commit(lambda: _dispatch_soon(event.pk))
    return event


def _dispatch_soon(event_id: Any) -> None:
    """Low-latency path (C2): hand the event to a worker right after commit. The scheduled
    drain delivers it anyway if this enqueue is lost."""
    try:
        from outbox.tasks import enqueue_delivery
    except ImportError:
        return
    try:
        enqueue_delivery(event_id)
    except Exception:  # the broker being down must never fail the committed business write
        logger.warning("could not enqueue outbox delivery; the drain will pick it up",
                       extra={"event_id": str(event_id)}, exc_info=True)
