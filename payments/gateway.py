"""The one module that talks to Stripe (B3, B7). Nothing else imports the Stripe SDK.

- `stripe.StripeClient` on `STRIPE_API_BASE`, pinned to `STRIPE_API_VERSION`, with an HTTP
  timeout and bounded network retries; the SDK reuses our idempotency key on each retry.
- Every call passes a shared circuit breaker. What counts against it: Stripe being unwell
  (timeouts, connection errors, 5xx, 429) and Stripe refusing *us* (a bad or rotated key, a
  request our account cannot make); a card decline or an unusable payment method does not.
- Callers get typed results and a short list of errors:
  `CardDeclined` (402: the customer's card), `PaymentMethodUnusable` (the customer sent a
  payment method Stripe cannot use), `StripeMisconfigured` (401/403, or a request Stripe
  refuses for our configuration: operators must act), `StripeRequestRejected` (any other
  definitive 4xx: nothing was done), and `StripeUnavailable` with `reached`: whether the
  request may have been executed by Stripe (False only when it provably never left: the
  breaker was open, or every attempt failed to connect).
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
import requests
import stripe
import urllib3
from django.conf import settings

from common.breakers import SharedCircuitBreaker, get_breaker
from common.db import in_application_transaction

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
    next_action: dict[str, Any] | None = None


@dataclass(frozen=True)
class RefundResult:
    id: str
    # Stripe's: pending, requires_action, succeeded, failed, canceled
    status: str
    amount: int
    payment_intent_id: str = ""
    failure_reason: str = ""
    metadata: dict[str, str] = field(default_factory=dict)


class GatewayError(Exception):
    pass


class CardDeclined(GatewayError):
    def __init__(self, *, code: str, message: str, payment_intent_id: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.payment_intent_id = payment_intent_id


class StripeRequestRejected(GatewayError):
    """Stripe understood and refused the request (a definitive 4xx other than a decline):
    nothing was done, and sending the same request again will not help."""

    def __init__(self, *, code: str, message: str, http_status: int | None, param: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status
        self.param = param


class PaymentMethodUnusable(StripeRequestRejected):
    """The customer's payment method does not exist or cannot be used (400 on `payment_method`)."""


class StripeMisconfigured(StripeRequestRejected):
    """Stripe refuses our key (401), our permissions (403) or a request our account cannot make:
    no customer can pay until an operator fixes it. Counts against the breaker."""


class StripeIdempotencyKeyReused(StripeRequestRejected):
    """Stripe already holds a result for this idempotency key from a request with other
    parameters (400 idempotency_error): proof that the earlier request reached Stripe."""


