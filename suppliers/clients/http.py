"""The reference HTTP adapter (api.md, "Supplier API"): requests with (connect, read)
timeouts from the Supplier row, a Bearer key that is never stored or logged, a stable
Idempotency-Key, and a circuit breaker per supplier whose state all workers share."""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pybreaker
import requests
from django.conf import settings

from common.breakers import get_breaker
from outbox.policy import call_budget_seconds
from suppliers.clients.base import (
    BREAKER_OPEN,
    ENDPOINT_REFUSED,
    BookingRequest,
    LookupOutcome,
    SupplierAdapter,
    SupplierBooking,
    SupplierLookup,
    SupplierOutcome,
    SupplierResult,
)
from suppliers.clients.endpoint import EndpointRefused, connection_problem, host_allowed, supplier_session
from suppliers.metrics import observe_supplier_call, observe_supplier_lookup
from suppliers.models import Supplier

logger = logging.getLogger("reserve.suppliers")

T = TypeVar("T")
REDACTED = "***"
_local = threading.local()


def _session(url: str) -> requests.Session:
    # A Session per thread (connection reuse without sharing one pool across threads), one
    # for hosts on SUPPLIER_ALLOWED_HOSTS and one that filters internal addresses.
    sessions = getattr(_local, "sessions", None)
    if sessions is None:
        sessions = _local.sessions = {}
    allowed = host_allowed(requests.utils.urlparse(url).hostname or "")
    if allowed not in sessions:
        session = sessions[allowed] = supplier_session(url)
        session.trust_env = False  # the environment is read once per origin (_environment)
    return sessions[allowed]


@functools.lru_cache(maxsize=1024)
def _environment(origin: str) -> dict[str, Any]:
    """What requests takes from the environment for a call to `origin` (scheme://host:port):
    its proxy (HTTP(S)_PROXY, NO_PROXY) and CA bundle (REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE).
    requests re-reads them, scanning the whole environment, on every call (trust_env): 4 % of
    a delivery's CPU (bench/drain.py --profile). Read once per origin, as the Stripe client does;
    never ~/.netrc, whose credentials would replace the supplier's key."""
    proxies = {k: v for k, v in requests.utils.get_environ_proxies(origin).items() if k in ("http", "https")}
    return {"proxies": proxies, "verify": os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
            or True}


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class _SupplierUnavailable(Exception):
    """Raised inside the breaker for retryable answers (a SupplierResult or a SupplierLookup), so
    that only they count as failures."""

    def __init__(self, result: SupplierResult | SupplierLookup) -> None:
        super().__init__(result.error_code)
        self.result = result


