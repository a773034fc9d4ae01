"""The unpaid-holds count of a create reads the customer's holds, not their history (issue
"performance"). Every create counts it under the customer's row lock, so a count that grew with
the customer's past reservations made each of their creates, and the next one waiting on that
lock, slower with every booking they ever made."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.utils import timezone

from reservations.models import Reservation, ReservationStatus
from reservations.services import reservation_create
from tests.factories import ReservationFactory, UserFactory
from tests.outbox.test_claim_plan import _rows_read

HISTORY = 300
UNPAID = 2


@pytest.mark.django_db
def test_the_holds_count_reads_the_unpaid_holds_not_the_customers_history(customer, product):
    expired_at = timezone.now() - dt.timedelta(hours=1)
    past = [ReservationFactory.build(user=customer, product=product, status=status, expires_at=expired_at)
            for status in (ReservationStatus.CONFIRMED, ReservationStatus.EXPIRED, ReservationStatus.CANCELLED)
            for _ in range(HISTORY // 3)]
    unpaid = ReservationFactory.build_batch(UNPAID, user=customer, product=product)
    others = ReservationFactory.build_batch(HISTORY, user=UserFactory(), product=product)  # holds, not ours
    Reservation.objects.bulk_create(past + unpaid + others)
    counts: list[tuple[str, object]] = []

    def record(execute, sql, params, many, context):
        if sql.lstrip().upper().startswith("SELECT COUNT"):
            counts.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        reservation_create(user=customer, product=product, date=timezone.localdate() + dt.timedelta(days=7),
                           quantity=1, guest_name="Ada", guest_email="ada@example.test")

    [(sql, params)] = counts
    assert "`reservations_reservation`" in sql
    # The two unpaid holds (and at most the index's next entry): not the customer's 300 past
    # reservations (the customer's index), nor the 300 holds of others (the expiry's index).
    assert _rows_read(sql, params) == [pytest.approx(UNPAID + 1, abs=1)]


@pytest.mark.django_db
def test_a_page_of_the_list_in_one_status_reads_the_page_not_every_customers_history(api, customer, product):
    """The list filtered by status, newest first, is read in the order of the customer's
    (user, status, created_at, id) index: a page of 20 reads about 21 rows. With the holds
    count's earlier (user, status, expires_at) index, MariaDB walked created_at through every
    customer's reservations instead (8,034 rows read for one page of 21, with 10,000 rows)."""
    statuses = [ReservationStatus.CONFIRMED] * 6 + [ReservationStatus.EXPIRED] * 3 + [ReservationStatus.CANCELLED]
    users = [customer, *(UserFactory() for _ in range(3))]
    Reservation.objects.bulk_create([ReservationFactory.build(user=user, product=product, status=statuses[i % 10])
                                     for user in users for i in range(HISTORY * 2)])
    pages: list[tuple[str, object]] = []

    def record(execute, sql, params, many, context):
        if "ORDER BY" in sql and "LIMIT" in sql:
            pages.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        response = api.get("/api/v1/reservations/?status=CONFIRMED&page=2")

    assert response.status_code == 200
    assert len(response.json()["results"]) == 20
    [(sql, params)] = pages
    assert _rows_read(sql, params)[0] <= 45  # two pages' worth, not the 2,400 reservations
