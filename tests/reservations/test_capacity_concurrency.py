"""A2: concurrent holds never overbook. Real threads, each with its own MariaDB connection."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
from django.utils import timezone

from reservations.models import DailyInventory, Reservation
from reservations.services import reservation_create
from tests.conftest import client_for
from tests.factories import ProductFactory, UserFactory
from tests.support.concurrency import run_in_threads

pytestmark = pytest.mark.django_db(transaction=True)


def test_25_threads_racing_for_the_last_5_places_never_overbook():
    product = ProductFactory(daily_capacity=8)
    date = timezone.localdate() + dt.timedelta(days=10)
    early = UserFactory()
    reservation_create(user=early, product=product, date=date, quantity=3, guest_name="Early", guest_email="e@x.test")
    users = [UserFactory() for _ in range(25)]
    clients = [client_for(u) for u in users]
    body = {"product": str(product.id), "date": date.isoformat(), "quantity": 1,
            "guest_name": "Racer", "guest_email": "racer@example.test"}

    results = run_in_threads(25, lambda i: clients[i].post("/api/v1/reservations/", body, format="json"))

    assert not [r for r in results if isinstance(r, Exception)], results
    statuses = Counter(r.status_code for r in results)
    assert statuses == {201: 5, 409: 20}, statuses
    assert {r.json()["code"] for r in results if r.status_code == 409} == {"sold_out"}
    assert Reservation.objects.filter(product=product, date=date).count() == 6
    assert DailyInventory.objects.get(product=product, date=date).reserved == 8


def test_first_bookings_of_a_new_date_race_to_create_the_inventory_row():
    """No inventory row exists yet: every thread tries to INSERT it; the unique constraint
    decides and the losers lock the winner's row (no manual rollback, no duplicate)."""
    product = ProductFactory(daily_capacity=4)
    date = timezone.localdate() + dt.timedelta(days=30)
    users = [UserFactory() for _ in range(10)]

    def book(i: int):
        return reservation_create(user=users[i], product=product, date=date, quantity=1,
                                  guest_name="Racer", guest_email="racer@example.test")

    results = run_in_threads(10, book)

    created = [r for r in results if isinstance(r, Reservation)]
    errors = [r for r in results if not isinstance(r, Reservation)]
    assert len(created) == 4
    assert {getattr(e, "code", repr(e)) for e in errors} == {"sold_out"}
    assert DailyInventory.objects.filter(product=product, date=date).count() == 1
    assert DailyInventory.objects.get(product=product, date=date).reserved == 4
