"""One error policy (E1): every API and webhook error is RFC 9457 problem+json with a stable
`code` and the `request_id`. An unexpected exception becomes a bare 500 — logged with its
traceback and sent to Sentry, never shown to the client."""

from __future__ import annotations

import json
import logging
import math
from http import HTTPStatus
from typing import Any

import sentry_sdk
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse
from django.views.defaults import page_not_found, server_error
from rest_framework import exceptions as drf

from common.error_codes import ErrorCode
from common.exceptions import ApplicationError
from common.request_context import request_id_var

logger = logging.getLogger("reserve.errors")

PROBLEM_CONTENT_TYPE = "application/problem+json"
_PROBLEM_PREFIXES = ("/api/", "/webhooks/")
# The detail of every 400 `validation_error`; the messages are in its `errors`.
VALIDATION_DETAIL = "The request has invalid fields."

_DRF_CODES: dict[type[drf.APIException], str] = {
    drf.ParseError: ErrorCode.MALFORMED_REQUEST,
    drf.ValidationError: ErrorCode.VALIDATION_ERROR,
    drf.NotAuthenticated: ErrorCode.NOT_AUTHENTICATED,
    drf.AuthenticationFailed: ErrorCode.AUTHENTICATION_FAILED,
    drf.PermissionDenied: ErrorCode.PERMISSION_DENIED,
    drf.NotFound: ErrorCode.NOT_FOUND,
    drf.MethodNotAllowed: ErrorCode.METHOD_NOT_ALLOWED,
    drf.NotAcceptable: ErrorCode.NOT_ACCEPTABLE,
    drf.UnsupportedMediaType: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    drf.Throttled: ErrorCode.THROTTLED,
}
_STATUS_CODES = {
    400: ErrorCode.BAD_REQUEST,
    401: ErrorCode.NOT_AUTHENTICATED,
    403: ErrorCode.PERMISSION_DENIED,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    429: ErrorCode.THROTTLED,
    500: ErrorCode.INTERNAL_ERROR,
    503: ErrorCode.SERVICE_UNAVAILABLE,
}


def is_problem_path(path: str) -> bool:
    return path.startswith(_PROBLEM_PREFIXES)


def problem_response(
    request: HttpRequest | None,
    *,
    status: int,
    code: str | None = None,
    detail: str | None = None,
    title: str | None = None,
    errors: Any = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> HttpResponse:
    code = code or _STATUS_CODES.get(status, "error")
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    body: dict[str, Any] = {
        "type": f"urn:reserve:problem:{code}",
        "title": title or phrase,
        "status": status,
        "detail": detail or phrase,
        "code": code,
        "request_id": getattr(request, "request_id", None) or request_id_var.get(),
    }
    if errors is not None:
        body["errors"] = errors
    if extra:
        body.update({k: v for k, v in extra.items() if k not in body})
    response = HttpResponse(json.dumps(body), status=status, content_type=PROBLEM_CONTENT_TYPE)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def internal_error_response(request: HttpRequest | None) -> HttpResponse:
    return problem_response(request, status=500, code=ErrorCode.INTERNAL_ERROR, detail="Internal server error",
                            title="Internal server error")


def _field_errors(detail: Any) -> dict[str, list[str]]:
    if isinstance(detail, dict):
        return {
            str(field): [str(m) for m in (msgs if isinstance(msgs, list) else [msgs])]
            if not isinstance(msgs, dict)
            else [json.dumps(msgs, default=str)]
            for field, msgs in detail.items()
        }
    if isinstance(detail, list):
        return {"non_field_errors": [str(m) for m in detail]}
    return {"non_field_errors": [str(detail)]}


def exception_to_problem(exc: Exception, request: HttpRequest | None) -> HttpResponse:
    if isinstance(exc, ApplicationError):
        return problem_response(request, status=exc.status_code, code=exc.code, title=exc.title,
                                detail=exc.detail, headers=exc.headers, extra=exc.extra)
    if isinstance(exc, RequestDataTooBig):
        # Hostile or broken input is the client's problem: a warning, never an error report.
        logger.warning("request body over the upload limit", extra={"path": getattr(request, "path", "")})
        return problem_response(request, status=413, code=ErrorCode.REQUEST_TOO_LARGE,
                                detail="The request body is too large.")
    if isinstance(exc, SuspiciousOperation):
        logger.warning("suspicious request refused: %s", type(exc).__name__)
        return problem_response(request, status=400, code=ErrorCode.BAD_REQUEST, detail="Bad request.")
    if isinstance(exc, Http404):
        exc = drf.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf.PermissionDenied()
    elif isinstance(exc, DjangoValidationError):
        # A service's rule (the admin shows the same error on its form): a 400 with the fields.
        exc = drf.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    if isinstance(exc, drf.APIException):
        headers: dict[str, str] = {}
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None) is not None:
            # Rounded up: "0" (a wait under a second) would invite a retry that is refused again.
            headers["Retry-After"] = "%d" % max(1, math.ceil(exc.wait))
        code = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), None)
        if isinstance(exc, drf.ValidationError):
            return problem_response(request, status=400, code=code, detail=VALIDATION_DETAIL,
                                    errors=_field_errors(exc.detail), headers=headers)
        return problem_response(request, status=exc.status_code, code=code, detail=str(exc.detail),
                                headers=headers)
    if isinstance(exc, (OperationalError, InterfaceError)):
        # Lost connection, server gone, lock wait exhausted: the transaction was rolled back
        # by the database; the client may retry and the next request reconnects (E3).
        logger.warning("database unavailable: %s", type(exc).__name__, exc_info=exc)
        return problem_response(request, status=503, code=ErrorCode.DATABASE_UNAVAILABLE,
                                detail="The database is temporarily unavailable; retry later.",
                                headers={"Retry-After": "1"})
    if isinstance(exc, DatabaseError):
        logger.error("database error", exc_info=exc)
        sentry_sdk.capture_exception(exc)
        return internal_error_response(request)
    logger.error("unhandled exception", exc_info=exc)
    sentry_sdk.capture_exception(exc)
    return internal_error_response(request)


def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> HttpResponse:
    """DRF EXCEPTION_HANDLER: handles every exception raised in an API view, expected or not."""
    return exception_to_problem(exc, context.get("request"))


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if is_problem_path(request.path):
        return problem_response(request, status=404)
    return page_not_found(request, exception)


def handler500(request: HttpRequest) -> HttpResponse:
    if is_problem_path(request.path):
        return internal_error_response(request)
    return server_error(request)
