from __future__ import annotations

import uuid

from django.db import models


class PaymentStatus(models.TextChoices):
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    REQUIRES_ACTION = "REQUIRES_ACTION"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    REFUNDED = "REFUNDED"
    PARTIALLY_REFUNDED = "PARTIALLY_REFUNDED"
    DISPUTED = "DISPUTED"


class Payment(models.Model):
    """One attempt to charge a reservation through one Stripe PaymentIntent."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    reservation = models.ForeignKey("reservations.Reservation", on_delete=models.PROTECT, related_name="payments")
    amount = models.PositiveBigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=24, choices=PaymentStatus.choices, default=PaymentStatus.PENDING,
                              db_index=True)
    stripe_payment_intent_id = models.CharField(max_length=255, null=True, blank=True, unique=True)
    stripe_charge_id = models.CharField(max_length=255, blank=True, db_index=True)
    payment_method_id = models.CharField(max_length=255, blank=True)
    # The customer's Idempotency-Key of the pay request that started this attempt: a retry
    # with the same key continues this attempt (and sends Stripe the same key).
    attempt_key = models.CharField(max_length=255, blank=True)
    # The "payment in progress" guard: the reservation id while this attempt may still
    # charge, NULL once it cannot. The unique constraint makes a second concurrent attempt
    # for one reservation impossible, whatever the application code does.
    in_flight_for = models.UUIDField(null=True, blank=True, unique=True)
    client_secret = models.CharField(max_length=255, blank=True)
    refunded_amount = models.PositiveBigIntegerField(default=0)
    failure_code = models.CharField(max_length=64, blank=True)
    failure_message = models.CharField(max_length=500, blank=True)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.id} {self.status}"

    @property
    def stripe_idempotency_key(self) -> str:
        """Derived from the attempt, so every retry of it sends Stripe the same key (B3)."""
        return f"pay:{self.id}"


class RefundStatus(models.TextChoices):
    PENDING = "PENDING"  # row written, Stripe not (yet) confirmed: a retry resumes it
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


class Refund(models.Model):
    """One refund request (B6). The unique idempotency key makes a repeated refund request
    return the first one; Stripe receives a key derived from this row."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    idempotency_key = models.CharField(max_length=255, unique=True)
    amount = models.PositiveBigIntegerField()
    reason = models.CharField(max_length=500, blank=True)
    actor = models.CharField(max_length=160)
    status = models.CharField(max_length=16, choices=RefundStatus.choices, default=RefundStatus.PENDING)
    stripe_refund_id = models.CharField(max_length=255, blank=True)
    failure_message = models.CharField(max_length=500, blank=True)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"refund {self.amount} {self.status}"

    @property
    def stripe_idempotency_key(self) -> str:
        return f"refund:{self.id}"


class StripeEventStatus(models.TextChoices):
    PROCESSED = "PROCESSED"
    IGNORED = "IGNORED"  # unknown type, or about a PaymentIntent that is not ours
    FAILED = "FAILED"  # applying raised; Stripe retries, staff may re-process


class StripeEvent(models.Model):
    """The webhook inbox (B4): every event once, keyed by Stripe's id."""

    id = models.BigAutoField(primary_key=True)
    stripe_event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100, db_index=True)
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=StripeEventStatus.choices, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.type} {self.stripe_event_id}"
