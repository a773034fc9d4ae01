from __future__ import annotations

import uuid

from django.db import models


class OutboxStatus(models.TextChoices):
    PENDING = "PENDING"  # waiting for its next attempt (available_at)
    IN_FLIGHT = "IN_FLIGHT"  # claimed by a worker until locked_until
    DELIVERED = "DELIVERED"
    DEAD = "DEAD"  # attempts exhausted or permanent error: a DeadLetter row exists
    DISCARDED = "DISCARDED"


class OutboxEvent(models.Model):
    """Something to tell the outside world, written in the same transaction as the state
    change that causes it (C1) and delivered at least once by the workers (C2)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    topic = models.CharField(max_length=64, db_index=True)  # e.g. supplier.book
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
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["status", "available_at"], name="outbox_due")]

    def __str__(self) -> str:
        return f"{self.topic} {self.id}"