class StripeUnavailable(GatewayError):
    """Timeout, connection error, 5xx, rate limit, 409 (the key is still executing) or an open
    breaker. `reached` is False only when no attempt can have been executed by Stripe."""

    def __init__(self, reason: str, *, retry_after: int, reached: bool, http_status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.reached = reached
        # Set when Stripe answered (5xx, 429): Stripe saves a 5xx for the request's idempotency
        # key and replays it to every retry with that key.
        self.http_status = http_status


# Stripe refuses a request without executing it: no charge, no saved idempotent result.
_NOT_EXECUTED_STATUSES = frozenset({400, 401, 403, 404, 429})
# An invalid request about these parameters is the customer's input, not our configuration.
_PAYMENT_METHOD_PARAMS = frozenset({"payment_method", "payment_method_data"})
_PAYMENT_METHOD_CODES = frozenset({"resource_missing", "payment_method_unactivated", "payment_method_unexpected_state",
                                   "payment_intent_incompatible_payment_method", "payment_method_invalid_parameter",
                                   "payment_method_not_available", "payment_method_provider_decline"})


class _CountsAgainstStripe(Exception):
    """Raised inside the breaker for refusals that mean our Stripe set-up is broken, so that
    the breaker counts them (it ignores every other StripeError but "unwell" ones)."""

    def __init__(self, error: stripe.StripeError) -> None:
        super().__init__(str(error))
        self.error = error


def _stripe_is_unwell(exc: BaseException) -> bool:
    if isinstance(exc, (stripe.APIConnectionError, stripe.RateLimitError)):
        return True
    if isinstance(exc, stripe.StripeError):
        return exc.http_status is None or exc.http_status >= 500
    return False


def _counts(exc: BaseException) -> bool:
    return isinstance(exc, _CountsAgainstStripe) or _stripe_is_unwell(exc)


def stripe_breaker() -> SharedCircuitBreaker:
    return get_breaker(
        BREAKER_NAME,
        fail_max=settings.STRIPE_BREAKER_FAIL_MAX,
        reset_timeout=settings.STRIPE_BREAKER_RESET_SECONDS,
        # A decline or the customer's bad input is Stripe working correctly: it must not open it.
        exclude=[lambda exc: not _counts(exc)],
    )


# --- the HTTP client: which attempts may have reached Stripe ---------------------------------

_attempts = threading.local()


def _never_sent(exc: BaseException | None) -> bool:
    """True when the request provably never left: the connection could not be made."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.exceptions.ConnectionError) and not isinstance(exc, requests.exceptions.SSLError):
        reason = exc.args[0] if exc.args else None
        reason = getattr(reason, "reason", reason)  # urllib3's MaxRetryError wraps the cause
        return isinstance(reason, (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError))
    return False


class _TrackingRequestsClient(stripe.RequestsClient):
    """The SDK retries a call by itself and raises only the last attempt's error; this notes,
    for the current thread, whether *any* attempt may have been executed by Stripe (B8: an
    attempt that never reached Stripe is closed at once, one that may have is looked up)."""

    def __init__(self, *, api_base: str, **kwargs: Any) -> None:
        # requests reads the proxy variables (and scans the whole environment) again on every
        # call, a tenth of a pay's own CPU: they are read once here, for Stripe's address, and
        # each thread's session stops looking (trust_env). HTTPS_PROXY / NO_PROXY still apply.
        proxies = {k: v for k, v in requests.utils.get_environ_proxies(api_base).items() if k in ("http", "https")}
        super().__init__(proxy=proxies or None, **kwargs)

    def request(self, method: str, url: str, headers: Any, post_data: Any = None) -> Any:
        if getattr(self._thread_local, "session", None) is None:
            session = requests.Session()
            session.trust_env = False
            self._thread_local.session = session
        try:
            content, status, response_headers = super().request(method, url, headers, post_data)
        except stripe.APIConnectionError as exc:
            if not _never_sent(exc.__cause__):
                _attempts.reached = True
            raise
        if status not in _NOT_EXECUTED_STATUSES:
            _attempts.reached = True
        return content, status, response_headers


def _retry_budget(timeout: float, connect_timeout: float, wanted: int) -> int:
    """Network retries that still fit the promise "answer within 4 x STRIPE_TIMEOUT_SECONDS":
    each attempt may take connect + read timeout, the SDK sleeps at most 1 s between attempts, and
    half a timeout is left for our own database work."""
    per_attempt = connect_timeout + timeout
    budget = 3.5 * timeout
    attempts = max(1, math.floor((budget + 1.0) / (per_attempt + 1.0)))
    return max(0, min(wanted, attempts - 1))


@functools.lru_cache(maxsize=8)
def _client(api_key: str, api_base: str, api_version: str, timeout: float, max_retries: int) -> stripe.StripeClient:
    # Connecting is quick or never: a short connect timeout leaves the budget to the read.
    connect_timeout = min(timeout / 2, 2.0)
    return stripe.StripeClient(
        api_key,
        stripe_version=api_version,
        base_addresses={"api": api_base},
        http_client=_TrackingRequestsClient(api_base=api_base, timeout=(connect_timeout, timeout)),
        max_network_retries=_retry_budget(timeout, connect_timeout, max_retries),
    )


def stripe_client() -> stripe.StripeClient:
    return _client(settings.STRIPE_API_KEY, settings.STRIPE_API_BASE.rstrip("/"), settings.STRIPE_API_VERSION,
                   float(settings.STRIPE_TIMEOUT_SECONDS), int(settings.STRIPE_MAX_NETWORK_RETRIES))


# --- one guarded call ------------------------------------------------------------------------

# Calls that went out to Stripe (past the breaker), by operation: read by tests and metrics.
calls_made: Counter[str] = Counter()
_calls_lock = threading.Lock()
latency_observer: Callable[[str, float], None] | None = None
# outcome_observer(operation, outcome) with outcome ok, declined, rejected, misconfigured,
# unavailable, breaker_open: read by metrics.
outcome_observer: Callable[[str, str], None] | None = None


def _observe(operation: str, outcome: str) -> None:
    if outcome_observer is not None:
        outcome_observer(operation, outcome)


def _classify_invalid_request(exc: stripe.StripeError, *, customer_input: bool) -> Exception | None:
    """A 400 on a request whose payment method came from the customer: theirs, or ours?"""
    if not customer_input or not isinstance(exc, stripe.InvalidRequestError):
        return None
    if isinstance(exc, stripe.IdempotencyError):
        return None
    error = exc.error
    param = (getattr(error, "param", None) or "") if error else ""
    if param in _PAYMENT_METHOD_PARAMS or (exc.code in _PAYMENT_METHOD_CODES and param.startswith("payment_method")):
        return PaymentMethodUnusable(code=exc.code or "payment_method_invalid", param=param or "payment_method",
                                     message=exc.user_message or "This payment method cannot be used.",
                                     http_status=exc.http_status)
    return _CountsAgainstStripe(exc)


def _call(operation: str, func: Callable[[], T], *, customer_input: bool = False) -> T:
    """Run one SDK call through the breaker and translate what happened into our error kinds.
    `customer_input`: a 400 about the payment method is the customer's; any other 400 means our
    request or account is wrong (B7: a request production Stripe refuses is a configuration bug)."""
    if in_application_transaction():
        raise RuntimeError(f"Stripe call {operation} inside a transaction: network calls go outside")
    breaker = stripe_breaker()
    _attempts.reached = False

    def guarded() -> T:
        with _calls_lock:
            calls_made[operation] += 1
        started = time.perf_counter()
        try:
            return func()
        except (stripe.AuthenticationError, stripe.PermissionError) as exc:
            raise _CountsAgainstStripe(exc) from exc
        except stripe.InvalidRequestError as exc:
            translated = _classify_invalid_request(exc, customer_input=customer_input)
            if translated is None:
                raise
            raise translated from exc
        finally:
            if latency_observer is not None:
                latency_observer(operation, time.perf_counter() - started)

    try:
        return breaker.call(guarded)
    except pybreaker.CircuitBreakerError as exc:
        cause = exc.__context__
        if cause is None or isinstance(cause, pybreaker.CircuitBreakerError):
            # Refused by the open breaker: no request left this process.
            _observe(operation, "breaker_open")
            logger.warning("stripe breaker open", extra={"operation": operation})
            raise StripeUnavailable("circuit breaker open", retry_after=breaker.retry_after_seconds(),
                                    reached=False) from exc
        raise _translated(operation, cause) from cause  # this very failure tripped the breaker
    except (stripe.StripeError, _CountsAgainstStripe, PaymentMethodUnusable) as exc:
        raise _translated(operation, exc) from exc
    finally:
        _attempts.reached = False


def _translated(operation: str, exc: BaseException) -> BaseException:
    """The error kind callers see for what the SDK (or our breaker wrapper) raised."""
    if isinstance(exc, _CountsAgainstStripe):
        error = exc.error
        _observe(operation, "misconfigured")
        logger.error("stripe refuses our configuration", extra={
            "operation": operation, "error": type(error).__name__, "code": error.code,
            "http_status": error.http_status})
        return StripeMisconfigured(code=error.code or type(error).__name__, http_status=error.http_status,
                                   message=error.user_message or "Stripe refused the request.")
    if isinstance(exc, PaymentMethodUnusable):
        _observe(operation, "rejected")
        return exc
    if isinstance(exc, stripe.CardError):
        _observe(operation, "declined")
        error = exc.error
        code = (getattr(error, "decline_code", None) or exc.code or "card_declined") if error else "card_declined"
        intent = getattr(error, "payment_intent", None) if error else None
        intent_id = (intent.get("id") if isinstance(intent, dict) else getattr(intent, "id", "")) or ""
        return CardDeclined(code=str(code), message=exc.user_message or "Your card was declined.",
                            payment_intent_id=intent_id)
    if not isinstance(exc, stripe.StripeError):
        return exc
    reached = bool(getattr(_attempts, "reached", True))
    if exc.http_status == 409:
        # Another request with this idempotency key is still running at Stripe: that request may
        # charge, so the outcome is unknown, not a refusal. Stripe is working: not a breaker failure.
        _observe(operation, "unavailable")
        logger.warning("stripe conflict", extra={"operation": operation, "error": type(exc).__name__})
        return StripeUnavailable(f"conflict: {type(exc).__name__}", retry_after=2, reached=True)
    if isinstance(exc, stripe.IdempotencyError):
        _observe(operation, "rejected")
        return StripeIdempotencyKeyReused(code="idempotency_key_reused", message=exc.user_message or str(exc),
                                          http_status=exc.http_status)
    if _stripe_is_unwell(exc):
        _observe(operation, "unavailable")
        logger.warning("stripe unavailable", extra={"operation": operation, "error": type(exc).__name__,
                                                    "reached": reached})
        retry_after = 5 if isinstance(exc, stripe.RateLimitError) else max(1, math.ceil(
            settings.STRIPE_TIMEOUT_SECONDS))
        return StripeUnavailable(type(exc).__name__, retry_after=retry_after, reached=reached,
                                 http_status=exc.http_status)
    _observe(operation, "rejected")
    logger.warning("stripe rejected %s", operation, extra={"error": type(exc).__name__, "code": exc.code})
    param = (getattr(exc.error, "param", None) or "") if exc.error else ""
    return StripeRequestRejected(code=exc.code or "stripe_request_rejected", param=param,
                                 message=exc.user_message or "The payment provider rejected the request.",
                                 http_status=exc.http_status)


def _ok(operation: str, value: T) -> T:
    _observe(operation, "ok")
    return value


# --- typed results ---------------------------------------------------------------------------

def _as_dict(obj: Any) -> dict[str, Any]:
    return obj.to_dict() if isinstance(obj, stripe.StripeObject) else dict(obj)


def intent_result_from(obj: Any) -> IntentResult:
    """A PaymentIntent (SDK object or webhook JSON) as our typed value."""
    obj = _as_dict(obj)
    error = obj.get("last_payment_error") or {}
    charge = obj.get("latest_charge") or ""
    if not isinstance(charge, str):
        charge = charge.get("id", "")
    next_action = obj.get("next_action")
    return IntentResult(
        id=obj.get("id") or "", status=obj.get("status") or "", amount=int(obj.get("amount") or 0),
        currency=obj.get("currency") or "",
        client_secret=obj.get("client_secret") or "", latest_charge_id=charge,
        failure_code=(error.get("decline_code") or error.get("code") or "") if error else "",
        failure_message=(error.get("message") or "") if error else "",
        metadata=dict(obj.get("metadata") or {}),
        next_action=dict(next_action) if isinstance(next_action, dict) else None,
    )


def refund_result_from(obj: Any) -> RefundResult:
    """A Refund (SDK object or webhook JSON) as our typed value."""
    obj = _as_dict(obj)
    intent = obj.get("payment_intent") or ""
    if not isinstance(intent, str):
        intent = intent.get("id", "")
    return RefundResult(id=obj.get("id") or "", status=obj.get("status") or "", amount=int(obj.get("amount") or 0),
                        payment_intent_id=intent, failure_reason=obj.get("failure_reason") or "",
                        metadata=dict(obj.get("metadata") or {}))


# --- operations ------------------------------------------------------------------------------

def payment_intent_params(*, amount: int, currency: str, payment_method: str, metadata: dict[str, str],
                          return_url: str = "", confirm: bool = True) -> dict[str, Any]:
    """The PaymentIntent create parameters, valid for an account with redirect-based methods
    enabled in the Dashboard (B7): without the customer's `return_url`, redirect methods are not
    offered (`allow_redirects=never`), so Stripe never needs one; with it, they are, and Stripe
    answers `requires_action` with a redirect. `return_url` is only allowed with confirm=true."""
    params: dict[str, Any] = {"amount": amount, "currency": currency, "payment_method": payment_method,
                              "confirm": confirm, "metadata": metadata}
    if return_url and confirm:
        params["automatic_payment_methods"] = {"enabled": True, "allow_redirects": "always"}
        params["return_url"] = return_url
    else:
        params["automatic_payment_methods"] = {"enabled": True, "allow_redirects": "never"}
    return params


def payment_intent_create(*, amount: int, currency: str, payment_method: str, metadata: dict[str, str],
                          idempotency_key: str, return_url: str = "", confirm: bool = True) -> IntentResult:
    """Create and confirm in one call (localstripe answers 500 to confirm with a method).
    `confirm=False` only probes a key whose first (confirming) create may have been lost."""
    client = stripe_client()
    params = payment_intent_params(amount=amount, currency=currency, payment_method=payment_method,
                                   metadata=metadata, return_url=return_url, confirm=confirm)
    intent = _call("payment_intent.create", lambda: client.v1.payment_intents.create(
        params=params, options={"idempotency_key": idempotency_key}), customer_input=True)
    return _ok("payment_intent.create", intent_result_from(intent))


def payment_intent_retrieve(*, intent_id: str) -> IntentResult:
    client = stripe_client()
    intent = _call("payment_intent.retrieve", lambda: client.v1.payment_intents.retrieve(intent_id))
    return _ok("payment_intent.retrieve", intent_result_from(intent))


def payment_intents_with_metadata(*, key: str, value: str) -> list[IntentResult]:
    """Stripe's search by metadata. Eventually consistent (new intents appear within about a
    minute), so an empty answer only means "none" for an attempt older than that."""
    client = stripe_client()
    found = _call("payment_intent.search", lambda: client.v1.payment_intents.search(
        params={"query": f"metadata['{key}']:'{value}'", "limit": 10}))
    return _ok("payment_intent.search", [intent_result_from(pi) for pi in found.data])


def payment_intent_cancel(*, intent_id: str, idempotency_key: str) -> IntentResult:
    client = stripe_client()
    intent = _call("payment_intent.cancel", lambda: client.v1.payment_intents.cancel(
        intent_id, options={"idempotency_key": idempotency_key}))
    return _ok("payment_intent.cancel", intent_result_from(intent))


def refund_create(*, payment_intent_id: str, amount: int, metadata: dict[str, str],
                  idempotency_key: str) -> RefundResult:
    client = stripe_client()
    refund = _call("refund.create", lambda: client.v1.refunds.create(
        params={"payment_intent": payment_intent_id, "amount": amount, "metadata": metadata},
        options={"idempotency_key": idempotency_key},
    ))
    return _ok("refund.create", refund_result_from(refund))


def refund_retrieve(*, refund_id: str) -> RefundResult:
    client = stripe_client()
    refund = _call("refund.retrieve", lambda: client.v1.refunds.retrieve(refund_id))
    return _ok("refund.retrieve", refund_result_from(refund))


# --- webhooks --------------------------------------------------------------------------------

class WebhookSignatureInvalid(GatewayError):
    pass


def webhook_event_verified(*, body: bytes, signature: str, tolerance: int = 300) -> None:
    """Raise WebhookSignatureInvalid unless `body` is signed with STRIPE_WEBHOOK_SECRET within
    `tolerance` seconds (B4: checked on the raw bytes, before anything is parsed)."""
    try:
        stripe.WebhookSignature.verify_header(body.decode("utf-8", "replace"), signature,
                                              settings.STRIPE_WEBHOOK_SECRET, tolerance)
    except stripe.SignatureVerificationError as exc:
        raise WebhookSignatureInvalid(str(exc)) from exc


# --- the ledger, by time window (reconciliation, H1) -------------------------------------------

LIST_PAGE_SIZE = 100
LIST_MAX_PAGES = 2000  # 200,000 objects: a bound, so that a paging bug cannot loop forever


@dataclass(frozen=True)
class LedgerIntent:
    """A PaymentIntent as Stripe's ledger holds it."""

    id: str
    status: str
    amount: int
    amount_received: int  # what was captured (0 unless succeeded)
    currency: str
    created: int  # unix time
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LedgerRefund:
    id: str
    status: str
    amount: int
    payment_intent_id: str
    created: int
    metadata: dict[str, str] = field(default_factory=dict)


