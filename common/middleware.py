from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable

import sentry_sdk
from django.http import HttpRequest, HttpResponse
from django.utils.functional import SimpleLazyObject, empty

from common.errors import is_problem_path, problem_response
from common.request_context import request_id_var, reservation_id_var

REQUEST_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"
_VALID_REQUEST_ID = re.compile(REQUEST_ID_PATTERN)


class RequestIdMiddleware:
    """Echoes a sane client X-Request-ID or makes one; every log line of the request carries it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        sentry_sdk.set_tag("request_id", request_id)  # on this request's isolation scope
        token = request_id_var.set(request_id)
        reservation_token = reservation_id_var.set(None)
        try:
            response = self.get_response(request)
        finally:
            reservation_id_var.reset(reservation_token)
            request_id_var.reset(token)
        response["X-Request-ID"] = request_id
        return response

    def process_view(self, request: HttpRequest, view_func: Callable, view_args: tuple, view_kwargs: dict) -> None:
        # /reservations/{reservation_id}/…: every log line of the request names the reservation.
        if "reservation_id" in view_kwargs:
            reservation_id_var.set(str(view_kwargs["reservation_id"]))


access_logger = logging.getLogger("reserve.access")


class AccessLogMiddleware:
    """One JSON line per request (F4): method, path, status, duration_ms, request_id (added
    by common.logging from the context) and the user id when authenticated (session or API
    token: DRF sets the user on the underlying request). No query string, no body: they
    may carry personal data."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        status = 500
        try:
            response = self.get_response(request)
            status = response.status_code
            return response
        finally:
            access_logger.info("request", extra={
                "method": request.method, "path": request.path, "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                "user_id": _resolved_user_id(request),
            })


def _resolved_user_id(request: HttpRequest) -> int | None:
    """The user the request was served as, if the request looked it up; never a database
    query of its own (a health probe must not load a session to be logged)."""
    user = request.__dict__.get("user")
    if isinstance(user, SimpleLazyObject) and user._wrapped is empty:
        return None
    return user.pk if user is not None and user.is_authenticated else None


class ProblemDetailsMiddleware:
    """Turns Django's own HTML error pages (404 from the URL resolver, 405, CSRF 403) under
    /api/ and /webhooks/ into problem+json, so clients only ever parse one error format."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code >= 400
            and is_problem_path(request.path)
            and not response.get("Content-Type", "").startswith(("application/problem+json", "application/json"))
        ):
            problem = problem_response(request, status=response.status_code)
            for header in ("Allow", "Retry-After", "WWW-Authenticate"):
                if header in response:
                    problem[header] = response[header]
            return problem
        return response
