"""Domain errors. Services raise these; one handler (common.errors) maps them to HTTP.

Each carries a stable `code` that clients and tests rely on (api.md)."""

from __future__ import annotations

from typing import Any

from common.error_codes import ErrorCode


class ApplicationError(Exception):
    status_code = 400
    code = ErrorCode.APPLICATION_ERROR
    title = "Request could not be processed"
    default_detail = "The request could not be processed."
    # How the OpenAPI schema describes it (common/openapi.py).
    sends_retry_after = False  # the answer carries Retry-After
    open_code = False  # `code` may be another's (a card decline: Stripe's decline code)
    example_errors: dict[str, list[str]] | None = None  # the `errors` of a 400, as an example

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        status_code: int | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.detail = detail or self.default_detail
        if code:
            self.code = code
        if status_code:
            self.status_code = status_code
        self.headers = headers or {}
        self.extra = extra or {}
        super().__init__(self.detail)


class InvalidState(ApplicationError):
    status_code = 409
    code = ErrorCode.INVALID_STATE
    title = "Invalid state"
    default_detail = "This action is not allowed in the current state."


class ProductUnavailable(InvalidState):
    code = ErrorCode.PRODUCT_UNAVAILABLE
    title = "Product unavailable"
    default_detail = "This product is not available."


class VersionConflict(ApplicationError):
    """The row changed since it was read (optimistic locking, A5)."""

    status_code = 409
    code = ErrorCode.VERSION_CONFLICT
    title = "Version conflict"
    default_detail = "The resource was modified concurrently; reload it and try again."


class SoldOut(ApplicationError):
    status_code = 409
    code = ErrorCode.SOLD_OUT
    title = "Sold out"
    default_detail = "Not enough capacity left for this product on this date."


class TooManyUnpaidHolds(ApplicationError):
    status_code = 409
    code = ErrorCode.TOO_MANY_UNPAID_HOLDS
    title = "Too many unpaid reservations"
    default_detail = "Pay or cancel one of your unpaid reservations before holding another."


class NotFound(ApplicationError):
    status_code = 404
    code = ErrorCode.NOT_FOUND
    title = "Not found"
    default_detail = "Not found."


class ServiceUnavailable(ApplicationError):
    status_code = 503
    code = ErrorCode.SERVICE_UNAVAILABLE
    title = "Service unavailable"
    default_detail = "The service is temporarily unavailable; retry later."
    sends_retry_after = True

    def __init__(self, detail: str | None = None, *, retry_after: int = 5, **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        self.headers.setdefault("Retry-After", str(retry_after))


class LoginLockedOut(ApplicationError):
    """Too many failed logins for this account (or from this address): refused, the right
    password included, until the cool-off ends (common/auth_backends.py)."""

    status_code = 429
    code = ErrorCode.LOGIN_LOCKED_OUT
    title = "Login locked out"
    default_detail = "Too many failed login attempts; try again later."
    sends_retry_after = True

    def __init__(self, detail: str | None = None, *, retry_after: int, **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        self.headers.setdefault("Retry-After", str(retry_after))
