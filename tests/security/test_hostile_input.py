"""Hostile input is the client's problem (issue "security" 5 and 7), over real HTTP.

Each of these once answered 500, logged an ERROR with a traceback and sent it to Sentry, so
anyone could raise alerts on demand. Now each is a 400 or 413 problem+json with a plain
message, one WARNING log line, and no Sentry event (the real SDK, sending to a local sink)."""

from __future__ import annotations

import json
import logging

import pytest
import sentry_sdk

from reservations.models import Reservation
from tests.security.conftest import assert_problem
from tests.support.stripe_events import signature_header

pytestmark = pytest.mark.django_db(transaction=True)

DEEP = ("[" * 5000 + "]" * 5000).encode()
DEEP_OBJECT = ('{"a":' * 5000 + "1" + "}" * 5000).encode()
HUGE_INT = b'{"quantity": ' + b"9" * 5000 + b"}"
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def no_alerts(sentry, caplog):
    """After the test: no Sentry event, no log record at ERROR or above, and some WARNING."""
    caplog.set_level(logging.WARNING)
    yield caplog
    sentry_sdk.flush(timeout=5)
    assert sentry.events() == []
    records = caplog.get_records("call")
    errors = [r for r in records if r.levelno >= logging.ERROR]
    assert errors == [], [(r.name, r.getMessage()) for r in errors]
    assert any(r.levelno == logging.WARNING for r in records), [(r.name, r.levelname) for r in records]


def _assert_plain(body: dict) -> None:
    text = json.dumps(body)
    for internal in ("sys.set_int_max_str_digits", "Traceback", "RecursionError", "line ", "char "):
        assert internal not in text, text


@pytest.mark.parametrize("payload", [DEEP, DEEP_OBJECT, HUGE_INT], ids=["deep-array", "deep-object", "huge-int"])
def test_pathological_json_is_a_400_on_every_kind_of_endpoint(http, customer, product, no_alerts, payload):
    endpoints = [
        ("POST", "/api/v1/auth/token/", None),  # anonymous
        ("POST", "/api/v1/reservations/", customer),
        ("PATCH", f"/api/v1/products/{product.pk}/", customer),
    ]
    for method, path, user in endpoints:
        response = http(method, path, user=user, data=payload, headers=JSON)
        # The customer's PATCH is refused for lack of permission before its body is read.
        expected = 403 if method == "PATCH" else 400
        _assert_plain(assert_problem(response, expected))
    assert not Reservation.objects.exists()


def test_the_parse_error_says_what_is_wrong_in_plain_words(http, customer, no_alerts):
    response = http("POST", "/api/v1/reservations/", user=customer, data=HUGE_INT, headers=JSON)

    body = assert_problem(response, 400, "malformed_request")
    assert body["detail"] == "The body is not valid JSON."


def test_json_deeper_than_any_request_needs_is_refused_before_use(http, customer, product, no_alerts):
    """Nested 40 deep parses (Python's limit is ~1,000), but no request of this API nests past a
    few levels, and later code (fingerprints, error reports) must never recurse that deep."""
    body = ('{"product": "%s", "date": "2030-01-01", "quantity": 1, "guest_name": "A", '
            '"guest_email": "a@example.com", "note": %s}' % (product.pk, "[" * 40 + "]" * 40)).encode()

    response = http("POST", "/api/v1/reservations/", user=customer, data=body, headers=JSON)

    problem = assert_problem(response, 400, "malformed_request")
    assert "nested deeper than 32 levels" in problem["detail"]
    assert not Reservation.objects.exists()


@pytest.mark.parametrize("path", ["/api/v1/auth/token/", "/webhooks/stripe/"])
def test_a_body_over_the_upload_limit_is_a_413(http, settings, no_alerts, path):
    body = b'{"username": "' + b"x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1) + b'"}'

    response = http("POST", path, data=body, headers={**JSON, "Stripe-Signature": signature_header(body)})

    assert_problem(response, 413, "request_too_large")


@pytest.mark.parametrize("payload", [b"[1,2]", b'{"data":{"object":"string"}}', b'"event"', b"{}",
                                     b'{"id": "evt_1", "type": "payment_intent.succeeded", "data": {"object": []}}'])
def test_a_signed_webhook_that_is_not_an_event_is_a_400(http, no_alerts, payload):
    response = http("POST", "/webhooks/stripe/", data=payload,
                    headers={**JSON, "Stripe-Signature": signature_header(payload)})

    assert_problem(response, 400, "invalid_webhook")


def test_a_signed_body_that_is_not_utf8_is_a_400(http, no_alerts):
    payload = b"\xff\xfe not json"
    response = http("POST", "/webhooks/stripe/", data=payload,
                    headers={**JSON, "Stripe-Signature": signature_header(payload)})

    assert_problem(response, 400)  # Stripe signs UTF-8 text: this cannot be one of its events


def test_a_forged_host_header_is_a_400_without_an_alert(http, no_alerts):
    response = http("GET", "/api/v1/products/", headers={"Host": "evil.example"})

    assert response.status_code == 400


def test_readiness_details_are_for_operators_only(http, settings, staff_user):
    settings.METRICS_ALLOWED_NETWORKS = []  # the probe comes from loopback: no network is trusted here
    settings.METRICS_TOKEN = "ops-token"

    anonymous = http("GET", "/health/ready")
    wrong_token = http("GET", "/health/ready", headers={"Authorization": "Bearer nope"})
    scraper = http("GET", "/health/ready", headers={"Authorization": "Bearer ops-token"})

    assert anonymous.json() == wrong_token.json() == {"status": "ok"}
    assert {"outbox", "reconciler"} <= set(scraper.json()["checks"])
