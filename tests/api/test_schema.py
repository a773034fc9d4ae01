"""The OpenAPI schema (common/openapi.py) documents what the API really does: errors with their
codes, the headers, who may call what. Fast: the schema is generated in-process."""

from __future__ import annotations

import inspect

import pytest
from django.core.management import call_command
from drf_spectacular.generators import SchemaGenerator
from rest_framework.views import APIView

from common.error_codes import ErrorCode

PAY = ("/api/v1/reservations/{reservation_id}/pay/", "post")
CREATE = ("/api/v1/reservations/", "post")
LOGIN = ("/api/v1/auth/token/", "post")


@pytest.fixture(scope="module")
def schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def operations(schema: dict):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def op(schema: dict, where: tuple[str, str]) -> dict:
    return schema["paths"][where[0]][where[1]]


def header(operation: dict, name: str) -> dict:
    return next(p for p in operation["parameters"] if p["in"] == "header" and p["name"] == name)


def codes(operation: dict, status: int) -> list[str]:
    schema = operation["responses"][str(status)]["content"]["application/problem+json"]["schema"]
    return schema["allOf"][1]["properties"]["code"].get("enum", [])


def test_schema_validates_without_warnings(tmp_path):
    # --fail-on-warn: a warning (an unresolvable field, a name collision) fails the command.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert (tmp_path / "schema.yaml").read_text().startswith("openapi: 3.0.3")


def test_pay_requires_an_idempotency_key_of_at_most_255_characters(schema):
    key = header(op(schema, PAY), "Idempotency-Key")

    assert key["required"] is True
    assert key["schema"] == {"type": "string", "maxLength": 255, "minLength": 1,
                             "pattern": r"^[\x20-\x7E\xA1-\xAC\xAE-\xFF]*$"}


def test_pay_lists_its_error_codes_per_status(schema):
    pay = op(schema, PAY)

    assert {"validation_error", "idempotency_key_missing", "idempotency_key_invalid"} <= set(codes(pay, 400))
    assert set(codes(pay, 409)) == {ErrorCode.INVALID_STATE, ErrorCode.PAYMENT_IN_PROGRESS,
                                    ErrorCode.IDEMPOTENCY_KEY_REUSED, ErrorCode.IDEMPOTENCY_KEY_IN_USE}
    assert set(codes(pay, 503)) == {ErrorCode.PAYMENT_PROVIDER_UNAVAILABLE, ErrorCode.DATABASE_UNAVAILABLE}
    # A decline carries Stripe's own code: documented, not enumerated.
    assert codes(pay, 402) == []
    assert "card_declined" in pay["responses"]["402"]["content"]["application/problem+json"]["examples"]
    assert pay["responses"]["503"]["headers"]["Retry-After"]["required"] is True
    assert pay["responses"]["409"]["headers"]["Retry-After"]["required"] is False  # only some 409s
    assert "Idempotent-Replayed" in pay["responses"]["200"]["headers"]


def test_reservation_create_takes_an_optional_key_and_lists_its_conflicts(schema):
    create = op(schema, CREATE)

    assert header(create, "Idempotency-Key")["required"] is False
    assert {"sold_out", "too_many_unpaid_holds", "product_unavailable", "idempotency_key_reused",
            "idempotency_key_in_use"} == set(codes(create, 409))
    assert "429" in create["responses"]  # its own per-user throttle


def test_the_login_is_public_and_documents_the_lockout(schema):
    login = op(schema, LOGIN)

    assert login["security"] == []
    assert "401" not in login["responses"]
    assert set(codes(login, 429)) == {"throttled", "login_locked_out"}
    assert login["responses"]["429"]["headers"]["Retry-After"]["required"] is True


def test_every_other_operation_needs_a_token_and_documents_401(schema):
    for path, method, operation in operations(schema):
        if (path, method) == LOGIN:
            continue
        assert operation["security"] == [{"tokenAuth": []}], (path, method)
        assert set(codes(operation, 401)) == {"not_authenticated", "authentication_failed"}, (path, method)


def test_every_response_carries_x_request_id_and_every_error_is_a_problem(schema):
    for path, method, operation in operations(schema):
        assert header(operation, "X-Request-ID")["required"] is False
        for status, response in operation["responses"].items():
            assert response["headers"]["X-Request-ID"]["required"] is True, (path, method, status)
            if int(status) >= 400:
                assert list(response["content"]) == ["application/problem+json"], (path, method, status)
        assert {"406", "500", "503"} <= set(operation["responses"]), (path, method)


def test_catalog_writes_document_403_and_the_version_precondition(schema):
    patch = op(schema, ("/api/v1/products/{id}/", "patch"))

    assert codes(patch, 403) == ["permission_denied"]
    assert codes(patch, 409) == ["version_conflict"]
    body = schema["components"]["schemas"]["PatchedProductRequest"]["properties"]
    assert body["version"] == {"type": "integer", "minimum": 1, "description": body["version"]["description"]}


def test_the_stripe_webhook_stays_out_of_the_schema(schema):
    assert not [path for path in schema["paths"] if path.startswith("/webhooks/")]


def test_descriptions_are_written_for_api_users_not_docstrings(schema):
    from django.urls import get_resolver

    docstrings = set()
    for pattern in get_resolver().url_patterns:
        for view in _views(pattern):
            docstrings.add(inspect.getdoc(view))
    docstrings.discard(None)
    texts = [op.get("description", "") for _, _, op in operations(schema)]
    texts += [c.get("description", "") for c in schema["components"]["schemas"].values()]
    assert docstrings
    for text in texts:
        assert "api.md" not in text
        assert not [doc for doc in docstrings if doc and doc.splitlines()[0] in text]
    for path, method, operation in operations(schema):
        assert operation["summary"], (path, method)
        assert operation["description"], (path, method)


def _views(pattern):
    if hasattr(pattern, "url_patterns"):
        for child in pattern.url_patterns:
            yield from _views(child)
        return
    view = getattr(pattern.callback, "cls", None)
    if view is not None and issubclass(view, APIView):
        yield view
        for name in ("get", "post", "patch"):
            if hasattr(view, name):
                yield getattr(view, name)
