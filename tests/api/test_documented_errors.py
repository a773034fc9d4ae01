"""The answers fuzzing does not reach (a sold-out date, a declined card, Stripe down, a throttle,
a lockout, a replay) match the schema too: each is caused for real over HTTP against a live
server and validated by schemathesis against its operation (status, content type, body with
its `code` enum, headers)."""

from __future__ import annotations

import uuid

import pytest
import requests
import schemathesis
from drf_spectacular.generators import SchemaGenerator
from rest_framework.throttling import SimpleRateThrottle

from common.tokens import api_token_issue
from tests.factories import ProductFactory, ReservationFactory, UserFactory
from tests.payments.conftest import DECLINED_AT_CHARGE, VISA, create_payment_method

pytestmark = pytest.mark.django_db(transaction=True)

RESERVATIONS = "/api/v1/reservations/"
PAY = "/api/v1/reservations/{reservation_id}/pay/"
CANCEL = "/api/v1/reservations/{reservation_id}/cancel/"
DETAIL = "/api/v1/reservations/{reservation_id}/"
LOGIN = "/api/v1/auth/token/"


@pytest.fixture(scope="module")
def documented():
    return schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True))


def assert_documented(documented, method: str, template: str, response: requests.Response) -> None:
    """The status is one the operation lists, and the answer matches what it says for it."""
    assert str(response.status_code) in documented.raw_schema["paths"][template][method.lower()]["responses"]
    documented[template][method].validate_response(response)


class Api:
    def __init__(self, base_url: str, documented, token: str | None) -> None:
        self.base_url, self.documented, self.token = base_url, documented, token

    def call(self, method: str, template: str, *, status: int, code: str | None = None, headers=None,
             **params) -> requests.Response:
        """Send, then check the answer against what the schema documents for this operation."""
        path = template.format(**{k: params.pop(k) for k in ("reservation_id",) if k in params})
        sent = {**({"Authorization": f"Token {self.token}"} if self.token else {}), **(headers or {})}
        response = requests.request(method, self.base_url + path, headers=sent, timeout=30, **params)
        assert response.status_code == status, response.text
        assert_documented(self.documented, method, template, response)
        if code is not None:
            assert response.json()["code"] == code
        return response


@pytest.fixture
def customer_api(live_server, documented, stripe_local):
    return Api(live_server.url, documented, api_token_issue(user=UserFactory()).token)


def body(product, **overrides):
    return {"product": str(product.id), "date": "2099-01-01", "quantity": 1, "guest_name": "Ada",
            "guest_email": "ada@example.com", **overrides}


def test_reservation_conflicts_and_replays_are_documented(customer_api, settings):
    settings.RESERVATION_MAX_UNPAID_HOLDS = 1
    product = ProductFactory(daily_capacity=1, booking_horizon_days=36500)
    key = {"Idempotency-Key": f"create-{uuid.uuid4()}"}

    customer_api.call("POST", RESERVATIONS, status=409, code="sold_out", json=body(product, quantity=2))
    customer_api.call("POST", RESERVATIONS, status=201, headers=key, json=body(product))
    replay = customer_api.call("POST", RESERVATIONS, status=201, headers=key, json=body(product))
    customer_api.call("POST", RESERVATIONS, status=409, code="idempotency_key_reused", headers=key,
                      json=body(product, guest_name="Bob"))
    customer_api.call("POST", RESERVATIONS, status=409, code="too_many_unpaid_holds",
                      json=body(product, date="2099-01-02"))
    customer_api.call("POST", RESERVATIONS, status=400, code="validation_error", json=body(product, quantity=0))
    customer_api.call("POST", RESERVATIONS, status=400, code="malformed_request", data=b"{",
                      headers={"Content-Type": "application/json"})
    customer_api.call("POST", RESERVATIONS, status=415, code="unsupported_media_type", data=b"x",
                      headers={"Content-Type": "text/plain"})

    assert replay.headers["Idempotent-Replayed"] == "true"


def test_pay_errors_are_documented(customer_api, stripe_local, strict_stripe):
    owner = UserFactory()
    customer_api.token = api_token_issue(user=owner).token
    reservation = ReservationFactory(user=owner)
    declined, visa = create_payment_method(stripe_local, DECLINED_AT_CHARGE), create_payment_method(stripe_local, VISA)

    def pay(status: int, code: str | None = None, *, key: str | None = None, pm: str = visa) -> requests.Response:
        return customer_api.call("POST", PAY, reservation_id=reservation.id, status=status, code=code,
                                 headers={"Idempotency-Key": key} if key is not None else {},
                                 json={"payment_method": pm})

    pay(400, "idempotency_key_missing")
    pay(400, "idempotency_key_invalid", key="k" * 256)
    declined_key = f"pay-{uuid.uuid4()}"
    first = pay(402, key=declined_key, pm=declined)
    assert pay(402, key=declined_key, pm=declined).headers["Idempotent-Replayed"] == "true"
    strict_stripe.control({"down": True})
    unavailable = pay(503, "payment_provider_unavailable", key=f"pay-{uuid.uuid4()}")
    strict_stripe.control({"down": False})
    pay(200, key=f"pay-{uuid.uuid4()}")
    pay(409, "invalid_state", key=f"pay-{uuid.uuid4()}")

    assert first.json()["code"] != ""  # Stripe's decline code, documented without an enum
    assert int(unavailable.headers["Retry-After"]) >= 1


def test_cancel_detail_and_auth_errors_are_documented(customer_api, live_server, documented):
    owner = UserFactory()
    customer_api.token = api_token_issue(user=owner).token
    mine, theirs = ReservationFactory(user=owner), ReservationFactory()

    customer_api.call("POST", CANCEL, reservation_id=mine.id, status=409, code="version_conflict",
                      json={"version": mine.version + 5})
    customer_api.call("GET", DETAIL, reservation_id=theirs.id, status=404, code="not_found")
    customer_api.call("POST", CANCEL, reservation_id=mine.id, status=200, json={})
    customer_api.call("POST", CANCEL, reservation_id=mine.id, status=409, code="invalid_state", json={})
    Api(live_server.url, documented, "not-a-token").call("GET", DETAIL, reservation_id=mine.id, status=401,
                                                         code="authentication_failed")
    Api(live_server.url, documented, None).call("GET", DETAIL, reservation_id=mine.id, status=401,
                                                code="not_authenticated")
    customer_api.call("GET", DETAIL, reservation_id=mine.id, status=406, code="not_acceptable",
                      headers={"Accept": "text/html"})


@pytest.fixture
def clean_cache():
    from django.core.cache import cache

    cache.clear()  # the throttles' counters
    yield
    cache.clear()


def test_throttling_is_documented(customer_api, monkeypatch, clean_cache):
    # DRF binds THROTTLE_RATES at import time, so the rates are patched on the class.
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"user": "1/min", "anon": "1/min"})

    customer_api.call("GET", RESERVATIONS, status=200)
    throttled = customer_api.call("GET", RESERVATIONS, status=429, code="throttled")

    assert int(throttled.headers["Retry-After"]) >= 1


def test_the_login_lockout_is_documented(live_server, documented, settings):
    settings.AXES_FAILURE_LIMIT = 2
    user = UserFactory()
    anonymous = Api(live_server.url, documented, None)

    anonymous.call("POST", LOGIN, status=400, code="validation_error",
                   json={"username": user.username, "password": "wrong"})
    locked = anonymous.call("POST", LOGIN, status=429, code="login_locked_out",
                            json={"username": user.username, "password": "wrong"})

    assert int(locked.headers["Retry-After"]) > 0
