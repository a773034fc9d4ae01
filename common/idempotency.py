"""Stripe-like idempotency keys (B1), one mechanism for every POST that accepts them.

A view method decorated with `@idempotent(required=...)` runs at most once per (user, endpoint,
key), the endpoint being the method and route template (B1):
- a repeat of the same request gets the stored status and body, with `Idempotent-Replayed: true`;
- the same key with another method, path or body → 409 `idempotency_key_reused`;
- the same key while the first request still runs → 409 `idempotency_key_in_use` + `Retry-After`;
- a 5xx is not stored (the lock is released), so the client retries with the same key;
- a lock left by a crashed process is taken over after `IDEMPOTENCY_LOCK_STALE_SECONDS`.

Each step is its own short transaction; the wrapped operation owns its transactions. An
operation with an effect stores its answer *inside* the transaction that commits the effect
(`idempotency_store_with_effect`, B11): a crash can never leave the effect without the answer,
so a retry after the stale bound replays it instead of doing the effect a second time."""

from __future__ import annotations

import contextvars
import datetime as dt
import functools
import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.http import HttpResponse
from django.urls import Resolver404, resolve
from django.utils import timezone
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from common.compiled import insert_row
from common.db import create_unless_conflict, retry_on_deadlock
from common.error_codes import ErrorCode
from common.errors import exception_to_problem
from common.exceptions import ApplicationError
from common.faults import fault_point
from common.metrics import IDEMPOTENT_REPLAYS
from common.models import IdempotencyKey

logger = logging.getLogger("reserve.idempotency")

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255


class IdempotencyKeyMissing(ApplicationError):
    status_code = 400
    code = ErrorCode.IDEMPOTENCY_KEY_MISSING
    title = "Idempotency-Key required"
    default_detail = "This request needs an Idempotency-Key header (1-255 characters)."


class IdempotencyKeyInvalid(ApplicationError):
    status_code = 400
    code = ErrorCode.IDEMPOTENCY_KEY_INVALID
    title = "Invalid Idempotency-Key"
    default_detail = "The Idempotency-Key header must be 1-255 printable characters."


class IdempotencyKeyReused(ApplicationError):
    status_code = 409
    code = ErrorCode.IDEMPOTENCY_KEY_REUSED
    title = "Idempotency-Key reused"
    default_detail = "This Idempotency-Key was already used for a different request."


class IdempotencyKeyInUse(ApplicationError):
    status_code = 409
    code = ErrorCode.IDEMPOTENCY_KEY_IN_USE
    title = "Idempotency-Key in use"
    default_detail = "A request with this Idempotency-Key is still being processed; retry shortly."
    sends_retry_after = True

    def __init__(self, *, retry_after: int = 1) -> None:
        super().__init__(headers={"Retry-After": str(retry_after)})


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: str
    content_type: str


@dataclass
class _Running:
    """The key of the request running in this context, while its operation runs."""

    record: IdempotencyKey
    stored_with_effect: bool = False


_running: contextvars.ContextVar[_Running | None] = contextvars.ContextVar("idempotency_running", default=None)


@dataclass(frozen=True)
class IdempotencyClaim:
    """The outcome of presenting a key: either ours to run (`record`) or a stored `response`."""

    record: IdempotencyKey | None = None
    response: StoredResponse | None = None


def request_endpoint(*, method: str, path: str) -> str:
    """The scope of a key besides the user: method and route template, so the same key on
    another operation is a new key, while the same route for another resource is not."""
    try:
        route = resolve(path).route
    except Resolver404:
        route = path
    return f"{method.upper()} {route}"[:255]


def request_fingerprint(*, method: str, path: str, body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{method.upper()} {path}\n{canonical}".encode()).hexdigest()


@retry_on_deadlock
def idempotency_key_claim(*, user: Any, key: str, method: str, path: str, fingerprint: str,
                          endpoint: str | None = None) -> IdempotencyClaim:
    """Insert the key locked by us, or report what the existing row says. The unique
    constraint (user, endpoint, key) decides who is first; a loser locks the winner's row to read it."""
    now = timezone.now()
    endpoint = endpoint or request_endpoint(method=method, path=path)
    # A new key (the usual case) is one INSERT, committed by itself.
    record = create_unless_conflict(lambda: insert_row(IdempotencyKey(
        user=user, endpoint=endpoint, key=key, request_method=method, request_path=path,
        request_fingerprint=fingerprint, locked_at=now)))
    if record is not None:
        return IdempotencyClaim(record=record)
    with transaction.atomic(durable=True):
        record = IdempotencyKey.objects.select_for_update().get(user=user, endpoint=endpoint, key=key)

        expired = record.created_at < now - dt.timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
        if expired:
            # Past its retention the key is new again (the purge would have deleted it).
            _reset(record, method=method, path=path, fingerprint=fingerprint, now=now)
            return IdempotencyClaim(record=record)
        if record.request_fingerprint != fingerprint:
            raise IdempotencyKeyReused
        if record.response_code is not None:
            return IdempotencyClaim(response=StoredResponse(
                status=record.response_code, body=record.response_body,
                content_type=record.response_content_type or "application/json",
            ))
        stale_before = now - dt.timedelta(seconds=settings.IDEMPOTENCY_LOCK_STALE_SECONDS)
        if record.locked_at is not None and record.locked_at > stale_before:
            remaining = (record.locked_at - stale_before).total_seconds()
            raise IdempotencyKeyInUse(retry_after=max(1, min(int(remaining), 5)))
        # Unlocked without a response (the first attempt answered 5xx) or locked by a process
        # that died: this request takes the key over.
        IdempotencyKey.objects.filter(pk=record.pk).update(locked_at=now)
        record.locked_at = now
        return IdempotencyClaim(record=record)


def _reset(record: IdempotencyKey, *, method: str, path: str, fingerprint: str, now: dt.datetime) -> None:
    fields = {"request_method": method, "request_path": path, "request_fingerprint": fingerprint,
              "locked_at": now, "response_code": None, "response_body": "", "response_content_type": "",
              "created_at": now}
    IdempotencyKey.objects.filter(pk=record.pk).update(**fields)
    for name, value in fields.items():
        setattr(record, name, value)


def idempotency_key_store(*, record: IdempotencyKey, response: StoredResponse) -> None:
    IdempotencyKey.objects.filter(pk=record.pk).update(
        locked_at=None, response_code=response.status, response_body=response.body,
        response_content_type=response.content_type,
    )


def idempotency_key_release(*, record: IdempotencyKey) -> None:
    """Forget the attempt but keep the key (and its fingerprint): the client retries with it."""
    IdempotencyKey.objects.filter(pk=record.pk).update(locked_at=None)


def idempotency_keys_purge() -> int:
    """Delete keys older than IDEMPOTENCY_KEY_TTL_HOURS (scheduled). Returns how many."""
    cutoff = timezone.now() - dt.timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=cutoff).delete()
    return deleted


