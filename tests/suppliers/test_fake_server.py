"""The fake supplier itself: faults per product, idempotency, control endpoints."""

from __future__ import annotations

import requests

HEADERS = {"Authorization": "Bearer k", "Idempotency-Key": "key-1"}
BODY = {"reference": "R-1", "product_code": "P-9", "date": "2030-01-01", "quantity": 1, "guest_name": "A"}


def test_fail_then_confirm_counts_per_key(fake_supplier_server):
    fake = fake_supplier_server
    fake.reset()
    fake.set_mode("P-9", "fail_then_confirm:2")

    codes = [requests.post(f"{fake.base_url}/bookings", json=BODY, headers=HEADERS, timeout=5).status_code
             for _ in range(4)]

    assert codes == [503, 503, 201, 201]
    assert len(fake.bookings()) == 1
    assert fake.state()["key_requests"] == {"key-1": 4}


def test_missing_bearer_is_401(fake_supplier_server):
    fake = fake_supplier_server
    fake.reset()

    response = requests.post(f"{fake.base_url}/bookings", json=BODY, headers={"Idempotency-Key": "x"}, timeout=5)

    assert response.status_code == 401
    assert fake.bookings() == []


def test_product_code_prefix_selects_a_fault(fake_supplier_server):
    fake = fake_supplier_server
    fake.reset()

    response = requests.post(f"{fake.base_url}/bookings", json={**BODY, "product_code": "REJECT-1"},
                             headers=HEADERS, timeout=5)

    assert (response.status_code, response.json()) == (409, {"error": "no_availability"})
