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
    # The customer's return_url (B7): with it, redirect-based methods are offered. Part of the
    # attempt: a retry sends Stripe exactly the same request.
    return_url = models.URLField(max_length=2000, blank=True)
    client_secret = models.CharField(max_length=255, blank=True)
    # What the customer must do next while REQUIRES_ACTION (Stripe's next_action, e.g. a redirect).
    next_action = models.JSONField(null=True, blank=True)
    # Set when the Stripe call ended without an answer although it may have reached Stripe
    # (timeout, 5xx, 409): the outcome is looked up, never re-initiated by anyone but the
    # customer's own retry (B8). Cleared once Stripe's answer is applied.
    outcome_unknown_at = models.DateTimeField(null=True, blank=True)
    refunded_amount = models.PositiveBigIntegerField(default=0)
    failure_code = models.CharField(max_length=64, blank=True)
    failure_message = models.CharField(max_length=500, blank=True)
    # The reconciler's bookkeeping (fair order, backoff, per-row errors): see services/reconcile.py.
    next_check_at = models.DateTimeField(null=True, blank=True, db_index=True)
    check_failures = models.PositiveIntegerField(default=0)
    last_check_error = models.CharField(max_length=500, blank=True)
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
    # Decided and written; not sent yet, or Stripe has not finished it (its status "pending").
    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"  # Stripe refused it or it failed at the bank: staff act (B9)
    CANCELED = "CANCELED"  # Stripe canceled it: staff act


class RefundMethod(models.TextChoices):
    STRIPE = "stripe"
    EXTERNAL = "external"  # made outside Stripe (bank transfer, cash) and recorded by staff


class RefundResolution(models.TextChoices):
    RETRIED = "retried"  # a new refund (new Stripe key) replaces this one
    RECORDED_EXTERNAL = "recorded_external"  # the money went back outside Stripe


class Refund(models.Model):
    """One refund (B6, B9), after pretix's OrderRefund: written when it is decided (with the
    outbox event that sends it, in one transaction), then driven by what Stripe reports: the
    API answer, the refund webhooks and the reconciler. The unique idempotency key makes a
    repeated decision return the first row; Stripe receives a key derived from the row."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    idempotency_key = models.CharField(max_length=255, unique=True)
    amount = models.PositiveBigIntegerField()
    reason = models.CharField(max_length=500, blank=True)
    actor = models.CharField(max_length=160)
    method = models.CharField(max_length=16, choices=RefundMethod.choices, default=RefundMethod.STRIPE)
    status = models.CharField(max_length=16, choices=RefundStatus.choices, default=RefundStatus.PENDING,
                              db_index=True)
    stripe_refund_id = models.CharField(max_length=255, blank=True, db_index=True)
    # Bumped when Stripe answered a send with a 5xx and holds no refund of ours: Stripe saved
    # that 5xx for the key and would replay it to every retry, so the next send needs a new key.
    stripe_key_generation = models.PositiveSmallIntegerField(default=0)
    external_reference = models.CharField(max_length=255, blank=True)
    failure_message = models.CharField(max_length=500, blank=True)
    # A FAILED or CANCELED refund needs staff until they resolve it (retry, or record external).
    retry_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="retries")
    resolution = models.CharField(max_length=24, choices=RefundResolution.choices, blank=True)
    resolved_by = models.CharField(max_length=160, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    next_check_at = models.DateTimeField(null=True, blank=True, db_index=True)
    check_failures = models.PositiveIntegerField(default=0)
    last_check_error = models.CharField(max_length=500, blank=True)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"refund {self.amount} {self.status}"

    @property
    def stripe_idempotency_key(self) -> str:
        return f"refund:{self.id}" + (f":{self.stripe_key_generation}" if self.stripe_key_generation else "")

    @property
    def needs_attention(self) -> bool:
        return self.status in (RefundStatus.FAILED, RefundStatus.CANCELED) and not self.resolution


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


class ReconcileRun(models.Model):
    """One run of the payments reconciler: readiness and /metrics show the last successful one."""

    id = models.BigAutoField(primary_key=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True, db_index=True)
    ok = models.BooleanField(default=False)  # ran to the end (Stripe answered)
    checked = models.PositiveIntegerField(default=0)
    changed = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    stopped_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"reconcile {self.started_at:%Y-%m-%d %H:%M:%S} {'ok' if self.ok else 'stopped'}"
