from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from common.errors import is_problem_path, problem_response
from common.request_context import request_id_var, reservation_id_var

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestIdMiddleware:
    """Echoes a sane client X-Request-ID or makes one; every log line of the request carries it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
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
