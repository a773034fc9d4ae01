"""A5 / A4: `reservation_get_locked` holds the reservation row for the rest of the transaction,
so two read-check-write services on one reservation run one after the other: the second
checks the state the first wrote. Without the lock both would check the same stale state and
only the version check would stop the second write."""

from __future__ import annotations

import pytest

from common.exceptions import InvalidState
from reservations.models import Reservation, ReservationStatus, SupplierStatus
from suppliers.staff import supplier_booking_retry_now
from tests.support.concurrency import run_overlapping
from tests.support.outbox import drain_all, paid_reservation

pytestmark = pytest.mark.django_db(transaction=True)


def _reads_the_reservation(sql: str) -> bool:
    return sql.startswith("SELECT") and "FROM `reservations_reservation`" in sql


def test_two_staff_retries_at_once_run_one_after_the_other(fake_supplier, product):
    fake_supplier.set_mode(product.code, "permanent")
    reservation = paid_reservation(product)
    drain_all()  # the supplier refused: ON_REQUEST, in the staff queue
    reservation.refresh_from_db()
    assert (reservation.status, reservation.supplier_status) == (ReservationStatus.CONFIRMED_INTERNAL,
                                                                 SupplierStatus.ON_REQUEST)

    # Both transactions are held right after reading the reservation, until the other has
    # read it too or waits for its row lock.
    results = run_overlapping(
        [lambda: supplier_booking_retry_now(reservation=reservation, actor="staff:alice"),
         lambda: supplier_booking_retry_now(reservation=reservation, actor="staff:bob")],
        point=_reads_the_reservation)

    outcomes = sorted(type(r).__name__ for r in results)
    assert outcomes == ["InvalidState", "Reservation"], results  # not VersionConflict: the check saw the write
    [refused] = [r for r in results if isinstance(r, InvalidState)]
    assert refused.extra["supplier_status"] == SupplierStatus.PENDING
    assert reservation.events.filter(reason="supplier booking retried by staff").count() == 1
    assert Reservation.objects.get(pk=reservation.pk).supplier_status == SupplierStatus.PENDING
