"""Every reservation state change goes through these functions (A2, A4, A5)."""

from __future__ import annotations

import datetime as dt
import functools
import logging
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from common.compiled import CompiledCount, insert_row
from common.db import retry_on_deadlock, versioned_update
from common.exceptions import InvalidState, NotFound, ProductUnavailable, SoldOut, TooManyUnpaidHolds
from common.faults import fault_point
from common.locking import CompiledLock
from reservations.models import DailyInventory, Reservation, ReservationEvent, ReservationStatus
from reservations.state import HOLDING, can_transition, supplier_can_transition

if TYPE_CHECKING:  # the catalog sits above this app: its model is only named, never imported
    from suppliers.models import Product

logger = logging.getLogger("reserve.reservations")


def reservation_amount(*, product: Product, quantity: int) -> int:
    """The one place an amount is computed: never from client input."""
    return product.unit_amount * quantity


# The locks and the count taken on every create and pay, compiled once (common.compiled).
_RESERVATION_LOCK = CompiledLock(lambda pk: Reservation.objects.filter(pk=pk), pk=Reservation._meta.pk)
_UNPAID_HOLDS = CompiledCount(
    lambda user, now: Reservation.objects.filter(user_id=user, status=ReservationStatus.PENDING_PAYMENT,
                                                 expires_at__gt=now),
    group_by="user_id", user=Reservation._meta.get_field("user"), now=Reservation._meta.get_field("expires_at"))


@functools.cache
def _customer_lock() -> CompiledLock:
    """The customer's row lock (its id only: the row is the lock). Built on first use: the user
    model is only known once every app is loaded."""
    user_model = get_user_model()
    return CompiledLock(lambda pk: user_model.objects.filter(pk=pk).only("pk"), pk=user_model._meta.pk)


def reservation_get_locked(*, reservation_id: uuid.UUID | str) -> Reservation:
    """Lock the reservation row (only that row) for the rest of the current transaction; the
    reservation comes first in the one lock order (common/locking.py).

    No select_related here: MariaDB's FOR UPDATE locks every joined row, so joining product
    and supplier would serialise all payments of one product on the product row."""
    try:
        rows = _RESERVATION_LOCK(pk=reservation_id)
    except (ValueError, TypeError, ValidationError) as exc:  # not a reservation id
        raise NotFound("Reservation not found.") from exc
    if not rows:
        raise NotFound("Reservation not found.")
    return rows[0]


def reservation_record_event(
    *, reservation: Reservation, actor: str, reason: str = "", data: dict[str, Any] | None = None,
    from_status: str = "", to_status: str = "",
) -> ReservationEvent:
    return insert_row(ReservationEvent(
        reservation=reservation, from_status=from_status, to_status=to_status,
        actor=actor, reason=reason[:500], data=data or {},
    ))


# --- reactions of other apps ---------------------------------------------------------------
# A transition may leave work for the apps above this one: a PAID reservation must be booked
# with the supplier (suppliers), an ended one may hold an open PaymentIntent (payments) or a
# supplier booking (suppliers) to cancel. They register here from their AppConfig.ready(), so
# this app never imports them; hooks run inside the transition's transaction, so whatever they
# enqueue commits, or rolls back, with it.
TransitionHook = Callable[[Reservation, str, str], None]  # (reservation, from_status, to_status)
_transition_hooks: list[TransitionHook] = []


def on_reservation_transition(hook: TransitionHook) -> TransitionHook:
    """Register `hook(reservation, from_status, to_status)`; idempotent per function."""
    if hook not in _transition_hooks:
        _transition_hooks.append(hook)
    return hook


# The same for the supplier side: (reservation, from supplier_status, to supplier_status),
# e.g. payments compensates a paid reservation the supplier rejected.
_supplier_status_hooks: list[TransitionHook] = []


def on_supplier_status_change(hook: TransitionHook) -> TransitionHook:
    if hook not in _supplier_status_hooks:
        _supplier_status_hooks.append(hook)
    return hook


def _supplier_status_checked(reservation: Reservation, to_status: str) -> str:
    """The one check of every supplier_status write (reservations/state.py's table)."""
    previous = reservation.supplier_status
    if not supplier_can_transition(previous, to_status):
        raise InvalidState(f"The supplier status of a reservation cannot go from {previous} to {to_status}.",
                           extra={"supplier_status": previous})
    return previous


def _supplier_status_changed(reservation: Reservation, previous: str) -> None:
    if reservation.supplier_status != previous:
        for hook in _supplier_status_hooks:
            hook(reservation, previous, reservation.supplier_status)


