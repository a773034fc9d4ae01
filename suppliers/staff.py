"""The staff's supplier actions (D2): retry the booking now, and confirm a booking made by
other means (phone, extranet). Each owns its transaction, checks the version the staff
member's page was rendered with, and writes the timeline entry naming `staff:<username>`."""

from __future__ import annotations

import logging
import uuid

from django.db import transaction

from common.db import retry_on_deadlock, version_check
from common.error_codes import ErrorCode
from common.exceptions import ApplicationError, InvalidState
from common.locking import lock_rows
from outbox.models import DeadLetter, DeadLetterStatus, OutboxEvent, OutboxStatus
from outbox.services import dead_letter_discard, dead_letter_mark_replayed, outbox_event_rearm
from reservations.models import Reservation, ReservationStatus, SupplierStatus
from reservations.services import reservation_get_locked, reservation_set_supplier_status, reservation_transition
from suppliers.booking import BOOK_TOPIC, supplier_book_dedup_key, supplier_book_enqueue

logger = logging.getLogger("reserve.suppliers")

SUPPLIER_REFERENCE_MAX_LENGTH = Reservation._meta.get_field("supplier_reference").max_length


@retry_on_deadlock
def supplier_booking_retry_now(*, reservation: Reservation, actor: str,
                               expected_version: int | None = None) -> Reservation:
    """Staff: ask the supplier again now for an ON_REQUEST reservation (D2). Reuses the
    original supplier.book event (same id, same idempotency key): it cannot book twice."""
    with transaction.atomic(durable=True):
        locked = reservation_get_locked(reservation_id=reservation.pk)
        version_check(locked, expected_version)
        if locked.status != ReservationStatus.CONFIRMED_INTERNAL or locked.supplier_status != SupplierStatus.ON_REQUEST:
            raise InvalidState("Only an ON_REQUEST reservation can be retried with the supplier.",
                               extra={"current_status": locked.status, "supplier_status": locked.supplier_status})
        # The one lock order (common/locking.py): reservation, dead letters, then the event,
        # as the delivery does; the event's id is read first, unlocked (it never changes).
        event_id = (OutboxEvent.objects.filter(dedup_key=supplier_book_dedup_key(locked.id))
                    .values_list("pk", flat=True).first())
        open_letters = lock_rows(DeadLetter.objects.filter(event_id=event_id, status=DeadLetterStatus.OPEN))
        event = next(iter(lock_rows(OutboxEvent.objects.filter(pk=event_id))), None)
        if event is None:
            event = supplier_book_enqueue(reservation=locked)
        elif event.status == OutboxStatus.DEAD and open_letters:
            dead_letter_mark_replayed(dead_letter=open_letters[-1], actor=actor)
        elif event.status != OutboxStatus.IN_FLIGHT:
            outbox_event_rearm(event=event)
        reservation_set_supplier_status(reservation=locked, supplier_status=SupplierStatus.PENDING, actor=actor,
                                        reason="supplier booking retried by staff", data={"event_id": str(event.id)})
    return locked


@retry_on_deadlock
def _confirm(*, reservation_id: uuid.UUID | str, reference: str, actor: str, note: str,
             expected_version: int) -> Reservation:
    with transaction.atomic(durable=True):
        reservation = reservation_get_locked(reservation_id=reservation_id)
        version_check(reservation, expected_version)
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
        raise ApplicationError("A supplier reference is required.", code=ErrorCode.SUPPLIER_REFERENCE_REQUIRED)
    if len(reference) > SUPPLIER_REFERENCE_MAX_LENGTH:
        raise ApplicationError(f"The supplier reference is longer than {SUPPLIER_REFERENCE_MAX_LENGTH} characters.",
                               code=ErrorCode.SUPPLIER_REFERENCE_TOO_LONG)
    reservation = _confirm(reservation_id=reservation_id, reference=reference, actor=actor, note=note[:400],
                           expected_version=expected_version)
    logger.info("reservation confirmed manually", extra={"reservation_id": str(reservation.id), "actor": actor})
    _discard_open_booking_dead_letters(reservation=reservation, actor=actor)
    return reservation


def _discard_open_booking_dead_letters(*, reservation: Reservation, actor: str) -> None:
    open_letters = DeadLetter.objects.filter(reservation=reservation, topic=BOOK_TOPIC, status=DeadLetterStatus.OPEN)
    for dead_letter in open_letters:
        dead_letter_discard(dead_letter=dead_letter, actor=actor,
                            reason=f"reservation confirmed manually (supplier reference "
                                   f"{reservation.supplier_reference})")
