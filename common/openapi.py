"""How the OpenAPI schema (drf-spectacular) tells the whole truth about the API (issue 11).

`ApiAutoSchema` (DEFAULT_SCHEMA_CLASS) adds to every operation what the views do not declare
one by one, because common does it for all of them:
- the errors it can answer, as `application/problem+json` (the `Problem` component, common/errors.py),
  each status with the `code`s it can carry and an example of each. Most are derived: auth (401),
  permissions (403), path parameters and pages (404), bodies (400, 413, 415), throttles (429), the
  database (503), 406 and 500 everywhere. A view adds its domain errors next to its code:
  `error_responses = {"POST": (SoldOut, TooManyUnpaidHolds)}` (ApplicationError subclasses);
- the headers: `X-Request-ID` (request and every response), `Idempotency-Key` (where the method is
  `@idempotent`, required or not as it says), `Idempotent-Replayed` (answers that may be replays),
  `Retry-After` (429, 503 and the 409s that set it);
- `security: []` on operations without authentication (the login), and tags by resource.
Descriptions are the ones written for API users in `extend_schema(description=...)`: the views'
and serializers' docstrings are for developers and never reach the schema.

Imported by CommonConfig.ready(): the authentication extension registers itself on import."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent, get_override
from rest_framework.permissions import AllowAny, IsAuthenticated

from common.error_codes import ErrorCode
from common.errors import PROBLEM_CONTENT_TYPE, VALIDATION_DETAIL
from common.exceptions import ApplicationError
from common.idempotency import (
    HEADER as IDEMPOTENCY_HEADER,
)
from common.idempotency import (
    MAX_KEY_LENGTH,
    REPLAYED_HEADER,
    IdempotencyKeyInUse,
    IdempotencyKeyInvalid,
    IdempotencyKeyMissing,
    IdempotencyKeyReused,
)
from common.middleware import REQUEST_ID_PATTERN


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """The same scheme DRF's TokenAuthentication had: clients send the same header."""

    target_class = "common.authentication.ApiTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {"type": "apiKey", "in": "header", "name": "Authorization",
                "description": "`Authorization: Token <token>`, the token from `POST /api/v1/auth/token/`. "
                               "A missing, unknown or expired token is a 401 (`WWW-Authenticate: Token`)."}


@dataclass(frozen=True)
class ErrorDoc:
    """One error an operation can answer: its status, stable code and an example detail."""

    status: int
    code: str
    title: str
    detail: str
    retry_after: bool = False  # the answer carries Retry-After
    open_code: bool = False  # `code` is not one of ours (a card decline: Stripe's decline code)
    errors: dict[str, list[str]] | None = field(default=None, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "code", f"{self.code}")  # a plain str (ErrorCode is a StrEnum)

    @classmethod
    def of(cls, exc: type[ApplicationError]) -> ErrorDoc:
        # An error with field messages says so in `detail`, its messages are in `errors` (common/errors.py).
        detail = VALIDATION_DETAIL if exc.example_errors else exc.default_detail
        return cls(status=exc.status_code, code=exc.code, title=exc.title, detail=detail,
                   retry_after=exc.sends_retry_after, open_code=exc.open_code, errors=exc.example_errors)


# What common answers by itself (common/errors.py maps DRF's and Django's exceptions to these).
BAD_REQUEST = ErrorDoc(400, ErrorCode.BAD_REQUEST, "Bad Request", "Bad request.")
MALFORMED = ErrorDoc(400, ErrorCode.MALFORMED_REQUEST, "Bad Request", "The body is not valid JSON.")
VALIDATION = ErrorDoc(400, ErrorCode.VALIDATION_ERROR, "Bad Request", VALIDATION_DETAIL,
                      errors={"field": ["This field is required."]})
NOT_AUTHENTICATED = ErrorDoc(401, ErrorCode.NOT_AUTHENTICATED, "Unauthorized",
                             "Authentication credentials were not provided.")
AUTHENTICATION_FAILED = ErrorDoc(401, ErrorCode.AUTHENTICATION_FAILED, "Unauthorized", "Invalid token.")
PERMISSION_DENIED = ErrorDoc(403, ErrorCode.PERMISSION_DENIED, "Forbidden",
                             "You do not have permission to perform this action.")
NOT_FOUND = ErrorDoc(404, ErrorCode.NOT_FOUND, "Not Found", "Not found.")
NOT_ACCEPTABLE = ErrorDoc(406, ErrorCode.NOT_ACCEPTABLE, "Not Acceptable",
                          "Could not satisfy the request Accept header.")
TOO_LARGE = ErrorDoc(413, ErrorCode.REQUEST_TOO_LARGE, "Request Entity Too Large", "The request body is too large.")
UNSUPPORTED_MEDIA_TYPE = ErrorDoc(415, ErrorCode.UNSUPPORTED_MEDIA_TYPE, "Unsupported Media Type",
                                  'Unsupported media type "text/plain" in request.')
