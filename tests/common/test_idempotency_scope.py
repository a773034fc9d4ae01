"""B1: keys are scoped by user *and endpoint*; a client that reuses one key across two
different operations (create, then pay) gets both done, each replayed on its own."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from common.models import IdempotencyKey
from payments.models import Payment, PaymentStatus
from tests.payments.conftest import create_payment_method

pytestmark = pytest.mark.django_db


def test_the_same_key_for_create_then_pay_works_for_both(api, product, stripe_local):
    visa = create_payment_method(stripe_local)
    body = {"product": str(product.id), "date": (timezone.localdate() + dt.timedelta(days=3)).isoformat(),
            "quantity": 1, "guest_name": "Grace Hopper", "guest_email": "grace@example.test"}

    created = api.post("/api/v1/reservations/", body, format="json", HTTP_IDEMPOTENCY_KEY="order-7")
    assert created.status_code == 201, created.content
    pay_path = f"/api/v1/reservations/{created.json()['id']}/pay/"
    paid = api.post(pay_path, {"payment_method": visa}, format="json", HTTP_IDEMPOTENCY_KEY="order-7")

    assert paid.status_code == 200, paid.content
    assert "Idempotent-Replayed" not in paid
    assert Payment.objects.get().status == PaymentStatus.SUCCEEDED
    # Each endpoint still replays its own stored answer for that key.
    create_again = api.post("/api/v1/reservations/", body, format="json", HTTP_IDEMPOTENCY_KEY="order-7")
    pay_again = api.post(pay_path, {"payment_method": visa}, format="json", HTTP_IDEMPOTENCY_KEY="order-7")
    assert (create_again.status_code, create_again["Idempotent-Replayed"]) == (201, "true")
    assert create_again.json()["id"] == created.json()["id"]
    assert (pay_again.status_code, pay_again["Idempotent-Replayed"]) == (200, "true")
    assert IdempotencyKey.objects.filter(key="order-7").count() == 2


def test_the_same_key_on_the_same_endpoint_for_another_resource_is_still_reused(api, product, stripe_local):
    """The scope is the endpoint (route), not the URL: paying reservation B with the key that
    paid reservation A is a different request with that key, 409."""
    visa = create_payment_method(stripe_local)
    ids = []
    for _ in range(2):
        body = {"product": str(product.id), "date": (timezone.localdate() + dt.timedelta(days=3)).isoformat(),
                "quantity": 1, "guest_name": "Grace Hopper", "guest_email": "grace@example.test"}
        ids.append(api.post("/api/v1/reservations/", body, format="json").json()["id"])

    first = api.post(f"/api/v1/reservations/{ids[0]}/pay/", {"payment_method": visa}, format="json",
                     HTTP_IDEMPOTENCY_KEY="pay-once")
    second = api.post(f"/api/v1/reservations/{ids[1]}/pay/", {"payment_method": visa}, format="json",
                      HTTP_IDEMPOTENCY_KEY="pay-once")

    assert first.status_code == 200
    assert second.status_code == 409
    assert second.json()["code"] == "idempotency_key_reused"
