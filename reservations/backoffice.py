"""Back-office (staff) services and selectors for reservations (D1, D2, D5).

The admin calls these; they own their transactions, check the version the staff member's
page was rendered with, and write the timeline entry naming `staff:<username>`."""

from __future__ import annotations

import logging
import uuid

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import QuerySet

from common.db import retry_on_deadlock
from common.exceptions import ApplicationError, InvalidState, VersionConflict
from reservations.models import Reservation, ReservationStatus, SupplierStatus
from reservations.services import reservation_get_locked, reservation_transition

logger = logging.getLogger("reserve.backoffice")

SUPPLIER_REFERENCE_MAX_LENGTH = Reservation._meta.get_field("supplier_reference").max_length

# Permission strings the admin actions check (declared on reservations.OnRequestReservation;
# dead letters and Stripe events use their models' own change permission, since their
# admins are otherwise read-only: "change" there means "may act on it").
PERM_RESOLVE_ON_REQUEST = "reservations.resolve_on_request"
PERM_CANCEL_REFUND = "reservations.cancel_refund_reservation"
PERM_RESOLVE_DEAD_LETTER = "outbox.change_deadletter"
PERM_REPROCESS_STRIPE_EVENT = "payments.change_stripeevent"


def staff_actor(user: AbstractBaseUser) -> str:
    """The timeline `actor` of a staff member (api.md)."""
    return f"staff:{user.get_username()}"


def reservations_on_request(queryset: QuerySet[Reservation] | None = None) -> QuerySet[Reservation]:
    """The ON_REQUEST work queue: paid, booked internally, the supplier has not confirmed."""
    base = Reservation.objects.all() if queryset is None else queryset
    return base.filter(status=ReservationStatus.CONFIRMED_INTERNAL, supplier_status=SupplierStatus.ON_REQUEST)


def reservation_on_request_count() -> int:
    return reservations_on_request().count()


@retry_on_deadlock
def _confirm(*, reservation_id: uuid.UUID | str, reference: str, actor: str, note: str,
             expected_version: int) -> Reservation:
    with transaction.atomic(durable=True):
        reservation = reservation_get_locked(reservation_id=reservation_id)
        if reservation.version != expected_version:
            raise VersionConflict(extra={"current_version": reservation.version})
        if reservation.status != ReservationStatus.CONFIRMED_INTERNAL:
            raise InvalidState(
                f"Only a CONFIRMED_INTERNAL reservation can be confirmed manually (this one is "
                f"{reservation.status}).", extra={"current_status": reservation.status},
            )
        previous_supplier_status = reservation.supplier_status
        reason = "confirmed manually with the supplier" + (f": {note}" if note else "")
        reservation_transition(
            reservation=reservation, to_status=ReservationStatus.CONFIRMED, actor=actor, reason=reason,
            data={"supplier_reference": reference, "note": note,
                  "supplier_status": {"from": previous_supplier_status, "to": SupplierStatus.CONFIRMED}},
            fields={"supplier_status": SupplierStatus.CONFIRMED, "supplier_reference": reference},
            expected_version=expected_version,
        )
    return reservation


def reservation_confirm_manually(
    *, reservation_id: uuid.UUID | str, supplier_reference: str, actor: str, note: str = "",
    expected_version: int,
) -> Reservation:
    """Staff confirmed the booking with the supplier by other means (phone, extranet):
    CONFIRMED_INTERNAL → CONFIRMED, supplier_status CONFIRMED, the reference stored.

    Refused with VersionConflict when the reservation changed since the staff member's page
    was rendered (`expected_version`). Afterwards, the reservation's open supplier.book dead
    letters are discarded: a replay would only be skipped (the booking handler does nothing
    for a CONFIRMED reservation), and leaving them open would keep them in the staff queue."""
    reference = supplier_reference.strip()
    note = note.strip()
    if not reference:
        raise ApplicationError("A supplier reference is required.", code="supplier_reference_required")
    if len(reference) > SUPPLIER_REFERENCE_MAX_LENGTH:
        raise ApplicationError(f"The supplier reference is longer than {SUPPLIER_REFERENCE_MAX_LENGTH} characters.",
                               code="supplier_reference_too_long")
    reservation = _confirm(reservation_id=reservation_id, reference=reference, actor=actor, note=note[:400],
                           expected_version=expected_version)
    logger.info("reservation confirmed manually", extra={"reservation_id": str(reservation.id), "actor": actor})
    _discard_open_booking_dead_letters(reservation=reservation, actor=actor)
    return reservation


def _discard_open_booking_dead_letters(*, reservation: Reservation, actor: str) -> None:
    from outbox.models import DeadLetter, DeadLetterStatus
    from outbox.services import dead_letter_discard

    open_letters = DeadLetter.objects.filter(reservation=reservation, topic="supplier.book",
                                             status=DeadLetterStatus.OPEN)
    for dead_letter in open_letters:
        dead_letter_discard(dead_letter=dead_letter, actor=actor,
                            reason=f"reservation confirmed manually (supplier reference "
                                   f"{reservation.supplier_reference})")
