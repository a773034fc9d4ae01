"""Outbox helpers shared by the tests of every app that delivers through it."""

from __future__ import annotations

import time

from django.db import transaction
from django.utils import timezone

from outbox.delivery import outbox_drain_once
from outbox.models import OutboxEvent, OutboxStatus
from reservations.models import Reservation, ReservationStatus, SupplierStatus
from suppliers.booking import supplier_book_enqueue
from tests.factories import ReservationFactory


def paid_reservation(product, **kwargs) -> Reservation:
    """A reservation as the payment flow leaves it: PAID, supplier PENDING, supplier.book queued
    in the same transaction."""
    with transaction.atomic():
        reservation = ReservationFactory(product=product, status=ReservationStatus.PAID,
                                         supplier_status=SupplierStatus.PENDING, **kwargs)
        supplier_book_enqueue(reservation=reservation)
    return reservation


def make_due(**filters) -> int:
    """Skip the backoff wait: the retry *delay* is asserted separately, from the row."""
    return OutboxEvent.objects.filter(status=OutboxStatus.PENDING, **filters).update(available_at=timezone.now())


def drain_all(*, max_rounds: int = 50, skip_backoff: bool = True) -> None:
    """Deliver until nothing is due (pulling backed-off events forward when asked)."""
    for _ in range(max_rounds):
        if skip_backoff:
            make_due()
        if outbox_drain_once(limit=50).total == 0:
            return
    raise AssertionError("outbox did not settle")


def wait_until(predicate, *, timeout: float = 30.0, interval: float = 0.1, message: str = "condition"):
    """Poll a condition with a bounded deadline (never sleep for a race)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {message}")
