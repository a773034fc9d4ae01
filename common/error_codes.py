"""Every stable error `code` an API client can see (api.md), in one place: the exceptions, the
error handler and the OpenAPI schema all use these. A card decline's code is Stripe's own
(`card_declined` or a decline code such as `insufficient_funds`), passed through as is."""

from __future__ import annotations

import enum


class ErrorCode(enum.StrEnum):
    # Requests and authentication (mapped from DRF's exceptions and HTTP statuses)
    BAD_REQUEST = "bad_request"
    MALFORMED_REQUEST = "malformed_request"
    VALIDATION_ERROR = "validation_error"
    NOT_AUTHENTICATED = "not_authenticated"
    AUTHENTICATION_FAILED = "authentication_failed"
    PERMISSION_DENIED = "permission_denied"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    NOT_ACCEPTABLE = "not_acceptable"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    REQUEST_TOO_LARGE = "request_too_large"
    THROTTLED = "throttled"
    LOGIN_LOCKED_OUT = "login_locked_out"
    # Platform
    INTERNAL_ERROR = "internal_error"
    SERVICE_UNAVAILABLE = "service_unavailable"
    DATABASE_UNAVAILABLE = "database_unavailable"
    APPLICATION_ERROR = "application_error"
    # Idempotency keys (B1)
    IDEMPOTENCY_KEY_MISSING = "idempotency_key_missing"
    IDEMPOTENCY_KEY_INVALID = "idempotency_key_invalid"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    IDEMPOTENCY_KEY_IN_USE = "idempotency_key_in_use"
    # Reservations
    INVALID_STATE = "invalid_state"
    VERSION_CONFLICT = "version_conflict"
    SOLD_OUT = "sold_out"
    PRODUCT_UNAVAILABLE = "product_unavailable"
    CANCELLATION_CLOSED = "cancellation_closed"
    TOO_MANY_UNPAID_HOLDS = "too_many_unpaid_holds"
    # Payments and refunds
    CARD_DECLINED = "card_declined"
    PAYMENT_IN_PROGRESS = "payment_in_progress"
    PAYMENT_PROVIDER_UNAVAILABLE = "payment_provider_unavailable"
    REFUND_NOT_ALLOWED = "refund_not_allowed"
    REFUND_EXCEEDS_CAPTURED = "refund_exceeds_captured"
    INVALID_WEBHOOK = "invalid_webhook"
    INVALID_SIGNATURE = "invalid_signature"
    # Staff actions
    REASON_REQUIRED = "reason_required"
    SUPPLIER_REFERENCE_REQUIRED = "supplier_reference_required"
    SUPPLIER_REFERENCE_TOO_LONG = "supplier_reference_too_long"
