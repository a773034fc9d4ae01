"""A4/A5: one table of transitions, illegal ones are domain errors, writes are versioned."""

from __future__ import annotations

import pytest
from django.db import transaction

from common.db import versioned_update
from common.exceptions import InvalidState, VersionConflict
from reservations.models import ReservationEvent, ReservationStatus, SupplierStatus
from reservations.services import reservation_set_supplier_status, reservation_transition
from reservations.state import SUPPLIER_TRANSITIONS, TRANSITIONS, can_transition, supplier_can_transition
from tests.factories import ReservationFactory

pytestmark = pytest.mark.django_db

S = ReservationStatus
ALL = list(S.values)


@pytest.mark.parametrize("from_status", ALL)
@pytest.mark.parametrize("to_status", ALL)
def test_every_pair_of_states_follows_the_table(from_status, to_status):
    reservation = ReservationFactory(status=from_status)
    allowed = to_status in TRANSITIONS[from_status]
    assert can_transition(from_status, to_status) is allowed
    with transaction.atomic():
        if allowed:
            event = reservation_transition(reservation=reservation, to_status=to_status, actor="system", reason="t")
            assert (event.from_status, event.to_status) == (from_status, to_status)
        else:
            with pytest.raises(InvalidState):
                reservation_transition(reservation=reservation, to_status=to_status, actor="system")
    reservation.refresh_from_db()
    assert reservation.status == (to_status if allowed else from_status)
    assert ReservationEvent.objects.filter(reservation=reservation).count() == (1 if allowed else 0)


def test_terminal_states_have_no_way_out():
    assert TRANSITIONS[S.CANCELLED] == frozenset()
    assert TRANSITIONS[S.EXPIRED] == frozenset()


def test_a_stale_in_memory_copy_cannot_overwrite_a_newer_row():
    fresh = ReservationFactory()
    stale = type(fresh).objects.get(pk=fresh.pk)
    with transaction.atomic():
        reservation_transition(reservation=fresh, to_status=S.PAID, actor="stripe")

    with transaction.atomic(), pytest.raises(VersionConflict):
        reservation_transition(reservation=stale, to_status=S.CANCELLED, actor="customer")

    fresh.refresh_from_db()
    assert fresh.status == S.PAID
    assert fresh.version == 2


def test_versioned_update_bumps_version_and_refuses_the_old_one():
    reservation = ReservationFactory()
    versioned_update(reservation, fields={"guest_name": "New"})
    assert reservation.version == 2
    with pytest.raises(VersionConflict):
        versioned_update(reservation, fields={"guest_name": "Newer"}, expected_version=1)
    reservation.refresh_from_db()
    assert (reservation.guest_name, reservation.version) == ("New", 2)


@pytest.mark.django_db(transaction=True)
def test_transition_outside_a_transaction_is_refused():
    """The status change and its timeline row are one unit: never written in autocommit."""
    reservation = ReservationFactory()
    with pytest.raises(RuntimeError, match="inside a transaction"):
        reservation_transition(reservation=reservation, to_status=S.CANCELLED, actor="customer")
    reservation.refresh_from_db()
    assert reservation.status == S.PENDING_PAYMENT


SS = SupplierStatus
SUPPLIER_ALL = list(SS.values)


@pytest.mark.parametrize("from_status", SUPPLIER_ALL)
@pytest.mark.parametrize("to_status", SUPPLIER_ALL)
def test_every_supplier_status_write_follows_its_table(from_status, to_status):
    """The one service that writes supplier_status enforces reservations/state.py's table."""
    reservation = ReservationFactory(status=ReservationStatus.PAID, supplier_status=from_status)
    allowed = to_status == from_status or to_status in SUPPLIER_TRANSITIONS[from_status]
    assert supplier_can_transition(from_status, to_status) is allowed
    with transaction.atomic():
        if allowed:
            reservation_set_supplier_status(reservation=reservation, supplier_status=to_status, actor="supplier")
        else:
            with pytest.raises(InvalidState):
                reservation_set_supplier_status(reservation=reservation, supplier_status=to_status, actor="supplier")
    reservation.refresh_from_db()
    assert reservation.supplier_status == (to_status if allowed else from_status)


def test_a_transition_that_moves_the_supplier_status_is_checked_too():
    reservation = ReservationFactory(status=ReservationStatus.PAID, supplier_status=SS.REJECTED)
    with transaction.atomic(), pytest.raises(InvalidState):
        reservation_transition(reservation=reservation, to_status=ReservationStatus.CONFIRMED, actor="supplier",
                               fields={"supplier_status": SS.CONFIRMED})
