"""The idempotency mechanism on its second user, reservation create (key optional there),
plus the stale-lock, in-use and purge rules."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from common.idempotency import idempotency_key_claim, idempotency_keys_purge, request_fingerprint
from common.models import IdempotencyKey
from reservations.models import Reservation

pytestmark = pytest.mark.django_db


def _body(product) -> dict:
    return {"product": str(product.id), "date": (timezone.localdate() + dt.timedelta(days=3)).isoformat(),
            "quantity": 1, "guest_name": "Grace Hopper", "guest_email": "grace@example.test"}


def _create(api, product, *, key=None, **overrides):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return api.post("/api/v1/reservations/", {**_body(product), **overrides}, format="json", **headers)


def test_create_with_a_key_is_replayed_not_repeated(api, product):
    first = _create(api, product, key="create-1")
    again = _create(api, product, key="create-1")

    assert (first.status_code, again.status_code) == (201, 201)
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert Reservation.objects.count() == 1


def test_create_without_a_key_still_works(api, product):
    assert _create(api, product).status_code == 201
    assert _create(api, product).status_code == 201
    assert Reservation.objects.count() == 2


def test_create_same_key_other_body_is_409_reused(api, product):
    _create(api, product, key="create-2")
    response = _create(api, product, key="create-2", quantity=2)
    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_key_reused"


def test_keys_are_scoped_per_user(api, other_customer, product):
    from tests.conftest import client_for

    assert _create(api, product, key="shared").status_code == 201
    theirs = _create(client_for(other_customer), product, key="shared")
    assert theirs.status_code == 201
    assert "Idempotent-Replayed" not in theirs
    assert Reservation.objects.count() == 2


def test_a_key_in_use_is_409_with_retry_after(api, customer, product):
    path = "/api/v1/reservations/"
    # A first request with this key is still running (its row is locked now).
    idempotency_key_claim(user=customer, key="busy", method="POST", path=path,
                          fingerprint=request_fingerprint(method="POST", path=path, body=_body(product)))

    response = _create(api, product, key="busy")

    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_key_in_use"
    assert int(response["Retry-After"]) >= 1
    assert not Reservation.objects.exists()


def test_a_lock_left_by_a_crashed_request_is_taken_over_when_stale(api, customer, product, settings):
    path = "/api/v1/reservations/"
    claim = idempotency_key_claim(user=customer, key="crashed", method="POST", path=path,
                                  fingerprint=request_fingerprint(method="POST", path=path, body=_body(product)))
    IdempotencyKey.objects.filter(pk=claim.record.pk).update(
        locked_at=timezone.now() - dt.timedelta(seconds=settings.IDEMPOTENCY_LOCK_STALE_SECONDS + 1))

    response = _create(api, product, key="crashed")

    assert response.status_code == 201
    stored = IdempotencyKey.objects.get(pk=claim.record.pk)
    assert (stored.response_code, stored.locked_at) == (201, None)


def test_a_validation_error_is_stored_and_replayed(api, product):
    first = _create(api, product, key="bad", quantity=99)
    again = _create(api, product, key="bad", quantity=99)
    assert (first.status_code, again.status_code) == (400, 400)
    assert again["Idempotent-Replayed"] == "true"
    assert again["Content-Type"] == "application/problem+json"


def test_purge_deletes_keys_older_than_the_ttl(customer, settings):
    old = IdempotencyKey.objects.create(user=customer, key="old", request_method="POST", request_path="/x",
                                        request_fingerprint="f")
    IdempotencyKey.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - dt.timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS, minutes=1))
    IdempotencyKey.objects.create(user=customer, key="new", request_method="POST", request_path="/x",
                                  request_fingerprint="f")

    assert idempotency_keys_purge() == 1
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["new"]


@pytest.mark.parametrize(("first", "second"), [("AbC-1", "abc-1"), ("café-1", "cafe-1"), ("key ", "key")])
def test_keys_compare_byte_for_byte(api, product, first, second):
    """MariaDB's default collation folds case, accents and trailing spaces: the key column is binary."""
    one = _create(api, product, key=first)
    other = _create(api, product, key=second)

    assert (one.status_code, other.status_code) == (201, 201)
    assert "Idempotent-Replayed" not in other
    assert one.json()["id"] != other.json()["id"]
    assert Reservation.objects.count() == 2