THROTTLED = ErrorDoc(429, ErrorCode.THROTTLED, "Too Many Requests",
                     "Request was throttled. Expected available in 7 seconds.", retry_after=True)
INTERNAL = ErrorDoc(500, ErrorCode.INTERNAL_ERROR, "Internal server error", "Internal server error")
DATABASE_UNAVAILABLE = ErrorDoc(503, ErrorCode.DATABASE_UNAVAILABLE, "Service Unavailable",
                                "The database is temporarily unavailable; retry later.", retry_after=True)

# What `str.isprintable()` (common/idempotency.py) accepts of a header value (read as Latin-1).
IDEMPOTENCY_KEY_PATTERN = r"^[\x20-\x7E\xA1-\xAC\xAE-\xFF]*$"
# Statuses a stored idempotent answer cannot have: they are answered before the operation runs.
_NEVER_REPLAYED = {401, 403, 406, 413, 415, 429}
_TAGS = (("/api/v1/auth/", "auth"), ("/api/v1/suppliers/", "catalog"), ("/api/v1/products/", "catalog"),
         ("/api/v1/reservations/", "reservations"))

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An error (RFC 9457). `code` is stable: clients branch on it, never on `detail`. "
                   "Some errors add fields of their own (e.g. `available` with `sold_out`).",
    "properties": {
        "type": {"type": "string", "description": "`urn:reserve:problem:<code>`.",
                 "example": "urn:reserve:problem:sold_out"},
        "title": {"type": "string", "description": "A short summary of the kind of error."},
        "status": {"type": "integer", "description": "The HTTP status, repeated."},
        "detail": {"type": "string", "description": "What went wrong, for people."},
        "code": {"type": "string", "description": "The stable error code.", "example": "sold_out"},
        "request_id": {"type": "string", "description": "This request's X-Request-ID: quote it to support."},
        "errors": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}},
                   "description": "Only with 400 `validation_error`: the messages per field "
                                  "(`non_field_errors` for the body as a whole)."},
    },
    "required": ["type", "title", "status", "detail", "code", "request_id"],
}


def _header(description: str, *, required: bool = False, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"schema": schema or {"type": "string"}, "required": required, "description": description}


REQUEST_ID_RESPONSE = _header("This request's id: the client's `X-Request-ID` if it sent a valid one, else a "
                              "new one. Every log line of the request carries it.", required=True)
RETRY_AFTER = _header("Seconds to wait before retrying.", required=True, schema={"type": "integer", "minimum": 0})
RETRY_AFTER_SOME = _header("With `idempotency_key_in_use` and `payment_in_progress`: seconds to wait before "
                           "retrying.", schema={"type": "integer", "minimum": 0})
REPLAYED = _header("`true` when this is the stored answer to an earlier request with the same "
                   "Idempotency-Key (nothing was done again).", schema={"type": "string", "enum": ["true"]})