def idempotency_store_with_effect(response: HttpResponse | Response) -> None:
    """Inside the transaction that commits the request's effect: store `response` as the answer
    to this request's Idempotency-Key in that same transaction (B11). Does nothing for a request
    without a key. If the transaction rolls back (a deadlock retry re-runs it), so does this."""
    running = _running.get()
    if running is None:
        return
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("idempotency_store_with_effect must run inside the effect's transaction")
    idempotency_key_store(record=running.record, response=_as_stored(response))
    transaction.on_commit(lambda: setattr(running, "stored_with_effect", True))


def _as_stored(response: HttpResponse | Response) -> StoredResponse:
    if isinstance(response, Response):
        body = JSONRenderer().render(response.data).decode() if response.data is not None else ""
        return StoredResponse(status=response.status_code, body=body, content_type="application/json")
    return StoredResponse(status=response.status_code, body=response.content.decode(),
                          content_type=response.get("Content-Type", "application/json"))


def _to_http(stored: StoredResponse, *, replayed: bool, source: HttpResponse | Response | None = None) -> HttpResponse:
    response = HttpResponse(stored.body, status=stored.status, content_type=stored.content_type)
    if source is not None:
        for header in ("Retry-After", "Location"):
            if header in source:
                response[header] = source[header]
    if replayed:
        response[REPLAYED_HEADER] = "true"
    return response


def _release_after_failure(record: IdempotencyKey) -> None:
    # A lost connection left Django's connection unusable; reconnect before writing.
    # If the database is really gone, the stale-lock timeout frees the key instead.
    try:
        if not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()
        idempotency_key_release(record=record)
    except DatabaseError:
        logger.warning("could not release idempotency key; it frees itself when stale", exc_info=True)


def idempotency_run(*, request: Request, required: bool, operation: Callable[[], HttpResponse | Response]
                    ) -> HttpResponse | Response:
    key = request.headers.get(HEADER)
    if key is None or key == "":
        if required:
            raise IdempotencyKeyMissing
        return operation()
    if len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise IdempotencyKeyInvalid
    fingerprint = request_fingerprint(method=request.method, path=request.path, body=request.data)
    match = request.resolver_match
    endpoint = (f"{request.method.upper()} {match.route}"[:255] if match is not None and match.route
                else request_endpoint(method=request.method, path=request.path_info))
    claim = idempotency_key_claim(user=request.user, key=key, method=request.method, path=request.path,
                                  fingerprint=fingerprint, endpoint=endpoint)
    if claim.response is not None:
        IDEMPOTENT_REPLAYS.inc()
        return _to_http(claim.response, replayed=True)
    record = claim.record
    assert record is not None
    running = _Running(record=record)
    token = _running.set(running)
    try:
        response = operation()
    except Exception as exc:
        # Rendered here with the one error policy, so that a 4xx can be stored and replayed.
        response = exception_to_problem(exc, request)
    finally:
        _running.reset(token)
    fault_point("idempotency.answered")  # tests: the process dies between the effect and its answer
    if running.stored_with_effect:
        return response  # stored in the effect's own transaction
    stored = _as_stored(response)
    if stored.status >= 500:
        _release_after_failure(record)
        return response
    idempotency_key_store(record=record, response=stored)
    return _to_http(stored, replayed=False, source=response)


def idempotent(*, required: bool) -> Callable:
    """Decorator for an APIView method: `@idempotent(required=True) def post(self, request, ...)`."""

    def decorate(view_method: Callable) -> Callable:
        @functools.wraps(view_method)
        def wrapper(self: Any, request: Request, *args: Any, **kwargs: Any) -> HttpResponse | Response:
            return idempotency_run(request=request, required=required,
                                   operation=lambda: view_method(self, request, *args, **kwargs))

        wrapper.idempotency_required = required  # the OpenAPI schema documents the header (common/openapi.py)
        return wrapper

    return decorate
