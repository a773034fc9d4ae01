"""Supplier adapters. Every supplier speaks the reference HTTP API unless an adapter is
registered for its slug."""

from __future__ import annotations

from collections.abc import Callable

from suppliers.clients.base import (
    BookingRequest,
    LookupOutcome,
    SupplierAdapter,
    SupplierBooking,
    SupplierLookup,
    SupplierOutcome,
    SupplierResult,
)
from suppliers.clients.http import HttpSupplierAdapter
from suppliers.models import Supplier

ADAPTERS: dict[str, Callable[[Supplier], SupplierAdapter]] = {}


def supplier_adapter_for(supplier: Supplier) -> SupplierAdapter:
    factory = ADAPTERS.get(supplier.slug, HttpSupplierAdapter)
    return factory(supplier)


__all__ = ["ADAPTERS", "BookingRequest", "LookupOutcome", "SupplierAdapter", "SupplierBooking", "SupplierLookup",
           "SupplierOutcome", "SupplierResult", "supplier_adapter_for"]
