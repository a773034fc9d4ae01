"""The expiry's read of due holds costs the same whatever the reservations' history: every
reservation ever made keeps an `expires_at` in the past, and a read along that column's own
index walked through all of them (paid, expired, cancelled) before the unpaid ones."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.utils import timezone

from reservations import expiry
from reservations.models import Reservation, ReservationStatus
from tests.factories import ProductFactory, UserFactory

HISTORY = 3000
HOLDS = 1000  # with a handful of due holds the database sorted them instead (cheap either way)


def _reservations(count: int, *, status: str, expires_at: dt.datetime, product, user) -> None:
    Reservation.objects.bulk_create(
        [Reservation(user=user, product=product, date=timezone.localdate() + dt.timedelta(days=3), quantity=1,
                     amount=product.unit_amount, currency=product.currency, guest_name="G",
                     guest_email="g@example.test", status=status,
                     expires_at=expires_at + dt.timedelta(microseconds=i)) for i in range(count)],
        batch_size=1000)


@pytest.mark.django_db
def test_the_due_holds_are_read_without_walking_the_history():
    product, user, now = ProductFactory(), UserFactory(), timezone.now()
    _reservations(HISTORY, status=ReservationStatus.CONFIRMED, expires_at=now - dt.timedelta(days=2),
                  product=product, user=user)
    _reservations(HOLDS, status=ReservationStatus.PENDING_PAYMENT, expires_at=now - dt.timedelta(minutes=1),
                  product=product, user=user)
    sql, params = expiry._holds_run_out(now)[:expiry.BATCH].query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE " + sql, params)  # MariaDB: runs it; r_rows = rows really read
        columns = [column[0] for column in cursor.description]
        [plan] = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    assert float(plan["r_rows"]) <= expiry.BATCH + 10, plan
    assert "filesort" not in (plan["Extra"] or ""), plan
