"""Supplier call metrics (F3). Supplier calls happen in the django-q2 worker processes: the
worker role serves these from its own metrics port (README, "Metrics")."""

from __future__ import annotations

from common.metrics import SUPPLIER_CALL_SECONDS, SUPPLIER_CALLS
from suppliers.clients.base import BREAKER_OPEN, SupplierLookup, SupplierResult


def observe_supplier_call(*, supplier: str, result: SupplierResult) -> None:
    outcome = BREAKER_OPEN if not result.call_made else result.outcome.value
    SUPPLIER_CALLS.labels(supplier, result.operation, outcome).inc()
    if result.call_made:
        SUPPLIER_CALL_SECONDS.labels(supplier, result.operation).observe(result.duration_ms / 1000)


def observe_supplier_lookup(*, supplier: str, lookup: SupplierLookup) -> None:
    outcome = BREAKER_OPEN if not lookup.call_made else lookup.outcome.value
    SUPPLIER_CALLS.labels(supplier, lookup.operation, outcome).inc()
    if lookup.call_made:
        SUPPLIER_CALL_SECONDS.labels(supplier, lookup.operation).observe(lookup.duration_ms / 1000)