def _ledger_intent(obj: Any) -> LedgerIntent:
    data = _as_dict(obj)
    status = data.get("status") or ""
    received = data.get("amount_received")
    if received is None:  # localstripe has no amount_received: a succeeded intent captured its amount
        received = data.get("amount") if status == "succeeded" else 0
    return LedgerIntent(id=data.get("id") or "", status=status, amount=int(data.get("amount") or 0),
                        amount_received=int(received or 0), currency=data.get("currency") or "",
                        created=int(data.get("created") or 0), metadata=dict(data.get("metadata") or {}))


def _ledger_refund(obj: Any) -> LedgerRefund:
    result = refund_result_from(obj)
    return LedgerRefund(id=result.id, status=result.status, amount=result.amount,
                        payment_intent_id=result.payment_intent_id, created=int(_as_dict(obj).get("created") or 0),
                        metadata=result.metadata)


def _list_all(operation: str, fetch: Callable[[dict[str, Any]], Any]) -> list[Any]:
    """Every object of a Stripe list, page by page (`starting_after`), each page one guarded call."""
    objects: list[Any] = []
    params: dict[str, Any] = {"limit": LIST_PAGE_SIZE}
    for _ in range(LIST_MAX_PAGES):
        page = _call(operation, functools.partial(fetch, params))
        data = list(page.data)
        objects += data
        if not page.has_more or not data:
            return _ok(operation, objects)
        params = {"limit": LIST_PAGE_SIZE, "starting_after": data[-1].id}
    raise StripeRequestRejected(code="list_too_long", http_status=None,
                                message=f"{operation}: more than {LIST_MAX_PAGES} pages")