def reservation_transition(
    *,
    reservation: Reservation,
    to_status: str,
    actor: str,
    reason: str = "",
    data: dict[str, Any] | None = None,
    fields: dict[str, Any] | None = None,
    expected_version: int | None = None,
) -> ReservationEvent:
    """Move a reservation to `to_status`, conditional on its version, and append the timeline
    entry. Must run inside the caller's transaction (the two writes are one unit)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("reservation_transition must run inside a transaction")
    from_status = reservation.status
    if not can_transition(from_status, to_status):
        raise InvalidState(
            f"A reservation in status {from_status} cannot become {to_status}.",
            extra={"current_status": from_status},
        )
    changes = {"status": to_status, **(fields or {})}
    previous_supplier = reservation.supplier_status
    if "supplier_status" in changes:
        _supplier_status_checked(reservation, changes["supplier_status"])
    if to_status not in HOLDING and reservation.holds_capacity:
        _capacity_release(reservation)
        changes["holds_capacity"] = False
    versioned_update(reservation, fields=changes, expected_version=expected_version)
    event = reservation_record_event(
        reservation=reservation, from_status=from_status, to_status=to_status,
        actor=actor, reason=reason, data=data,
    )
    for hook in _transition_hooks:
        hook(reservation, from_status, to_status)
    _supplier_status_changed(reservation, previous_supplier)
    return event


def reservation_set_supplier_status(
    *, reservation: Reservation, supplier_status: str, actor: str, reason: str = "",
    data: dict[str, Any] | None = None, fields: dict[str, Any] | None = None,
) -> ReservationEvent:
    """A supplier-side change that does not move `status` (e.g. PENDING → ON_REQUEST), checked
    against the supplier table of reservations/state.py. Inside the caller's transaction."""
    previous = _supplier_status_checked(reservation, supplier_status)
    versioned_update(reservation, fields={"supplier_status": supplier_status, **(fields or {})})
    event = reservation_record_event(
        reservation=reservation, actor=actor, reason=reason,
        data={"supplier_status": {"from": previous, "to": supplier_status}, **(data or {})},
        from_status=reservation.status, to_status=reservation.status,
    )
    _supplier_status_changed(reservation, previous)
    return event


# --- capacity ------------------------------------------------------------------------------

def _inventory_locked(*, product: Product, date: dt.date) -> DailyInventory:
    """The inventory row for (product, date), created on first use, locked FOR UPDATE.

    Two first bookings of a date race to insert the row: the loser's INSERT hits the unique
    constraint inside a savepoint, and it then locks the winner's row (B5: no manual rollback).
    """
    row = DailyInventory.objects.select_for_update().filter(product=product, date=date).first()
    if row is not None:
        return row
    try:
        with transaction.atomic():
            DailyInventory.objects.create(product=product, date=date)
    except IntegrityError:
        pass  # created concurrently: lock theirs below
    return DailyInventory.objects.select_for_update().get(product=product, date=date)


def _capacity_hold(*, product: Product, date: dt.date, quantity: int) -> bool:
    """Take `quantity` places under the row lock. Returns whether capacity is tracked."""
    if product.daily_capacity is None:
        return False
    row = _inventory_locked(product=product, date=date)
    if row.reserved + quantity > product.daily_capacity:
        raise SoldOut(extra={"available": max(product.daily_capacity - row.reserved, 0)})
    DailyInventory.objects.filter(pk=row.pk).update(
        reserved=F("reserved") + quantity, version=F("version") + 1, updated_at=timezone.now()
    )
    return True


def _capacity_release(reservation: Reservation) -> None:
    row = _inventory_locked(product=reservation.product, date=reservation.date)
    DailyInventory.objects.filter(pk=row.pk).update(
        reserved=F("reserved") - reservation.quantity, version=F("version") + 1, updated_at=timezone.now()
    )


# --- customer operations -------------------------------------------------------------------

def _within_booking_horizon(*, product: Product, date: dt.date) -> None:
    last = timezone.localdate() + dt.timedelta(days=product.booking_horizon_days)
    if date > last:
        raise ValidationError({"date": [ValidationError(
            f"This product can be booked up to {product.booking_horizon_days} days ahead (until {last}).",
            code="beyond_booking_horizon")]})


def _unpaid_holds_allowed(*, user: AbstractBaseUser) -> None:
    """At most RESERVATION_MAX_UNPAID_HOLDS unpaid, unexpired reservations per customer, so
    one account cannot hold a day's places hostage. Counted under the customer's row lock:
    two concurrent creates of one customer count one after the other."""
    _customer_lock()(pk=user.pk)
    unpaid = _UNPAID_HOLDS.execute(user=user.pk, now=timezone.now())
    fault_point("reservation.holds_counted")
    limit = settings.RESERVATION_MAX_UNPAID_HOLDS
    if unpaid >= limit:
        raise TooManyUnpaidHolds(extra={"max_unpaid_holds": limit})


@retry_on_deadlock
def reservation_create(
    *, user: AbstractBaseUser, product: Product, date: dt.date, quantity: int, guest_name: str, guest_email: str,
    locale: str = "en", on_committing: Callable[[Reservation], None] | None = None,
) -> Reservation:
    """Hold capacity and create the reservation. `locale` is the guest's language (their
    e-mails, C8). `on_committing(reservation)` runs inside the transaction, last (the API
    stores its idempotent answer there, B11)."""
    if not product.active or not product.supplier.active:
        raise ProductUnavailable
    _within_booking_horizon(product=product, date=date)
    with transaction.atomic(durable=True):
        _unpaid_holds_allowed(user=user)
        holds = _capacity_hold(product=product, date=date, quantity=quantity)
        reservation = insert_row(Reservation(
            user=user, product=product, date=date, quantity=quantity,
            amount=reservation_amount(product=product, quantity=quantity), currency=product.currency,
            guest_name=guest_name, guest_email=guest_email, locale=locale, holds_capacity=holds,
            expires_at=timezone.now() + dt.timedelta(minutes=settings.RESERVATION_HOLD_MINUTES),
        ))
        reservation.payments_loaded([])  # a new reservation has none
        reservation_record_event(
            reservation=reservation, from_status="", to_status=reservation.status, actor="customer",
            reason="created", data={"quantity": quantity, "amount": reservation.amount},
        )
        if on_committing is not None:
            on_committing(reservation)
    logger.info("reservation created", extra={"reservation_id": str(reservation.id)})
    return reservation
