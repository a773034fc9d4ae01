"""The interface between the booking flow and one supplier's API (C4).

Real suppliers differ; each is reached through an adapter that turns its answers into one
`SupplierResult`, so the outbox never reads HTTP status codes itself."""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass, field
from typing import Any

# error_code of an attempt the open circuit breaker refused: no request left this process.
BREAKER_OPEN = "breaker_open"
# error_code of an attempt refused because base_url points where suppliers may not be
# (plain http, an internal address: suppliers.clients.endpoint). Nothing was sent either.
ENDPOINT_REFUSED = "endpoint_refused"


class SupplierOutcome(enum.StrEnum):
    CONFIRMED = "confirmed"  # booked
    ON_REQUEST = "on_request"  # the supplier decides later, by hand
    REJECTED = "rejected"  # no availability: compensate (refund, cancel)
    CANCELLED = "cancelled"  # a DELETE succeeded, or the booking was already gone
    RETRYABLE = "retryable"  # 5xx, 429, timeout, connection error, breaker open
    PERMANENT = "permanent"  # any other 4xx: retrying cannot help


@dataclass(frozen=True)
class BookingRequest:
    reference: str  # our reservation code
    product_code: str
    date: str  # ISO date
    quantity: int
    guest_name: str

    def as_payload(self) -> dict[str, Any]:
        return {"reference": self.reference, "product_code": self.product_code, "date": self.date,
                "quantity": self.quantity, "guest_name": self.guest_name}


@dataclass(frozen=True)
class SupplierResult:
    """One attempt, classified. `request` is already redacted: it is stored as the audit."""

    outcome: SupplierOutcome
    operation: str  # book, cancel
    idempotency_key: str
    request: dict[str, Any]
    response: Any = None
    http_status: int | None = None
    error_code: str = ""
    duration_ms: int = 0
    booking_id: str = ""
    confirmation_code: str = ""
    call_made: bool = True  # False when the breaker was open: nothing reached the supplier
    retry_after_seconds: float = 0  # with call_made False: when the breaker lets calls through again
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def reference(self) -> str:
        """What we show as `supplier_reference`: the confirmation code, else the booking id."""
        return self.confirmation_code or self.booking_id

    @property
    def error(self) -> str:
        if self.outcome in (SupplierOutcome.RETRYABLE, SupplierOutcome.PERMANENT, SupplierOutcome.REJECTED):
            return f"{self.operation}: {self.error_code or 'error'} (HTTP {self.http_status or '-'})"
        return ""


class LookupOutcome(enum.StrEnum):
    FOUND = "found"
    NOT_FOUND = "not_found"  # the supplier does not know the booking (404), or none carries the reference
    UNAVAILABLE = "unavailable"  # 5xx, 429, timeout, connection error, breaker open: ask again later
    FAILED = "failed"  # any other answer: a person must look


# Supplier booking statuses (api.md); a booking in one of LIVE_BOOKING_STATUSES holds a place.
LIVE_BOOKING_STATUSES = frozenset({"CONFIRMED", "ON_REQUEST"})


@dataclass(frozen=True)
class SupplierBooking:
    """One booking as the supplier's ledger shows it (api.md `GET /bookings/{id}`)."""

    booking_id: str
    reference: str  # our reservation code
    status: str  # CONFIRMED, ON_REQUEST, CANCELLED
    confirmation_code: str = ""

    @property
    def live(self) -> bool:
        return self.status in LIVE_BOOKING_STATUSES


@dataclass(frozen=True)
class SupplierLookup:
    """What one read of the supplier's ledger returned (reconciliation, H1)."""

    outcome: LookupOutcome
    operation: str  # booking_get, bookings_for_reference
    bookings: tuple[SupplierBooking, ...] = ()
    http_status: int | None = None
    error_code: str = ""
    duration_ms: int = 0
    call_made: bool = True  # False when the breaker was open


class SupplierAdapter(abc.ABC):
    """What the booking flow and reconciliation need from a supplier. Implementations never
    raise for a supplier-side failure: they classify it."""

    @abc.abstractmethod
    def book(self, *, booking: BookingRequest, idempotency_key: str) -> SupplierResult: ...

    @abc.abstractmethod
    def cancel(self, *, booking_id: str, idempotency_key: str) -> SupplierResult: ...

    @abc.abstractmethod
    def booking_get(self, *, booking_id: str) -> SupplierLookup:
        """One booking by the supplier's id (FOUND with one booking, or NOT_FOUND)."""

    @abc.abstractmethod
    def bookings_for_reference(self, *, reference: str) -> SupplierLookup:
        """Every booking the supplier holds under our reference, cancelled ones included."""
