from __future__ import annotations

from django.conf import settings
from django.db import models


class IdempotencyKey(models.Model):
    """One client request made with an `Idempotency-Key` (B1), after Brandur Leach's design:
    the row is the lock (`locked_at`) while the first request runs and then holds the
    response every repeat of the same request gets back."""

    id = models.BigAutoField(primary_key=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    # Compared byte for byte: the column has the binary collation on MariaDB (migration 0003).
    key = models.CharField(max_length=255)
    # "POST api/v1/reservations/<uuid:reservation_id>/pay/": method and route template. Keys are
    # scoped by user and endpoint (B1), so one client key may serve create and then pay.
    endpoint = models.CharField(max_length=255, default="")
    request_method = models.CharField(max_length=8)
    request_path = models.CharField(max_length=255)
    # sha256 of method, path and canonical body: "same key, other request" is detected by it.
    request_fingerprint = models.CharField(max_length=64)
    locked_at = models.DateTimeField(null=True, blank=True)
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True)
    response_content_type = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        db_table = "idempotency_keys"
        constraints = [models.UniqueConstraint(fields=["user", "endpoint", "key"],
                                               name="idempotency_key_unique_per_user_endpoint")]

    def __str__(self) -> str:
        return f"{self.user_id}:{self.endpoint}:{self.key}"


class CircuitBreakerRecord(models.Model):
    """Shared state of one circuit breaker when there is no Redis: every web and worker
    process reads and writes the same row, so a breaker opened by one is open for all."""

    name = models.CharField(max_length=100, primary_key=True)
    state = models.CharField(max_length=16, default="closed")
    fail_counter = models.PositiveIntegerField(default=0)
    success_counter = models.PositiveIntegerField(default=0)
    opened_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "circuit_breakers"

    def __str__(self) -> str:
        return f"{self.name}: {self.state}"
