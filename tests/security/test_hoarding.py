"""Capacity hoarding (issue "security" 3), as the audit's attacker did it over HTTP: one
account holding a product-day's places unpaid, a date in 9999, creates as fast as possible.

- At most RESERVATION_MAX_UNPAID_HOLDS unpaid holds per customer (409 too_many_unpaid_holds),
  counted under the customer's row lock, so parallel creates cannot slip past the count.
- A booking horizon per product (400 past it).
- A per-user rate on reservation creation (429 with Retry-After)."""

from __future__ import annotations

import datetime as dt
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.cache import cache
from django.utils import timezone

from common import faults
from reservations.models import Reservation, ReservationStatus
from tests.factories import ProductFactory, UserFactory
from tests.security.conftest import assert_problem

pytestmark = pytest.mark.django_db(transaction=True)


def create(http, user, product, *, days: int = 7, quantity: int = 1, date: str | None = None, **headers: str):
    return http("POST", "/api/v1/reservations/", user=user, headers=headers, json={
        "product": str(product.pk), "date": date or (timezone.localdate() + dt.timedelta(days=days)).isoformat(),
        "quantity": quantity, "guest_name": "Mallory", "guest_email": "mallory@example.com"})


@pytest.fixture
def product(db):
    return ProductFactory(daily_capacity=8)


def test_a_customer_holds_at_most_the_limit_of_unpaid_reservations(http, customer, product, settings):
    settings.RESERVATION_MAX_UNPAID_HOLDS = 3
    neighbour = UserFactory()

    codes = [create(http, customer, product, quantity=2).status_code for _ in range(3)]
    fourth = create(http, customer, product, quantity=2)
    theirs = create(http, neighbour, product, quantity=2)

    assert codes == [201, 201, 201]
    body = assert_problem(fourth, 409, "too_many_unpaid_holds")
    assert body["max_unpaid_holds"] == 3
    assert theirs.status_code == 201  # the places the fourth would have taken are still on sale
    assert Reservation.objects.filter(user=customer).count() == 3


def test_paid_cancelled_and_expired_reservations_do_not_count(http, customer, product, settings):
    settings.RESERVATION_MAX_UNPAID_HOLDS = 2
    first, second = (create(http, customer, product).json()["id"] for _ in range(2))
    assert_problem(create(http, customer, product), 409, "too_many_unpaid_holds")

    cancelled = http("POST", f"/api/v1/reservations/{first}/cancel/", user=customer)
    after_cancel = create(http, customer, product)
    Reservation.objects.filter(pk=second).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    after_expiry = create(http, customer, product)

    assert cancelled.status_code == 200, cancelled.text
    assert (after_cancel.status_code, after_expiry.status_code) == (201, 201)


def test_parallel_creates_cannot_pass_the_count(http, customer, settings, monkeypatch):
    """Six creates of one customer at once, each pausing between counting and inserting: the
    customer's row lock makes them count one after the other. (Without it all six count
    zero holds and all six are created.) Unlimited capacity: no inventory lock serializes
    them instead."""
    settings.RESERVATION_MAX_UNPAID_HOLDS = 3
    product = ProductFactory(daily_capacity=None)
    barrier = threading.Barrier(6)

    def pause(point: str) -> None:
        if point == "reservation.holds_counted":
            time.sleep(0.3)

    monkeypatch.setattr(faults, "hook", pause)

    def one(_: int) -> int:
        barrier.wait(timeout=10)
        return create(http, customer, product).status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        codes = sorted(pool.map(one, range(6)))

    assert codes == [201, 201, 201, 409, 409, 409]
    assert Reservation.objects.filter(user=customer, status=ReservationStatus.PENDING_PAYMENT).count() == 3


def test_dates_past_the_booking_horizon_are_refused(http, customer, settings):
    settings.RESERVATION_MAX_UNPAID_HOLDS = 10
    default = ProductFactory()  # 365 days
    short = ProductFactory(booking_horizon_days=30)

    far = create(http, customer, default, date="9999-12-31")
    day_366 = create(http, customer, default, days=366)
    day_365 = create(http, customer, default, days=365)
    day_31 = create(http, customer, short, days=31)
    day_30 = create(http, customer, short, days=30)

    for refused in (far, day_366, day_31):
        assert "date" in assert_problem(refused, 400, "validation_error")["errors"]
    assert (day_365.status_code, day_30.status_code) == (201, 201)
    assert Reservation.objects.count() == 2


def test_reservation_creation_is_rate_limited_per_user(http, customer, monkeypatch):
    from rest_framework.throttling import SimpleRateThrottle

    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES",
                        {"user": "1000/min", "anon": "1000/min", "reservation_create": "2/min"})
    cache.clear()
    neighbour = UserFactory()
    products = [ProductFactory() for _ in range(3)]

    codes = [create(http, customer, p).status_code for p in products]
    third = create(http, customer, products[0])
    listing = http("GET", "/api/v1/reservations/", user=customer)
    theirs = create(http, neighbour, products[0])

    assert codes[:2] == [201, 201]
    assert codes[2] == 429
    assert_problem(third, 429, "throttled")
    assert int(third.headers["Retry-After"]) > 0
    assert listing.status_code == 200  # reading is not creating
    assert theirs.status_code == 201  # per user, not global
    cache.clear()