class ApiAutoSchema(AutoSchema):
    def get_description(self) -> str:
        return ""  # only descriptions written for API users (extend_schema), never docstrings

    def get_tags(self) -> list[str]:
        return next(([tag] for prefix, tag in _TAGS if self.path.startswith(prefix)), ["api"])

    def _map_basic_serializer(self, serializer: Any, direction: str) -> dict[str, Any]:
        schema = super()._map_basic_serializer(serializer, direction)
        schema.pop("description", None)
        description = get_override(serializer, "description", None)
        if description:
            schema["description"] = description
        return schema

    def get_operation(self, path: str, path_regex: str, path_prefix: str, method: str,
                      registry: Any) -> dict[str, Any] | None:
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        public = not self.view.get_authenticators()
        if public:
            operation["security"] = []
        idempotency = getattr(getattr(self.view, method.lower(), None), "idempotency_required", None)
        operation["parameters"] = [*operation.get("parameters", []), *self._common_parameters(idempotency)]
        errors = self._errors(operation, public=public, idempotency=idempotency)
        problem_ref = self._problem_component()
        for status in sorted({e.status for e in errors}):
            operation["responses"].setdefault(str(status), {}).update(
                _problem_response(problem_ref, [e for e in errors if e.status == status]))
        for status, response in operation["responses"].items():
            response["description"] = response.get("description") or HTTPStatus(int(status)).phrase
            response["headers"] = {**response.get("headers", {}),
                                   **_response_headers(int(status), errors, replayable=idempotency is not None)}
        return operation

    def _common_parameters(self, idempotency: bool | None) -> list[dict[str, Any]]:
        parameters = [{
            "in": "header", "name": "X-Request-ID", "required": False, "schema": {"type": "string"},
            "description": f"Your id for this request, echoed in the response's `X-Request-ID` and in our logs. "
                           f"Only a value matching `{REQUEST_ID_PATTERN}` is kept; otherwise one is generated.",
        }]
        if idempotency is not None:
            parameters.append({
                "in": "header", "name": IDEMPOTENCY_HEADER, "required": idempotency,
                "schema": {"type": "string", "maxLength": MAX_KEY_LENGTH, "pattern": IDEMPOTENCY_KEY_PATTERN,
                           **({"minLength": 1} if idempotency else {})},
                "description": (
                    f"1-{MAX_KEY_LENGTH} printable characters (e.g. a UUID) chosen by you. "
                    + ("Required. " if idempotency else "Optional; empty means none. ")
                    + f"The request runs at most once per key (kept {settings.IDEMPOTENCY_KEY_TTL_HOURS} h): "
                      "repeating it answers the stored status and body with `Idempotent-Replayed: true`. "
                      "The same key with another body is 409 `idempotency_key_reused`; while the first "
                      "request runs, 409 `idempotency_key_in_use` with `Retry-After`. A 5xx is not stored: "
                      "retry with the same key."),
                "examples": {"uuid": {"value": "5f0c7a52-3a8e-4d0b-9a51-2f8b1f6f9e21"}},
            })
        return parameters

    def _errors(self, operation: dict[str, Any], *, public: bool, idempotency: bool | None) -> list[ErrorDoc]:
        errors = [BAD_REQUEST, NOT_ACCEPTABLE, INTERNAL, DATABASE_UNAVAILABLE]
        if "requestBody" in operation:
            errors += [MALFORMED, VALIDATION, TOO_LARGE, UNSUPPORTED_MEDIA_TYPE]
        if any(p["in"] == "query" for p in operation.get("parameters", [])):
            errors.append(VALIDATION)
        if not public:
            errors += [NOT_AUTHENTICATED, AUTHENTICATION_FAILED]
        if any(not isinstance(p, (AllowAny, IsAuthenticated)) for p in self.view.get_permissions()):
            errors.append(PERMISSION_DENIED)
        if any(p["in"] == "path" for p in operation.get("parameters", [])) or any(
                p["name"] == "page" for p in operation.get("parameters", [])):
            errors.append(NOT_FOUND)  # an unknown (or another customer's) resource, a page past the end
        if self.view.get_throttles():
            errors.append(THROTTLED)
        if idempotency is not None:
            errors += [ErrorDoc.of(IdempotencyKeyInvalid), ErrorDoc.of(IdempotencyKeyReused),
                       ErrorDoc.of(IdempotencyKeyInUse)]
            if idempotency:
                errors.append(ErrorDoc.of(IdempotencyKeyMissing))
        declared = getattr(self.view, "error_responses", {}).get(self.method, ())
        errors += [ErrorDoc.of(exc) for exc in declared]
        return list(dict.fromkeys(errors))

    def _problem_component(self) -> dict[str, str]:
        component = ResolvedComponent(name="Problem", type=ResolvedComponent.SCHEMA, object="Problem",
                                      schema=PROBLEM_SCHEMA)
        self.registry.register_on_missing(component)
        return component.ref


def _problem_response(problem_ref: dict[str, str], errors: list[ErrorDoc]) -> dict[str, Any]:
    status = errors[0].status
    codes = list(dict.fromkeys(e.code for e in errors))
    code_schema: dict[str, Any] = {"type": "string"}
    if not any(e.open_code for e in errors):
        code_schema["enum"] = codes
    lines = [f"- `{e.code}`: {e.detail}" + (" (Stripe's decline code, e.g. `insufficient_funds`, may "
                                              "stand in its place)" if e.open_code else "")
             for e in {e.code: e for e in errors}.values()]
    schema = {"allOf": [problem_ref, {"type": "object", "properties": {
        "status": {"type": "integer", "enum": [status]}, "code": code_schema}}]}
    return {
        "description": "Problem details; `code` is one of:\n" + "\n".join(lines),
        "content": {PROBLEM_CONTENT_TYPE: {"schema": schema, "examples": {
            e.code: {"summary": e.title, "value": _example(e)} for e in errors}}},
    }


def _example(error: ErrorDoc) -> dict[str, Any]:
    body: dict[str, Any] = {"type": f"urn:reserve:problem:{error.code}", "title": error.title,
                            "status": error.status, "detail": error.detail, "code": error.code,
                            "request_id": "9b2f3c1d4e5a46b7a8c9d0e1f2a3b4c5"}
    if error.errors:
        body["errors"] = error.errors
    return body


def _response_headers(status: int, errors: Iterable[ErrorDoc], *, replayable: bool) -> dict[str, Any]:
    headers = {"X-Request-ID": REQUEST_ID_RESPONSE}
    with_retry = [e for e in errors if e.status == status and e.retry_after]
    if with_retry:
        every = all(e.retry_after for e in errors if e.status == status)
        headers["Retry-After"] = RETRY_AFTER if every else RETRY_AFTER_SOME
    if replayable and status < 500 and status not in _NEVER_REPLAYED:
        headers[REPLAYED_HEADER] = REPLAYED
    return headers
