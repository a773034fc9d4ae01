from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models


class Supplier(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=64, unique=True)
    base_url = models.URLField(max_length=500)
    # A secret: write-only in the API, never logged, redacted in request audits.
    api_key = models.CharField(max_length=500, blank=True)
    connect_timeout_seconds = models.FloatField(default=3.0, validators=[MinValueValidator(0.1)])
    timeout_seconds = models.FloatField(
        default=10.0, validators=[MinValueValidator(0.1)], help_text="Read timeout for each supplier call."
    )
    active = models.BooleanField(default=True)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    supplier = models.ForeignKey(Supplier, on_delete=models.PROTECT, related_name="products")
    code = models.CharField(max_length=64)
    name = models.CharField(max_length=200)
    unit_amount = models.PositiveIntegerField(help_text="Price per unit in minor units (12500 = 125.00).")
    currency = models.CharField(
        max_length=3, validators=[RegexValidator(r"^[a-z]{3}$", "Lower-case ISO-4217 code, e.g. eur.")]
    )
    daily_capacity = models.PositiveIntegerField(null=True, blank=True, help_text="Empty means unlimited.")
    cancellation_cutoff_hours = models.PositiveIntegerField(
        null=True, blank=True,
        help_text="Customers may cancel until this many hours before the service date (00:00 UTC); empty: any time.")
    booking_horizon_days = models.PositiveIntegerField(
        default=365, validators=[MinValueValidator(1), MaxValueValidator(3650)],
        help_text="Customers may book dates up to this many days ahead.")
    active = models.BooleanField(default=True)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["supplier", "code"], name="product_code_unique_per_supplier")]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class SupplierRequest(models.Model):
    """One row per supplier call attempt (C4): the audit staff read to decide by hand."""

    id = models.BigAutoField(primary_key=True)
    reservation = models.ForeignKey(
        "reservations.Reservation", on_delete=models.CASCADE, related_name="supplier_requests"
    )
    supplier = models.ForeignKey(Supplier, on_delete=models.PROTECT, related_name="requests")
    outbox_event_id = models.UUIDField(null=True, blank=True, db_index=True)
    operation = models.CharField(max_length=32)  # book, cancel
    attempt = models.PositiveIntegerField()
    idempotency_key = models.CharField(max_length=255)
    request_payload = models.JSONField(default=dict)
    response_payload = models.JSONField(null=True, blank=True)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=32)  # confirmed, on_request, rejected, retryable, permanent
    error_code = models.CharField(max_length=64, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        db_table = "reservation_supplier_requests"
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.operation} #{self.attempt} {self.outcome}"


class CatalogChange(models.Model):
    """Who changed which supplier or product, and from what to what (issue "security"). One
    row per create or update, written in the same transaction as the change. The API key is
    never stored here: only that it was set or changed."""

    class Action(models.TextChoices):
        CREATE = "create"
        UPDATE = "update"

    id = models.BigAutoField(primary_key=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.CharField(max_length=200, help_text="staff:<username>, or the command that made the change.")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="+")
    model = models.CharField(max_length=32)  # supplier, product
    object_id = models.UUIDField(db_index=True)
    object_repr = models.CharField(max_length=200)
    action = models.CharField(max_length=16, choices=Action.choices)
    before = models.JSONField(default=dict, help_text="The changed fields' previous values.")
    after = models.JSONField(default=dict, help_text="The changed fields' new values.")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.action} {self.model} {self.object_repr} by {self.actor}"
