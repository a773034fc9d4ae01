"""Payment domain errors with their stable codes (api.md)."""

from __future__ import annotations

from typing import Any

from common.error_codes import ErrorCode
from common.errors import VALIDATION_DETAIL
from common.exceptions import ApplicationError, InvalidState, ServiceUnavailable


class PaymentDeclined(ApplicationError):
    """402; `code` is Stripe's decline code (or `card_declined`)."""

    status_code = 402
    code = ErrorCode.CARD_DECLINED
    title = "Payment declined"
    default_detail = "The card was declined."
    open_code = True


class PaymentMethodRejected(ApplicationError):
    """400: Stripe cannot use the payment method the customer sent (unknown, or unusable)."""

    status_code = 400
    code = ErrorCode.VALIDATION_ERROR
    title = "Invalid payment method"
    default_detail = "This payment method cannot be used."
    example_errors = {"payment_method": ["No such PaymentMethod: 'pm_unknown'"]}

    def __init__(self, message: str | None = None) -> None:
        super().__init__(VALIDATION_DETAIL,
                         extra={"errors": {"payment_method": [message or self.default_detail]}})


class CancellationClosed(ApplicationError):
    """A6: past the product's cancellation cutoff, only staff can cancel."""

    status_code = 409
    code = ErrorCode.CANCELLATION_CLOSED
    title = "Cancellation closed"
    default_detail = "This reservation can no longer be cancelled online; please contact us."


class PaymentProviderUnavailable(ServiceUnavailable):
    code = ErrorCode.PAYMENT_PROVIDER_UNAVAILABLE
    title = "Payment provider unavailable"
    default_detail = "The payment provider is temporarily unavailable; retry with the same Idempotency-Key."


class PaymentInProgress(ApplicationError):
    status_code = 409
    code = ErrorCode.PAYMENT_IN_PROGRESS
    title = "Payment in progress"
    default_detail = "Another payment for this reservation is in progress; retry after Retry-After seconds."
    sends_retry_after = True

    def __init__(self, detail: str | None = None, *, retry_after: int = 2, **kwargs: Any) -> None:
        headers = kwargs.pop("headers", None) or {"Retry-After": str(retry_after)}
        super().__init__(detail, headers=headers, **kwargs)


class RefundNotAllowed(InvalidState):
    code = ErrorCode.REFUND_NOT_ALLOWED
    default_detail = "This payment cannot be refunded."


class RefundExceedsCaptured(ApplicationError):
    status_code = 409
    code = ErrorCode.REFUND_EXCEEDS_CAPTURED
    title = "Refund too large"
    default_detail = "The refund is larger than what is left of the captured amount."
