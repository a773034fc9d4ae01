"""The fake supplier itself: faults per product, idempotency, control endpoints."""

from __future__ import annotations

import pytest
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


def _book(fake, key: str, reference: str = "R-1") -> dict:
    response = requests.post(f"{fake.base_url}/bookings", json={**BODY, "reference": reference},
                             headers={**HEADERS, "Idempotency-Key": key}, timeout=5)
    assert response.status_code == 201
    return response.json()


def test_bookings_are_looked_up_by_id_and_by_reference(fake_supplier_server):
    fake = fake_supplier_server
    fake.reset()
    first, _ = _book(fake, "k1", "R-A"), _book(fake, "k2", "R-B")
    requests.delete(f"{fake.base_url}/bookings/{first['booking_id']}", headers=HEADERS, timeout=5)

    by_id = requests.get(f"{fake.base_url}/bookings/{first['booking_id']}", headers=HEADERS, timeout=5)
    by_reference = requests.get(f"{fake.base_url}/bookings", params={"reference": "R-A"}, headers=HEADERS, timeout=5)
    unknown = requests.get(f"{fake.base_url}/bookings/bk_unknown", headers=HEADERS, timeout=5)

    assert by_id.json() == {"booking_id": first["booking_id"], "reference": "R-A", "status": "CANCELLED",
                            "confirmation_code": first["confirmation_code"]}
    assert [b["booking_id"] for b in by_reference.json()["bookings"]] == [first["booking_id"]]
    assert unknown.status_code == 404
    assert requests.get(f"{fake.base_url}/bookings", params={"reference": "R-A"}, timeout=5).status_code == 401


def test_an_override_puts_every_endpoint_down_whatever_the_product(fake_supplier_server):
    fake = fake_supplier_server
    fake.reset()
    fake.control(override="down")

    with pytest.raises(requests.ConnectionError):
        requests.post(f"{fake.base_url}/bookings", json=BODY, headers=HEADERS, timeout=5)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{fake.base_url}/bookings", params={"reference": "R-1"}, headers=HEADERS, timeout=5)
    fake.control(override="fail")
    failed = requests.post(f"{fake.base_url}/bookings", json=BODY, headers=HEADERS, timeout=5).status_code
    fake.control(override=None)
    recovered = requests.post(f"{fake.base_url}/bookings", json=BODY, headers=HEADERS, timeout=5).status_code

    assert (failed, recovered) == (503, 201)
    assert len(fake.bookings()) == 1


def test_rate_limited_then_confirm_answers_429_first(fake_supplier_server):
    fake = fake_supplier_server
    fake.reset()
    fake.set_mode("P-9", "rate_limited_then_confirm:1")

    codes = [requests.post(f"{fake.base_url}/bookings", json=BODY, headers=HEADERS, timeout=5).status_code
             for _ in range(2)]

    assert codes == [429, 201]


def test_flapping_fails_with_5xx_and_429_repeatably(fake_supplier_server):
    fake = fake_supplier_server
    runs = []
    for _ in range(2):
        fake.reset()
        fake.set_mode("P-9", "flap:0.5")
        runs.append([requests.post(f"{fake.base_url}/bookings", json=BODY,
                                   headers={**HEADERS, "Idempotency-Key": f"flap-{i}"}, timeout=5).status_code
                     for i in range(40)])

    assert runs[0] == runs[1]  # a hash, not a clock: a run can be repeated
    assert {429, 503, 201} <= set(runs[0])
