from __future__ import annotations

import uuid

from django.db import models


class OutboxStatus(models.TextChoices):
    PENDING = "PENDING"  # waiting for its next attempt (available_at)
    IN_FLIGHT = "IN_FLIGHT"  # claimed by a worker until locked_until
    DELIVERED = "DELIVERED"
    DEAD = "DEAD"  # attempts exhausted or permanent error: a DeadLetter row exists
    DISCARDED = "DISCARDED"


# Events in these states still have to happen: a reservation's later events wait behind them.
UNFINISHED = (OutboxStatus.PENDING, OutboxStatus.IN_FLIGHT)


class OutboxEvent(models.Model):
    """Something to tell the outside world, written in the same transaction as the state
    change that causes it (C1) and delivered at least once by the workers (C2).

    Retry state lives here (attempts, available_at, errors), never in the task queue."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    topic = models.CharField(max_length=64, db_index=True)  # e.g. supplier.book
    # Set for events that must reach the outside world in order for one reservation
    # (supplier.book before supplier.cancel); notifications leave it empty.
    reservation = models.ForeignKey("reservations.Reservation", null=True, blank=True,
                                    on_delete=models.PROTECT, related_name="outbox_events")
    # "Already enqueued" is detected by this constraint, not by a read before the write.
    dedup_key = models.CharField(max_length=255, unique=True)
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=OutboxStatus.choices, default=OutboxStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    available_at = models.DateTimeField(db_index=True)
    locked_until = models.DateTimeField(null=True, blank=True)
    locked_by = models.CharField(max_length=128, blank=True)
    last_error = models.TextField(blank=True)
    # [{"attempt", "at", "error"}], one entry per failed attempt: the dead letter's history.
    errors = models.JSONField(default=list, blank=True)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [
            models.Index(fields=["status", "available_at"], name="outbox_due"),
            models.Index(fields=["status", "locked_until"], name="outbox_lease"),
        ]

    def __str__(self) -> str:
        return f"{self.topic} {self.id}"


class DeadLetterStatus(models.TextChoices):
    OPEN = "OPEN"
    REPLAYED = "REPLAYED"
    DISCARDED = "DISCARDED"


class DeadLetter(models.Model):
    """An event the workers gave up on (C6). It points at the original event, which keeps its
    id, so a replay reuses the supplier idempotency key and cannot book twice."""

    id = models.BigAutoField(primary_key=True)
    event = models.ForeignKey(OutboxEvent, on_delete=models.PROTECT, related_name="dead_letters")
    topic = models.CharField(max_length=64)
    reservation = models.ForeignKey("reservations.Reservation", null=True, blank=True,
                                    on_delete=models.PROTECT, related_name="dead_letters")
    payload = models.JSONField(default=dict)
    error_history = models.JSONField(default=list, blank=True)
    last_error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=16, choices=DeadLetterStatus.choices, default=DeadLetterStatus.OPEN,
                              db_index=True)
    resolved_by = models.CharField(max_length=160, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.topic} {self.event_id} ({self.status})"
