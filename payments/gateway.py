"""The one module that talks to Stripe (B3).

- `stripe.StripeClient` on `STRIPE_API_BASE` with an HTTP timeout on the HTTP client and
  bounded network retries; the SDK reuses our idempotency key on each of its retries.
- Every call passes a shared circuit breaker: only "Stripe is unwell" failures (timeouts,
  connection errors, 5xx, 429) count; while open, no call is made.
- Callers get typed results and three kinds of error: `CardDeclined` (the customer's card),
  `StripeRequestRejected` (Stripe answered 4xx to our request) and `StripeUnavailable`.
- Network calls never run inside a transaction or a row lock: enforced here.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pybreaker
import stripe
from django.conf import settings

from common.breakers import SharedCircuitBreaker, get_breaker
from common.db import _in_application_transaction

logger = logging.getLogger("reserve.stripe")

T = TypeVar("T")
BREAKER_NAME = "stripe"


@dataclass(frozen=True)
class IntentResult:
    id: str
    status: str  # Stripe's: succeeded, processing, requires_action, requires_payment_method, canceled, ...
    amount: int
    currency: str
    client_secret: str = ""
    latest_charge_id: str = ""
    failure_code: str = ""
    failure_message: str = ""
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RefundResult:
    id: str
    status: str
    amount: int


class GatewayError(Exception):
    pass


class CardDeclined(GatewayError):
    def __init__(self, *, code: str, message: str, payment_intent_id: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.payment_intent_id = payment_intent_id


class StripeRequestRejected(GatewayError):
    """Stripe understood and refused the request (4xx other than a decline): retrying the
    same request will not help."""

    def __init__(self, *, code: str, message: str, http_status: int | None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status


class StripeIdempotencyKeyReused(StripeRequestRejected):
    """Stripe already holds a result for this idempotency key from a request with other
    parameters (400 idempotency_error): proof that the earlier request reached Stripe."""


class StripeUnavailable(GatewayError):
    """Timeout, connection error, 5xx, rate limit, 409 conflict or an open breaker. Whether a timed out
    request was applied is unknown: retry it with the same idempotency key."""

    def __init__(self, reason: str, *, retry_after: int, call_made: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.call_made = call_made


def _stripe_is_unwell(exc: BaseException) -> bool:
    if isinstance(exc, (stripe.APIConnectionError, stripe.RateLimitError)):
        return True
    if isinstance(exc, stripe.StripeError):
        return exc.http_status is None or exc.http_status >= 500
    return False


def stripe_breaker() -> SharedCircuitBreaker:
    return get_breaker(
        BREAKER_NAME,
        fail_max=settings.STRIPE_BREAKER_FAIL_MAX,
        reset_timeout=settings.STRIPE_BREAKER_RESET_SECONDS,
        # A decline or a 4xx is Stripe working correctly: it must not open the breaker.
        exclude=[lambda exc: not _stripe_is_unwell(exc)],
    )


def _retry_budget(timeout: float, connect_timeout: float, wanted: int) -> int:
    """Network retries that still fit the promise "answer within 4 x STRIPE_TIMEOUT_SECONDS":
    each attempt may take connect + read timeout, the SDK sleeps at most 1 s between attempts, and
    half a timeout is left for our own database work."""
    per_attempt = connect_timeout + timeout
    budget = 3.5 * timeout
    attempts = max(1, math.floor((budget + 1.0) / (per_attempt + 1.0)))
    return max(0, min(wanted, attempts - 1))


@functools.lru_cache(maxsize=8)
def _client(api_key: str, api_base: str, timeout: float, max_retries: int) -> stripe.StripeClient:
    # Connecting is quick or never: a short connect timeout leaves the budget to the read.
    connect_timeout = min(timeout / 2, 2.0)
    http_client = stripe.RequestsClient(timeout=(connect_timeout, timeout))
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": api_base},
        http_client=http_client,
        max_network_retries=_retry_budget(timeout, connect_timeout, max_retries),
    )


def stripe_client() -> stripe.StripeClient:
    return _client(settings.STRIPE_API_KEY, settings.STRIPE_API_BASE.rstrip("/"),
                   float(settings.STRIPE_TIMEOUT_SECONDS), int(settings.STRIPE_MAX_NETWORK_RETRIES))


# Calls that went out to Stripe (past the breaker), by operation: read by tests and metrics.
calls_made: Counter[str] = Counter()
_calls_lock = threading.Lock()
latency_observer: Callable[[str, float], None] | None = None


def _call(operation: str, func: Callable[[], T]) -> T:
    if _in_application_transaction():
        raise RuntimeError(f"Stripe call {operation} inside a transaction: network calls go outside")
    breaker = stripe_breaker()

    def guarded() -> T:
        with _calls_lock:
            calls_made[operation] += 1
        started = time.perf_counter()
        try:
            return func()
        finally:
            if latency_observer is not None:
                latency_observer(operation, time.perf_counter() - started)

    try:
        return breaker.call(guarded)
    except pybreaker.CircuitBreakerError as exc:
        # Either refused without a call (open) or the call that tripped it: both are "unwell".
        call_made = isinstance(exc.__context__, stripe.StripeError)
        logger.warning("stripe breaker open", extra={"operation": operation, "call_made": call_made})
        raise StripeUnavailable("circuit breaker open", retry_after=breaker.retry_after_seconds(),
                                call_made=call_made) from exc
    except stripe.CardError as exc:
        error = exc.error
        code = (getattr(error, "decline_code", None) or exc.code or "card_declined") if error else "card_declined"
        intent = getattr(error, "payment_intent", None) if error else None
        intent_id = (intent.get("id") if isinstance(intent, dict) else getattr(intent, "id", "")) or ""
        raise CardDeclined(code=str(code), message=exc.user_message or "Your card was declined.",
                           payment_intent_id=intent_id) from exc
    except stripe.StripeError as exc:
        if exc.http_status == 409:
            # Another request with this idempotency key is still running at Stripe (or Stripe
            # saw a conflict): that request may charge, so the outcome is unknown, not a
            # refusal. The attempt stays in flight and is resumed with the same key. Stripe is
            # working, so the breaker does not count it.
            logger.warning("stripe conflict", extra={"operation": operation, "error": type(exc).__name__})
            raise StripeUnavailable(f"conflict: {type(exc).__name__}", retry_after=2, call_made=True) from exc
        if isinstance(exc, stripe.IdempotencyError):
            raise StripeIdempotencyKeyReused(code="idempotency_key_reused", message=exc.user_message or str(exc),
                                             http_status=exc.http_status) from exc
        if _stripe_is_unwell(exc):
            logger.warning("stripe unavailable", extra={"operation": operation, "error": type(exc).__name__})
            retry_after = 5 if isinstance(exc, stripe.RateLimitError) else max(1, math.ceil(
                settings.STRIPE_TIMEOUT_SECONDS))
            raise StripeUnavailable(type(exc).__name__, retry_after=retry_after, call_made=True) from exc
        logger.error("stripe rejected %s", operation, extra={"error": type(exc).__name__, "code": exc.code})
        raise StripeRequestRejected(code=exc.code or "stripe_request_rejected",
                                    message=exc.user_message or "The payment provider rejected the request.",
                                    http_status=exc.http_status) from exc


def intent_result_from(obj: Any) -> IntentResult:
    """A PaymentIntent (SDK object or webhook JSON) as our typed value."""
    if isinstance(obj, stripe.StripeObject):
        obj = obj.to_dict()
    error = obj.get("last_payment_error") or {}
    charge = obj.get("latest_charge") or ""
    if not isinstance(charge, str):
        charge = charge.get("id", "")
    return IntentResult(
        id=obj.get("id") or "", status=obj.get("status") or "", amount=int(obj.get("amount") or 0),
        currency=obj.get("currency") or "",
        client_secret=obj.get("client_secret") or "", latest_charge_id=charge,
        failure_code=(error.get("decline_code") or error.get("code") or "") if error else "",
        failure_message=(error.get("message") or "") if error else "",
        metadata=dict(obj.get("metadata") or {}),
    )


def payment_intent_create(*, amount: int, currency: str, payment_method: str, metadata: dict[str, str],
                          idempotency_key: str, confirm: bool = True) -> IntentResult:
    """Create and confirm in one call (localstripe answers 500 to confirm with a method).
    `confirm=False` only probes a key whose first (confirming) create may have been lost."""
    client = stripe_client()
    intent = _call("payment_intent.create", lambda: client.v1.payment_intents.create(
        params={"amount": amount, "currency": currency, "payment_method": payment_method,
                "confirm": confirm, "metadata": metadata},
        options={"idempotency_key": idempotency_key},
    ))
    return intent_result_from(intent)


def payment_intent_retrieve(*, intent_id: str) -> IntentResult:
    client = stripe_client()
    return intent_result_from(_call("payment_intent.retrieve", lambda: client.v1.payment_intents.retrieve(intent_id)))


def payment_intent_cancel(*, intent_id: str, idempotency_key: str) -> IntentResult:
    client = stripe_client()
    return intent_result_from(_call("payment_intent.cancel", lambda: client.v1.payment_intents.cancel(
        intent_id, options={"idempotency_key": idempotency_key})))


def refund_create(*, payment_intent_id: str, amount: int, metadata: dict[str, str],
                  idempotency_key: str) -> RefundResult:
    client = stripe_client()
    refund = _call("refund.create", lambda: client.v1.refunds.create(
        params={"payment_intent": payment_intent_id, "amount": amount, "metadata": metadata},
        options={"idempotency_key": idempotency_key},
    ))
    return RefundResult(id=refund.id, status=getattr(refund, "status", None) or "",
                        amount=int(getattr(refund, "amount", None) or 0))
