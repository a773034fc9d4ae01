from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from reservations.models import Reservation, ReservationEvent, ReservationStatus
from tests.conftest import client_for
from tests.factories import ReservationFactory

pytestmark = pytest.mark.django_db


def _body(product, **overrides):
    return {
        "product": str(product.id),
        "date": (timezone.localdate() + dt.timedelta(days=3)).isoformat(),
        "quantity": 2,
        "guest_name": "Grace Hopper",
        "guest_email": "grace@example.test",
        **overrides,
    }


def test_create_computes_amount_on_the_server_and_starts_the_timeline(api, product):
    response = api.post("/api/v1/reservations/", _body(product, amount=1), format="json")

    assert response.status_code == 201, response.content
    data = response.json()
    assert data["amount"] == product.unit_amount * 2
    assert data["currency"] == "eur"
    assert data["status"] == "PENDING_PAYMENT"
    assert data["supplier_status"] == "NOT_REQUESTED"
    assert data["code"].startswith("R-")
    assert data["version"] == 1
    assert data["payment"] is None
    assert response["X-Request-ID"]
    events = api.get(f"/api/v1/reservations/{data['id']}/events/").json()
    assert [(e["from_status"], e["to_status"], e["actor"]) for e in events] == [("", "PENDING_PAYMENT", "customer")]


def test_list_shows_only_own_reservations_newest_first_and_filters_by_status(api, customer, other_customer, product):
    older = ReservationFactory(user=customer, product=product)
    newer = ReservationFactory(user=customer, product=product, status=ReservationStatus.CANCELLED)
    ReservationFactory(user=other_customer, product=product)

    listing = api.get("/api/v1/reservations/").json()
    assert [r["id"] for r in listing["results"]] == [str(newer.id), str(older.id)]
    assert listing["count"] == 2
    cancelled = api.get("/api/v1/reservations/?status=CANCELLED").json()
    assert [r["id"] for r in cancelled["results"]] == [str(newer.id)]
    bad = api.get("/api/v1/reservations/?status=NOPE")
    assert bad.status_code == 400
    assert bad["Content-Type"] == "application/problem+json"


def test_another_customers_reservation_is_404_everywhere(api, other_customer, product):
    theirs = ReservationFactory(user=other_customer, product=product)
    for method, path in [
        ("get", f"/api/v1/reservations/{theirs.id}/"),
        ("get", f"/api/v1/reservations/{theirs.id}/events/"),
        ("post", f"/api/v1/reservations/{theirs.id}/cancel/"),
    ]:
        response = getattr(api, method)(path, format="json")
        assert response.status_code == 404, path
        assert response.json()["code"] == "not_found"
    theirs.refresh_from_db()
    assert theirs.status == ReservationStatus.PENDING_PAYMENT