def _in_window(created: int, created_gte: int, created_lt: int | None) -> bool:
    return created >= created_gte and (created_lt is None or created < created_lt)


def payment_intents_list(*, created_gte: int, created_lt: int | None = None) -> list[LedgerIntent]:
    """Every PaymentIntent created in [created_gte, created_lt) (unix times).

    Stripe filters lists with `created[gte]`/`created[lt]`; localstripe's PaymentIntent list
    refuses them ("Unexpected created"), so this pages through the whole list and filters
    on `created` here. Fine for reconciliation's daily run at our volume; against an account
    with millions of intents, pass the filter to Stripe instead."""
    client = stripe_client()
    found = _list_all("payment_intent.list", lambda params: client.v1.payment_intents.list(params=params))
    intents = [_ledger_intent(obj) for obj in found]
    return [intent for intent in intents if _in_window(intent.created, created_gte, created_lt)]


def refunds_list(*, created_gte: int, created_lt: int | None = None) -> list[LedgerRefund]:
    """Every Refund created in [created_gte, created_lt); paged and filtered here, as above
    (localstripe's refund list has no `created` filter either)."""
    client = stripe_client()
    found = _list_all("refund.list", lambda params: client.v1.refunds.list(params=params))
    refunds = [_ledger_refund(obj) for obj in found]
    return [refund for refund in refunds if _in_window(refund.created, created_gte, created_lt)]


def refunds_of_payment_intent(*, payment_intent_id: str) -> list[RefundResult]:
    """Every refund Stripe holds for one PaymentIntent (a list is consistent, unlike search)."""
    client = stripe_client()
    found = _list_all("refund.list", lambda params: client.v1.refunds.list(
        params={**params, "payment_intent": payment_intent_id}))
    return [refund_result_from(obj) for obj in found]
