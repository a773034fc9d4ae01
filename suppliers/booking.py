"""Booking with the supplier through the outbox (C4, C5): the handlers of `supplier.book` and
`supplier.cancel`, and the functions that own those topics. A rejection of a paid booking is
recorded as supplier status REJECTED, to which payments reacts (refund and cancel).

The supplier call and its audit row happen in `perform` (no transaction); the reservation
changes happen in `apply`, inside the delivery transaction, through reservations.services."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.db.models import Q

from common.compiled import CompiledQuery, insert_row
from outbox.delivery import LEASE_EXPIRED
from outbox.handlers import Verdict
from outbox.models import OutboxEvent, OutboxStatus
from outbox.services import outbox_enqueue, outbox_event_rearm, staff_alert_enqueue
from reservations.models import Reservation, ReservationStatus, SupplierStatus
from reservations.outbox import ReservationTopicHandler
from reservations.services import (
    reservation_get_locked,
    reservation_record_event,
    reservation_set_supplier_status,
    reservation_transition,
)
from suppliers.clients import BookingRequest, SupplierOutcome, SupplierResult, supplier_adapter_for
from suppliers.clients.base import BREAKER_OPEN, ENDPOINT_REFUSED
from suppliers.models import SupplierRequest

logger = logging.getLogger("reserve.suppliers")

ACTOR = "supplier"
BOOKABLE = frozenset({ReservationStatus.PAID, ReservationStatus.CONFIRMED_INTERNAL})
ENDED = frozenset({ReservationStatus.CANCELLED, ReservationStatus.EXPIRED})


def supplier_idempotency_key(*, reservation_id: Any, operation: str) -> str:
    """Stable per reservation and operation: every retry, replay or takeover sends the same."""
    return f"reservation:{reservation_id}:{operation}"


@dataclass(frozen=True)
class Skipped:
    """Nothing to ask the supplier (already settled, or cancelled before any call)."""

    note: str


# Every supplier call reads its reservation with the product and supplier: compiled once.
_WITH_SUPPLIER = CompiledQuery(lambda pk: Reservation.objects.select_related("product__supplier").filter(pk=pk),
                               pk=Reservation._meta.pk)


def _reservation(event: OutboxEvent) -> Reservation:
    found = _WITH_SUPPLIER.execute(pk=event.payload["reservation_id"])
    if not found:
        raise Reservation.DoesNotExist(f"reservation {event.payload['reservation_id']}")
    return found[0]


def _audit(*, reservation: Reservation, event: OutboxEvent, result: SupplierResult) -> None:
    insert_row(SupplierRequest(
        reservation=reservation, supplier=reservation.product.supplier, outbox_event_id=event.id,
        operation=result.operation, attempt=event.attempts, idempotency_key=result.idempotency_key,
        request_payload=result.request, response_payload=result.response, http_status=result.http_status,
        outcome=result.outcome.value, error_code=result.error_code, duration_ms=result.duration_ms,
    ))


def _deferred(result: SupplierResult) -> Verdict:
    """The supplier's open breaker refused the call, so it never left: ask again when the
    breaker lets calls through, without spending one of the event's attempts on it (a
    flapping supplier must not use up attempts while nothing can reach it)."""
    return Verdict.defer(seconds=result.retry_after_seconds, reason=result.error)


# Book calls that cannot have left a booking at the supplier: the open breaker or the endpoint
# policy refused it (it never left), the supplier said no availability, or it refused the request (another 4xx).
# Any other call may have booked, even unanswered: a timeout, a 5xx, a lost connection.
_NO_BOOKING_MADE = (Q(error_code__in=(BREAKER_OPEN, ENDPOINT_REFUSED)) | Q(outcome=SupplierOutcome.REJECTED)
                    | Q(outcome=SupplierOutcome.PERMANENT, http_status__gte=400, http_status__lt=500))


def supplier_may_hold_booking(*, reservation: Reservation) -> bool:
    """Whether some book call for this reservation may have made a booking at the supplier: an
    audited call that may have booked, or an attempt whose lease expired — its worker died,
    perhaps after the supplier booked and before the audit row was written."""
    if SupplierRequest.objects.filter(reservation=reservation, operation="book").exclude(_NO_BOOKING_MADE).exists():
        return True
    errors = OutboxEvent.objects.filter(dedup_key=f"{BOOK_TOPIC}:{reservation.id}").values_list("errors", flat=True)
    return any(str(entry.get("error", "")).startswith(LEASE_EXPIRED) for history in errors for entry in history)


def _book_with_key(*, reservation: Reservation, event: OutboxEvent) -> SupplierResult:
    """POST /bookings with the reservation's one booking key and body, audited. The supplier
    returns the booking an earlier call with this key made, or makes it now (api.md)."""
    booking = BookingRequest(reference=reservation.code, product_code=reservation.product.code,
                             date=reservation.date.isoformat(), quantity=reservation.quantity,
                             guest_name=reservation.guest_name)
    result = supplier_adapter_for(reservation.product.supplier).book(
        booking=booking, idempotency_key=supplier_idempotency_key(reservation_id=reservation.id, operation="book"))
    _audit(reservation=reservation, event=event, result=result)
    return result


class SupplierBookHandler(ReservationTopicHandler):
    def perform(self, event: OutboxEvent) -> SupplierResult | Skipped:
        reservation = _reservation(event)
        if reservation.status == ReservationStatus.CONFIRMED:
            return Skipped("already confirmed")
        if reservation.status not in BOOKABLE and (
                reservation.status not in ENDED or not supplier_may_hold_booking(reservation=reservation)):
            return Skipped(f"reservation is {reservation.status}: nothing to book")
        # Bookable, or cancelled after a call that may have booked: then the same key returns
        # that booking (or makes one), and apply schedules its cancellation.
        return _book_with_key(reservation=reservation, event=event)

    def apply(self, event: OutboxEvent, result: SupplierResult | Skipped, held: Reservation) -> Verdict:
        if isinstance(result, Skipped):
            return Verdict.delivered(result.note)
        if not result.call_made:
            return _deferred(result)
        reservation = held
        outcome = result.outcome
        if outcome in (SupplierOutcome.CONFIRMED, SupplierOutcome.ON_REQUEST):
            return self._booked(reservation, result)
        if outcome is SupplierOutcome.REJECTED:
            return self._rejected(reservation, result)
        if outcome is SupplierOutcome.RETRYABLE:
            return Verdict.retry(result.error)
        return Verdict.dead(result.error)

    @staticmethod
    def _booked(reservation: Reservation, result: SupplierResult) -> Verdict:
        confirmed = result.outcome is SupplierOutcome.CONFIRMED
        data = {"booking_id": result.booking_id, "supplier_reference": result.reference,
                "http_status": result.http_status}
        if reservation.status in ENDED:
            # Booked for a reservation that ended meanwhile: record it, then undo it.
            reservation_set_supplier_status(
                reservation=reservation, actor=ACTOR, data=data, fields={"supplier_booking_id": result.booking_id},
                supplier_status=SupplierStatus.CONFIRMED if confirmed else SupplierStatus.ON_REQUEST,
                reason="supplier booked a reservation that had ended; cancelling it")
            cancel = supplier_cancel_enqueue(reservation=reservation)
            if cancel.status != OutboxStatus.PENDING:
                outbox_event_rearm(event=cancel)  # it ran before the booking id was known
            return Verdict.delivered("booked after the reservation ended; cancellation queued")
        if reservation.status == ReservationStatus.CONFIRMED and (
                not confirmed or result.reference != reservation.supplier_reference):
            # Confirmed meanwhile, typically by staff with a reference of their own (perhaps
            # at another supplier). Never overwrite or downgrade that: record the late answer
            # and let a human check for a double booking.
            reservation_record_event(reservation=reservation, actor=ACTOR, data=data,
                                     reason="supplier answered after the booking was confirmed",
                                     from_status=reservation.status, to_status=reservation.status)
            staff_alert_enqueue(
                reservation=reservation, subject="Supplier answered a booking already confirmed",
                body=f"Reservation {reservation.code} is confirmed with reference {reservation.supplier_reference}; "
                     f"the supplier now answered {result.outcome.value} (booking {result.booking_id or '-'}). "
                     "Check for a double booking.")
            return Verdict.delivered("already confirmed; late supplier answer recorded")
        fields = {"supplier_booking_id": result.booking_id,
                  "supplier_status": SupplierStatus.CONFIRMED if confirmed else SupplierStatus.ON_REQUEST}
        if confirmed:
            fields["supplier_reference"] = result.reference
        target = ReservationStatus.CONFIRMED if confirmed else ReservationStatus.CONFIRMED_INTERNAL
        reason = "supplier confirmed" if confirmed else "supplier put the booking on request"
        if reservation.status == target:
            reservation_set_supplier_status(reservation=reservation, supplier_status=fields.pop("supplier_status"),
                                            actor=ACTOR, reason=reason, data=data, fields=fields)
        else:
            reservation_transition(reservation=reservation, to_status=target, actor=ACTOR, reason=reason,
                                   data=data, fields=fields)
        return Verdict.delivered(reason)

    @staticmethod
    def _rejected(reservation: Reservation, result: SupplierResult) -> Verdict:
        data = {"error_code": result.error_code, "http_status": result.http_status}
        if reservation.status in ENDED:
            return Verdict.delivered("rejected; the reservation had ended already")
        if reservation.status == ReservationStatus.PAID:
            # Payments reacts to the rejection of a paid booking (refund and cancel, its hook).
            reservation_set_supplier_status(reservation=reservation, supplier_status=SupplierStatus.REJECTED,
                                            actor=ACTOR, reason="supplier rejected the booking", data=data)
        else:
            # CONFIRMED_INTERNAL is staff's (never cancelled automatically): it stays ON_REQUEST,
            # in their queue, with the answer on the timeline and an alert; they cancel and
            # refund, or find another supplier and confirm by hand.
            reservation_set_supplier_status(reservation=reservation, supplier_status=SupplierStatus.ON_REQUEST,
                                            actor=ACTOR, reason="supplier rejected the booking (left to staff)",
                                            data=data)
            staff_alert_enqueue(reservation=reservation, subject="Supplier rejected a booking under staff care",
                                body=f"Reservation {reservation.code}: the supplier answered no_availability. "
                                     "It stays in the ON_REQUEST queue: cancel and refund, or confirm by hand.")
        return Verdict.delivered("rejected")

    def on_replayed(self, event: OutboxEvent, actor: str) -> None:
        """A replayed booking leaves the staff queue while it is being tried again."""
        reservation = self.reservation(event)
        if (reservation.status == ReservationStatus.CONFIRMED_INTERNAL
                and reservation.supplier_status == SupplierStatus.ON_REQUEST):
            reservation_set_supplier_status(reservation=reservation, supplier_status=SupplierStatus.PENDING,
                                            actor=actor, reason=f"dead letter replayed ({event.topic})",
                                            data={"event_id": str(event.id)})
        else:
            super().on_replayed(event, actor)

    def on_dead(self, event: OutboxEvent, error: str) -> None:
        reservation = reservation_get_locked(reservation_id=event.payload["reservation_id"])
        reason = f"supplier booking failed: {error}"[:500]
        if reservation.status == ReservationStatus.PAID:
            reservation_transition(reservation=reservation, to_status=ReservationStatus.CONFIRMED_INTERNAL,
                                   actor="system", reason=reason, data={"event_id": str(event.id)},
                                   fields={"supplier_status": SupplierStatus.ON_REQUEST})
        elif reservation.status == ReservationStatus.CONFIRMED_INTERNAL:
            reservation_set_supplier_status(reservation=reservation, supplier_status=SupplierStatus.ON_REQUEST,
                                            actor="system", reason=reason, data={"event_id": str(event.id)})
        staff_alert_enqueue(reservation=reservation, subject="Supplier booking needs staff: ON_REQUEST",
               body=(f"Reservation {reservation.code} ({reservation.id}) could not be booked with "
                     f"{reservation.product.supplier.name} after {event.attempts} attempt(s).\n"
                     f"Last error: {error}\nThe event is in the dead-letter queue."))


@dataclass(frozen=True)
class CancelAttempt:
    """What one supplier.cancel attempt did: `lookup` re-asked for a booking whose id was
    unknown (C7), `cancel` is the DELETE (None when the lookup learned no booking id)."""

    lookup: SupplierResult | None
    cancel: SupplierResult | None


class SupplierCancelHandler(ReservationTopicHandler):
    def perform(self, event: OutboxEvent) -> CancelAttempt | Skipped:
        reservation = _reservation(event)
        booking_id, lookup = reservation.supplier_booking_id, None
        if not booking_id:
            if not supplier_may_hold_booking(reservation=reservation):
                return Skipped("no supplier booking to cancel")
            # Every book call went unanswered, yet one may have booked (C7, no orphans): the
            # same request with the same key tells us that booking's id, so it can be cancelled.
            lookup = _book_with_key(reservation=reservation, event=event)
            if lookup.outcome not in (SupplierOutcome.CONFIRMED, SupplierOutcome.ON_REQUEST) or not lookup.booking_id:
                return CancelAttempt(lookup=lookup, cancel=None)
            booking_id = lookup.booking_id
        cancel = supplier_adapter_for(reservation.product.supplier).cancel(
            booking_id=booking_id,
            idempotency_key=supplier_idempotency_key(reservation_id=reservation.id, operation="cancel"))
        _audit(reservation=reservation, event=event, result=cancel)
        return CancelAttempt(lookup=lookup, cancel=cancel)

    def apply(self, event: OutboxEvent, result: CancelAttempt | Skipped, held: Reservation) -> Verdict:
        if isinstance(result, Skipped):
            return Verdict.delivered(result.note)
        last = result.cancel or result.lookup
        if last is not None and not last.call_made:
            return _deferred(last)
        if result.lookup is not None and result.lookup.booking_id:
            # Kept before anything else: a cancel retried later needs no second lookup.
            reservation = held
            reservation_set_supplier_status(
                reservation=reservation, supplier_status=reservation.supplier_status, actor=ACTOR,
                reason="supplier booking found by asking again with its idempotency key",
                data={"booking_id": result.lookup.booking_id}, fields={"supplier_booking_id": result.lookup.booking_id})
        if result.cancel is None:
            return self._nothing_learned(result.lookup) if result.lookup else Verdict.retry("nothing was asked")
        cancel = result.cancel
        if cancel.outcome is SupplierOutcome.RETRYABLE:
            return Verdict.retry(cancel.error)
        if cancel.outcome is not SupplierOutcome.CANCELLED:
            return Verdict.dead(cancel.error)
        reservation = reservation_get_locked(reservation_id=event.payload["reservation_id"])
        if reservation.supplier_status != SupplierStatus.CANCELLED:
            reservation_set_supplier_status(reservation=reservation, supplier_status=SupplierStatus.CANCELLED,
                                            actor=ACTOR, reason="supplier booking cancelled",
                                            data={"http_status": cancel.http_status})
        return Verdict.delivered("cancelled")

    @staticmethod
    def _nothing_learned(lookup: SupplierResult) -> Verdict:
        if lookup.outcome is SupplierOutcome.REJECTED:
            return Verdict.delivered("the supplier holds no booking under its key")
        error = f"booking id unknown, asking again failed: {lookup.error or 'no booking id in the answer'}"
        if lookup.outcome is SupplierOutcome.RETRYABLE:
            return Verdict.retry(error)
        return Verdict.dead(error)  # on_dead: staff check for an orphan booking

    def on_dead(self, event: OutboxEvent, error: str) -> None:
        reservation = reservation_get_locked(reservation_id=event.payload["reservation_id"])
        if reservation.supplier_booking_id:
            staff_alert_enqueue(
                reservation=reservation, subject="Supplier cancellation failed: booking may still be live",
                body=f"Reservation {reservation.code}: cancelling supplier booking "
                     f"{reservation.supplier_booking_id} failed: {error}")
            return
        key = supplier_idempotency_key(reservation_id=reservation.id, operation="book")
        staff_alert_enqueue(
            reservation=reservation, subject="Supplier booking may be orphaned",
            body=f"Reservation {reservation.code} is {reservation.status}, but its booking calls to "
                 f"{reservation.product.supplier.name} went unanswered and asking again with the booking's "
                 f"idempotency key ({key}) did not tell its booking id: {error}\n"
                 "The supplier may hold a booking nobody will cancel: check with them (reference "
                 f"{reservation.code}), cancel it there, then resolve the dead letter.")


# --- the topics this app owns ------------------------------------------------------------------

BOOK_TOPIC = "supplier.book"
CANCEL_TOPIC = "supplier.cancel"
# Supplier statuses after which the supplier may hold a booking for the reservation.
ASKED = frozenset({SupplierStatus.PENDING, SupplierStatus.CONFIRMED, SupplierStatus.ON_REQUEST})


def supplier_book_dedup_key(reservation_id: Any) -> str:
    return f"{BOOK_TOPIC}:{reservation_id}"


def supplier_book_enqueue(*, reservation: Reservation) -> OutboxEvent:
    """Book `reservation` with its supplier, inside the caller's transaction (C1). One event per
    reservation: its id is the supplier idempotency key's anchor."""
    return outbox_enqueue(topic=BOOK_TOPIC, dedup_key=supplier_book_dedup_key(reservation.id),
                          payload={"reservation_id": str(reservation.id)}, reservation=reservation)


def supplier_cancel_enqueue(*, reservation: Reservation) -> OutboxEvent:
    """Cancel the supplier booking of `reservation` after its earlier events (a cancel never
    overtakes the booking it undoes), inside the caller's transaction."""
    return outbox_enqueue(topic=CANCEL_TOPIC, dedup_key=f"{CANCEL_TOPIC}:{reservation.id}",
                          payload={"reservation_id": str(reservation.id)}, reservation=reservation)


def supplier_on_reservation_transition(reservation: Reservation, from_status: str, to_status: str) -> None:
    """Registered with reservations.services: a paid reservation is booked, an ended one whose
    supplier may hold a booking has it cancelled (B10: in the cancellation's own transaction)."""
    if to_status == ReservationStatus.PAID:
        supplier_book_enqueue(reservation=reservation)
    elif to_status in ENDED and reservation.supplier_status in ASKED:
        supplier_cancel_enqueue(reservation=reservation)