def test_unknown_reservation_is_404(api):
    response = api.get(f"/api/v1/reservations/{uuid.uuid4()}/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"


def test_no_token_is_401_with_www_authenticate(product):
    response = APIClient().get("/api/v1/reservations/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    body = response.json()
    assert body["code"] == "not_authenticated"
    assert body["request_id"] == response["X-Request-ID"]


def test_bad_token_is_401():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    response = client.get("/api/v1/reservations/")
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


def test_token_endpoint_issues_a_token_that_works(customer, product):
    response = APIClient().post("/api/v1/auth/token/", {"username": customer.username, "password": "pass-word-123"},
                                format="json")
    assert response.status_code == 200
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    assert client.get("/api/v1/reservations/").status_code == 200
    wrong = APIClient().post("/api/v1/auth/token/", {"username": customer.username, "password": "nope"},
                             format="json")
    assert wrong.status_code == 400
    assert wrong["Content-Type"] == "application/problem+json"


def test_cancel_unpaid_releases_the_hold_and_records_the_transition(api, limited_product):
    created = api.post("/api/v1/reservations/", _body(limited_product, quantity=5), format="json").json()
    assert api.post("/api/v1/reservations/", _body(limited_product, quantity=1), format="json").status_code == 409

    response = api.post(f"/api/v1/reservations/{created['id']}/cancel/", {}, format="json")

    assert response.status_code == 200
    assert response.json()["status"] == "CANCELLED"
    assert response.json()["version"] == 2
    assert api.post("/api/v1/reservations/", _body(limited_product, quantity=5), format="json").status_code == 201
    timeline = api.get(f"/api/v1/reservations/{created['id']}/events/").json()
    assert [(e["from_status"], e["to_status"]) for e in timeline] == [
        ("", "PENDING_PAYMENT"), ("PENDING_PAYMENT", "CANCELLED")]


def test_cancelling_twice_is_an_illegal_transition(api, product):
    created = api.post("/api/v1/reservations/", _body(product), format="json").json()
    assert api.post(f"/api/v1/reservations/{created['id']}/cancel/", {}, format="json").status_code == 200

    again = api.post(f"/api/v1/reservations/{created['id']}/cancel/", {}, format="json")

    assert again.status_code == 409
    assert again.json()["code"] == "invalid_state"
    assert Reservation.objects.get(pk=created["id"]).events.count() == 2


def test_expired_reservation_cannot_be_cancelled(api, customer, product):
    reservation = ReservationFactory(user=customer, product=product, status=ReservationStatus.EXPIRED)
    response = api.post(f"/api/v1/reservations/{reservation.id}/cancel/", {}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "invalid_state"


def test_cancel_with_a_stale_version_is_refused_and_changes_nothing(api, product):
    created = api.post("/api/v1/reservations/", _body(product), format="json").json()
    Reservation.objects.filter(pk=created["id"]).update(version=2)  # someone else wrote meanwhile

    response = api.post(f"/api/v1/reservations/{created['id']}/cancel/", {"version": 1}, format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "version_conflict"
    assert Reservation.objects.get(pk=created["id"]).status == ReservationStatus.PENDING_PAYMENT
    assert ReservationEvent.objects.filter(reservation_id=created["id"]).count() == 1


def test_inactive_product_cannot_be_reserved(api, product):
    product.active = False
    product.save()
    response = api.post("/api/v1/reservations/", _body(product), format="json")
    assert response.status_code == 400
    assert "product" in response.json()["errors"]


def test_staff_member_is_a_customer_like_any_other_for_reservations(staff_user, customer, product):
    theirs = ReservationFactory(user=customer, product=product)
    assert client_for(staff_user).get(f"/api/v1/reservations/{theirs.id}/").status_code == 404


def test_a_page_of_the_list_is_read_in_index_order_not_sorted(api, customer, other_customer, product,
                                                              django_assert_num_queries):
    """The page query (newest first, id as tie-break) is served by the customer's index: its
    plan has no filesort, so a page costs the same whatever the customer's history."""
    for user in (customer, other_customer):
        ReservationFactory.create_batch(40, user=user, product=product)
    with django_assert_num_queries(4) as captured:
        assert len(api.get("/api/v1/reservations/?page=2").json()["results"]) == 20
    [page_sql] = [q["sql"] for q in captured.captured_queries if "ORDER BY" in q["sql"] and "LIMIT" in q["sql"]]
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + page_sql)
        columns = [column[0] for column in cursor.description]
        [plan] = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    assert plan["key"] == "reservation_user_newest"
    assert "filesort" not in (plan["Extra"] or "")


def test_the_list_costs_the_same_queries_for_1_and_20_rows(api, customer, product, django_assert_num_queries):
    """The list embeds each row's newest payment from one prefetch: no query per row."""
    from payments.models import Payment

    def rows(count: int) -> None:
        for reservation in [ReservationFactory(user=customer, product=product) for _ in range(count)]:
            Payment.objects.create(reservation=reservation, amount=reservation.amount, currency=reservation.currency)

    rows(1)
    with django_assert_num_queries(4) as one:  # token, count, page, payments
        assert len(api.get("/api/v1/reservations/").json()["results"]) == 1
    rows(19)
    with django_assert_num_queries(len(one.captured_queries)):
        assert len(api.get("/api/v1/reservations/").json()["results"]) == 20


def test_a_reservation_with_payments_is_read_with_them_in_one_query(api, customer, other_customer, product,
                                                                    django_assert_num_queries):
    """A client polls GET after paying: the reservation and its payments come in one join (the
    newest payment shown); without payments, the reservation alone; another's is a 404 either way."""
    from payments.models import Payment, PaymentStatus

    reservation = ReservationFactory(user=customer, product=product)
    with django_assert_num_queries(3):  # token, the join (nothing), the reservation
        assert api.get(f"/api/v1/reservations/{reservation.id}/").json()["payment"] is None
    older = Payment.objects.create(reservation=reservation, amount=reservation.amount, currency=reservation.currency,
                                   status=PaymentStatus.FAILED)
    newer = Payment.objects.create(reservation=reservation, amount=reservation.amount, currency=reservation.currency,
                                   status=PaymentStatus.SUCCEEDED)
    Payment.objects.filter(pk=older.pk).update(created_at=newer.created_at - dt.timedelta(seconds=1))
    with django_assert_num_queries(2):  # token, the join
        body = api.get(f"/api/v1/reservations/{reservation.id}/").json()
    assert body["id"] == str(reservation.id)
    assert body["payment"]["id"] == str(newer.id)
    assert client_for(other_customer).get(f"/api/v1/reservations/{reservation.id}/").status_code == 404
