from __future__ import annotations

import datetime as dt
import time

import pytest
import requests
from django.utils import timezone

from payments.models import Payment
from reservations.models import Reservation
from reservations.services import reservation_create
from tests.factories import ReservationFactory
from tests.payments.conftest import VISA, create_payment_method, new_key, pay
from tests.support.outbox import drain_all


@pytest.fixture
def since() -> dt.datetime:
    """The start of this test's window, on a fresh second: localstripe (shared by the tests of
    one worker) stamps `created` in whole seconds, and earlier tests' intents stay outside."""
    time.sleep(1 - time.time() % 1)
    return timezone.now()


@pytest.fixture
def visa(stripe_local) -> str:
    return create_payment_method(stripe_local, VISA)


@pytest.fixture
def reservation(customer, product) -> Reservation:
    return ReservationFactory(user=customer, product=product)


def until_now() -> dt.datetime:
    return timezone.now() + dt.timedelta(seconds=2)


def paid_and_booked(api, customer, product, payment_method) -> tuple[Reservation, Payment]:
    """Paid through the API and booked with the (fake) supplier by the outbox."""
    booked = reservation_create(user=customer, product=product, date=timezone.localdate() + dt.timedelta(days=7),
                                quantity=1, guest_name="Ada Lovelace", guest_email="ada@example.test")
    assert pay(api, booked, key=new_key(), payment_method=payment_method).status_code == 200
    drain_all()
    booked.refresh_from_db()
    return booked, Payment.objects.get(reservation=booked)


def supplier_book(fake_supplier, *, reference: str, key: str) -> str:
    """A booking made at the supplier directly (not by us)."""
    response = requests.post(f"{fake_supplier.base_url}/bookings", timeout=5, json={
        "reference": reference, "product_code": "P", "date": "2030-01-01", "quantity": 1, "guest_name": "X"},
        headers={"Authorization": "Bearer k", "Idempotency-Key": key})
    response.raise_for_status()
    return response.json()["booking_id"]
