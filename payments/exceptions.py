"""Payment domain errors with their stable codes (api.md)."""

from __future__ import annotations

from typing import Any

from common.exceptions import ApplicationError, InvalidState, ServiceUnavailable


class PaymentDeclined(ApplicationError):
    """402; `code` is Stripe's decline code (or `card_declined`)."""

    status_code = 402
    code = "card_declined"
    title = "Payment declined"
    default_detail = "The card was declined."


class PaymentProviderUnavailable(ServiceUnavailable):
    code = "payment_provider_unavailable"
    title = "Payment provider unavailable"
    default_detail = "The payment provider is temporarily unavailable; retry with the same Idempotency-Key."


class PaymentInProgress(ApplicationError):
    status_code = 409
    code = "payment_in_progress"
    title = "Payment in progress"
    default_detail = "Another payment for this reservation is in progress."


class RefundNotAllowed(InvalidState):
    code = "refund_not_allowed"
    default_detail = "This payment cannot be refunded."


class RefundExceedsCaptured(ApplicationError):
    status_code = 409
    code = "refund_exceeds_captured"
    title = "Refund too large"
    default_detail = "The refund is larger than what is left of the captured amount."


class RefundFailed(ApplicationError):
    status_code = 502
    code = "refund_failed"
    title = "Refund failed"
    default_detail = "The payment provider refused the refund."

    def __init__(self, detail: str | None = None, **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