def _json_or_text(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return {"text": response.text[:2000]}


class HttpSupplierAdapter(SupplierAdapter):
    def __init__(self, supplier: Supplier) -> None:
        self.supplier = supplier
        self.base_url = supplier.base_url.rstrip("/")

    def _timeouts(self) -> tuple[float, float]:
        """(connect, read) from the Supplier row, clamped so one call fits inside an outbox
        lease even for rows saved before the API and admin validated that."""
        budget = call_budget_seconds()
        connect = min(self.supplier.connect_timeout_seconds, budget / 3)
        return connect, min(self.supplier.timeout_seconds, budget - connect)

    # --- public ------------------------------------------------------------------------------

    def book(self, *, booking: BookingRequest, idempotency_key: str) -> SupplierResult:
        return self._call("book", "POST", "/bookings", key=idempotency_key, body=booking.as_payload(),
                          classify=self._classify_book)

    def cancel(self, *, booking_id: str, idempotency_key: str) -> SupplierResult:
        return self._call("cancel", "DELETE", f"/bookings/{requests.utils.quote(booking_id, safe='')}",
                          key=idempotency_key, body=None, classify=self._classify_cancel)

    def booking_get(self, *, booking_id: str) -> SupplierLookup:
        return self._lookup("booking_get", f"/bookings/{requests.utils.quote(booking_id, safe='')}", params=None)

    def bookings_for_reference(self, *, reference: str) -> SupplierLookup:
        return self._lookup("bookings_for_reference", "/bookings", params={"reference": reference})

    # --- mechanics ---------------------------------------------------------------------------

    def _breaker(self) -> pybreaker.CircuitBreaker:
        return get_breaker(f"supplier:{self.supplier.slug}", fail_max=settings.SUPPLIER_BREAKER_FAIL_MAX,
                           reset_timeout=settings.SUPPLIER_BREAKER_RESET_SECONDS)

    def _call(self, operation: str, method: str, path: str, *, key: str, body: dict[str, Any] | None,
              classify: Callable[[int, Any], tuple[SupplierOutcome, str]]) -> SupplierResult:
        url = self.base_url + path
        audit_request = {"method": method, "url": url, "headers": {"Authorization": f"Bearer {REDACTED}",
                                                                  "Idempotency-Key": key}, "body": body}
        base = {"operation": operation, "idempotency_key": key, "request": audit_request}

        refused = connection_problem(url)
        if refused:
            # Never sent: the key and the guest's data stay here. Staff fix base_url and replay.
            logger.warning("supplier endpoint refused", extra={"supplier": self.supplier.slug, "reason": refused})
            result = SupplierResult(outcome=SupplierOutcome.PERMANENT, error_code=ENDPOINT_REFUSED,
                                    details={"reason": refused}, **base)
            observe_supplier_call(supplier=self.supplier.slug, result=result)
            return result

        def attempt() -> SupplierResult:
            started = time.monotonic()
            try:
                response = _session(url).request(
                    method, url, json=body,
                    headers={"Authorization": f"Bearer {self.supplier.api_key}", "Idempotency-Key": key},
                    timeout=self._timeouts(),
                    allow_redirects=False,
                    **_environment(_origin(url)),
                )
            except EndpointRefused as exc:
                # The host resolved to an internal address: refused before connecting.
                logger.warning("supplier endpoint refused", extra={"supplier": self.supplier.slug,
                                                                   "reason": "internal address"})
                return SupplierResult(outcome=SupplierOutcome.PERMANENT, error_code=ENDPOINT_REFUSED,
                                      duration_ms=_ms(started), details={"reason": f"internal address {exc}"},
                                      **base)
            except requests.Timeout as exc:
                code = "connect_timeout" if isinstance(exc, requests.ConnectTimeout) else "read_timeout"
                result = SupplierResult(outcome=SupplierOutcome.RETRYABLE, error_code=code,
                                        duration_ms=_ms(started), **base)
                raise _SupplierUnavailable(result) from exc
            except requests.RequestException as exc:
                result = SupplierResult(outcome=SupplierOutcome.RETRYABLE, error_code="connection_error",
                                        duration_ms=_ms(started), details={"exception": type(exc).__name__},
                                        **base)
                raise _SupplierUnavailable(result) from exc
            payload = _json_or_text(response)
            outcome, error_code = classify(response.status_code, payload)
            data = payload if isinstance(payload, dict) else {}
            result = SupplierResult(
                outcome=outcome, response=payload, http_status=response.status_code, error_code=error_code,
                duration_ms=_ms(started), booking_id=str(data.get("booking_id") or ""),
                confirmation_code=str(data.get("confirmation_code") or ""), **base,
            )
            if outcome is SupplierOutcome.RETRYABLE:
                raise _SupplierUnavailable(result)
            return result

        result = self._through_breaker(attempt, lambda breaker: SupplierResult(
            outcome=SupplierOutcome.RETRYABLE, error_code=BREAKER_OPEN, call_made=False,
            retry_after_seconds=breaker.retry_after_seconds(), **base))
        observe_supplier_call(supplier=self.supplier.slug, result=result)
        return result

    def _through_breaker(self, attempt: Callable[[], T], refused: Callable[[Any], T]) -> T:
        """One call through the supplier's breaker: a retryable answer (raised inside, so that it
        counts) is returned as it is; a call the open breaker refused never left: `refused(breaker)`."""
        breaker = self._breaker()
        try:
            return breaker.call(attempt)
        except _SupplierUnavailable as exc:
            return exc.result  # type: ignore[return-value]
        except pybreaker.CircuitBreakerError as exc:
            # Either the breaker was open (no call made) or this very failure tripped it.
            cause = exc.__context__
            return cause.result if isinstance(cause, _SupplierUnavailable) else refused(breaker)  # type: ignore[return-value]

    def _lookup(self, operation: str, path: str, *, params: dict[str, str] | None) -> SupplierLookup:
        """A GET of the supplier's ledger: same timeouts and breaker as the booking calls (a
        supplier that is down for reconciliation is down for bookings too)."""
        url = self.base_url + path
        refused = connection_problem(url)
        if refused:  # the key stays here, as for booking calls
            logger.warning("supplier endpoint refused", extra={"supplier": self.supplier.slug, "reason": refused})
            return SupplierLookup(outcome=LookupOutcome.FAILED, operation=operation, error_code=ENDPOINT_REFUSED,
                                  call_made=False)

        def attempt() -> SupplierLookup:
            started = time.monotonic()
            try:
                response = _session(url).get(url, params=params, timeout=self._timeouts(), allow_redirects=False,
                                             headers={"Authorization": f"Bearer {self.supplier.api_key}"},
                                             **_environment(_origin(url)))
            except EndpointRefused:
                logger.warning("supplier endpoint refused", extra={"supplier": self.supplier.slug,
                                                                   "reason": "internal address"})
                return SupplierLookup(outcome=LookupOutcome.FAILED, operation=operation,
                                      error_code=ENDPOINT_REFUSED, call_made=False, duration_ms=_ms(started))
            except requests.RequestException as exc:
                code = ("connect_timeout" if isinstance(exc, requests.ConnectTimeout) else
                        "read_timeout" if isinstance(exc, requests.Timeout) else "connection_error")
                raise _SupplierUnavailable(SupplierLookup(outcome=LookupOutcome.UNAVAILABLE, operation=operation,
                                                          error_code=code, duration_ms=_ms(started))) from exc
            lookup = _classify_lookup(operation, response.status_code, _json_or_text(response), _ms(started))
            if lookup.outcome is LookupOutcome.UNAVAILABLE:
                raise _SupplierUnavailable(lookup)
            return lookup

        lookup = self._through_breaker(attempt, lambda breaker: SupplierLookup(
            outcome=LookupOutcome.UNAVAILABLE, operation=operation, error_code=BREAKER_OPEN, call_made=False))
        observe_supplier_lookup(supplier=self.supplier.slug, lookup=lookup)
        return lookup

    @staticmethod
    def _classify_book(status: int, payload: Any) -> tuple[SupplierOutcome, str]:
        body = payload if isinstance(payload, dict) else {}
        if status in (200, 201) and body.get("status") == "CONFIRMED":
            return SupplierOutcome.CONFIRMED, ""
        if status == 202 or body.get("status") == "ON_REQUEST":
            return SupplierOutcome.ON_REQUEST, ""
        if status == 409 and body.get("error") == "no_availability":
            return SupplierOutcome.REJECTED, "no_availability"
        if status == 429 or status >= 500:
            return SupplierOutcome.RETRYABLE, f"http_{status}"
        if 200 <= status < 300:
            # A 2xx we cannot read is not a booking we can rely on: a person must look.
            return SupplierOutcome.PERMANENT, "unexpected_response"
        return SupplierOutcome.PERMANENT, str(body.get("error") or f"http_{status}")[:64]

    @staticmethod
    def _classify_cancel(status: int, payload: Any) -> tuple[SupplierOutcome, str]:
        if status in (200, 202, 204, 404):  # 404: already cancelled or never made
            return SupplierOutcome.CANCELLED, ""
        if status == 429 or status >= 500:
            return SupplierOutcome.RETRYABLE, f"http_{status}"
        body = payload if isinstance(payload, dict) else {}
        return SupplierOutcome.PERMANENT, str(body.get("error") or f"http_{status}")[:64]


def _booking_from(data: Any) -> SupplierBooking | None:
    if not isinstance(data, dict) or not data.get("booking_id") or not data.get("status"):
        return None
    return SupplierBooking(booking_id=str(data["booking_id"]), reference=str(data.get("reference") or ""),
                           status=str(data["status"]), confirmation_code=str(data.get("confirmation_code") or ""))


def _classify_lookup(operation: str, status: int, payload: Any, duration_ms: int) -> SupplierLookup:
    def answer(outcome: LookupOutcome, bookings: tuple[SupplierBooking, ...] = (), code: str = "") -> SupplierLookup:
        return SupplierLookup(outcome=outcome, operation=operation, bookings=bookings, http_status=status,
                              error_code=code, duration_ms=duration_ms)

    if status == 429 or status >= 500:
        return answer(LookupOutcome.UNAVAILABLE, code=f"http_{status}")
    if status == 404 and operation == "booking_get":
        return answer(LookupOutcome.NOT_FOUND)
    if status != 200:
        return answer(LookupOutcome.FAILED, code=f"http_{status}")
    items = payload.get("bookings") if operation == "bookings_for_reference" and isinstance(payload, dict) \
        else [payload]
    bookings = tuple(_booking_from(item) for item in items) if isinstance(items, list) else (None,)
    if any(b is None for b in bookings):
        return answer(LookupOutcome.FAILED, code="unexpected_response")
    return answer(LookupOutcome.FOUND if bookings else LookupOutcome.NOT_FOUND, bookings=bookings)  # type: ignore[arg-type]


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
