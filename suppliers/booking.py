"""Booking with the supplier through the outbox (C4, C5): the handlers of `supplier.book`,
`supplier.cancel` and `reservation.compensate`, and the staff "retry now" action.

The supplier call and its audit row happen in `perform` (no transaction); the reservation
changes happen in `apply`, inside the delivery transaction, through reservations.services."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Q

from common.db import retry_on_deadlock
from common.exceptions import InvalidState, VersionConflict
from outbox.handlers import Verdict
from outbox.models import OutboxEvent, OutboxStatus
from outbox.services import dead_letter_mark_replayed, outbox_enqueue, outbox_event_rearm, staff_alert_enqueue
from reservations.models import Reservation, ReservationStatus, SupplierStatus
from reservations.services import (
    reservation_get_locked,
    reservation_record_event,
    reservation_set_supplier_status,
    reservation_transition,
)
from suppliers.clients import BookingRequest, SupplierOutcome, SupplierResult, supplier_adapter_for
from suppliers.clients.base import BREAKER_OPEN
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


def _reservation(event: OutboxEvent) -> Reservation:
    return Reservation.objects.select_related("product__supplier").get(pk=event.payload["reservation_id"])


def _audit(*, reservation: Reservation, event: OutboxEvent, result: SupplierResult) -> None:
    SupplierRequest.objects.create(
        reservation=reservation, supplier=reservation.product.supplier, outbox_event_id=event.id,
        operation=result.operation, attempt=event.attempts, idempotency_key=result.idempotency_key,
        request_payload=result.request, response_payload=result.response, http_status=result.http_status,
        outcome=result.outcome.value, error_code=result.error_code, duration_ms=result.duration_ms,
    )


def _deferred(result: SupplierResult) -> Verdict:
    """The supplier's open breaker refused the call, so it never left: ask again when the
    breaker lets calls through, without spending one of the event's attempts on it (a
    flapping supplier must not use up attempts while nothing can reach it)."""
    return Verdict.defer(seconds=result.retry_after_seconds, reason=result.error)


class SupplierBookHandler:
    def perform(self, event: OutboxEvent) -> SupplierResult | Skipped:
        reservation = _reservation(event)
        if reservation.status == ReservationStatus.CONFIRMED:
            return Skipped("already confirmed")
        if reservation.status not in BOOKABLE:
            # Only calls that really left: a call the open breaker refused never reached the
            # supplier, so it cannot have made a booking there.
            asked_before = (SupplierRequest.objects.filter(reservation=reservation, operation="book")
                            .exclude(error_code=BREAKER_OPEN).exists())
            if reservation.status not in ENDED or not asked_before:
                return Skipped(f"reservation is {reservation.status}: nothing to book")
            # Cancelled after an unanswered call: the supplier may hold a booking. The same
            # key returns it (or makes one), and apply schedules its cancellation.
        booking = BookingRequest(reference=reservation.code, product_code=reservation.product.code,
                                 date=reservation.date.isoformat(), quantity=reservation.quantity,
                                 guest_name=reservation.guest_name)
        result = supplier_adapter_for(reservation.product.supplier).book(
            booking=booking, idempotency_key=supplier_idempotency_key(reservation_id=reservation.id,
                                                                      operation="book"))
        _audit(reservation=reservation, event=event, result=result)
        return result

    def apply(self, event: OutboxEvent, result: SupplierResult | Skipped) -> Verdict:
        if isinstance(result, Skipped):
            return Verdict.delivered(result.note)
        if not result.call_made:
            return _deferred(result)
        reservation = reservation_get_locked(reservation_id=event.payload["reservation_id"])
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
            cancel = outbox_enqueue(topic="supplier.cancel", dedup_key=f"supplier.cancel:{reservation.id}",
                                    payload={"reservation_id": str(reservation.id)}, reservation=reservation)
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
            reservation_set_supplier_status(reservation=reservation, supplier_status=SupplierStatus.REJECTED,
                                            actor=ACTOR, reason="supplier rejected the booking", data=data)
            outbox_enqueue(topic="reservation.compensate", dedup_key=f"reservation.compensate:{reservation.id}",
                           payload={"reservation_id": str(reservation.id)}, reservation=reservation)
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


class SupplierCancelHandler:
    def perform(self, event: OutboxEvent) -> SupplierResult | Skipped:
        reservation = _reservation(event)
        if not reservation.supplier_booking_id:
            return Skipped("no supplier booking to cancel")
        result = supplier_adapter_for(reservation.product.supplier).cancel(
            booking_id=reservation.supplier_booking_id,
            idempotency_key=supplier_idempotency_key(reservation_id=reservation.id, operation="cancel"))
        _audit(reservation=reservation, event=event, result=result)
        return result

    def apply(self, event: OutboxEvent, result: SupplierResult | Skipped) -> Verdict:
        if isinstance(result, Skipped):
            return Verdict.delivered(result.note)
        if not result.call_made:
            return _deferred(result)
        if result.outcome is SupplierOutcome.RETRYABLE:
            return Verdict.retry(result.error)
        if result.outcome is not SupplierOutcome.CANCELLED:
            return Verdict.dead(result.error)
        reservation = reservation_get_locked(reservation_id=event.payload["reservation_id"])
        if reservation.supplier_status != SupplierStatus.CANCELLED:
            reservation_set_supplier_status(reservation=reservation, supplier_status=SupplierStatus.CANCELLED,
                                            actor=ACTOR, reason="supplier booking cancelled",
                                            data={"http_status": result.http_status})
        return Verdict.delivered("cancelled")

    def on_dead(self, event: OutboxEvent, error: str) -> None:
        reservation = reservation_get_locked(reservation_id=event.payload["reservation_id"])
        staff_alert_enqueue(reservation=reservation, subject="Supplier cancellation failed: booking may still be live",
               body=f"Reservation {reservation.code}: cancelling supplier booking "
                    f"{reservation.supplier_booking_id} failed: {error}")


class RejectionCompensationHandler:
    """Supplier said no: refund in full, then CANCELLED, then tell the customer (C5)."""

    def perform(self, event: OutboxEvent) -> list[str] | Skipped | Verdict:
        from payments.exceptions import (
            PaymentProviderUnavailable,
            RefundExceedsCaptured,
            RefundFailed,
            RefundNotAllowed,
        )
        from payments.models import RefundStatus
        from payments.services.refunds import REFUNDABLE, payment_refund_everything

        reservation = _reservation(event)
        if reservation.status != ReservationStatus.PAID:
            return Skipped(f"reservation is {reservation.status}: no compensation")
        refunds = []
        holding_money = Q(status__in=REFUNDABLE) | Q(refunds__status=RefundStatus.PENDING)
        for payment in reservation.payments.filter(holding_money).distinct():
            try:
                # Always the same key: a retry resumes the PENDING refund of an earlier attempt
                # (Stripe sees the same idempotency key), never a second one; a refund another
                # path left PENDING (a cancel that got a 503) is sent first, not skipped.
                done = payment_refund_everything(payment=payment, reason="supplier rejected the booking",
                                                 actor="system",
                                                 idempotency_key=f"compensate:{reservation.id}:{payment.id}")
            except (RefundExceedsCaptured, RefundNotAllowed):
                continue  # nothing left to give back (refunded by another path)
            except PaymentProviderUnavailable:
                return Verdict.retry("refund: Stripe unavailable")
            except RefundFailed as exc:
                return Verdict.dead(f"refund refused by Stripe: {exc.detail}"[:500])
            refunds.extend(str(refund.id) for refund in done)
        return refunds

    def apply(self, event: OutboxEvent, result: list[str] | Skipped | Verdict) -> Verdict:
        if isinstance(result, Verdict):
            return result
        if isinstance(result, Skipped):
            return Verdict.delivered(result.note)
        reservation = reservation_get_locked(reservation_id=event.payload["reservation_id"])
        if reservation.status != ReservationStatus.PAID:
            return Verdict.delivered(f"reservation became {reservation.status}")
        reservation_transition(reservation=reservation, to_status=ReservationStatus.CANCELLED, actor="system",
                               reason="supplier rejected the booking; refunded", data={"refunds": result})
        outbox_enqueue(topic="email.customer", dedup_key=f"email.customer:rejected:{reservation.id}",
                       payload={"to": reservation.guest_email, "reservation_id": str(reservation.id),
                                "subject": f"Your reservation {reservation.code} could not be confirmed",
                                "body": (f"Hello {reservation.guest_name},\n\nThe provider has no availability "
                                         f"for {reservation.product.name} on {reservation.date}. Your payment "
                                         "has been refunded in full.\n")})
        return Verdict.delivered("compensated")

    def on_dead(self, event: OutboxEvent, error: str) -> None:
        reservation = reservation_get_locked(reservation_id=event.payload["reservation_id"])
        staff_alert_enqueue(reservation=reservation, subject="Refund after supplier rejection failed",
               body=f"Reservation {reservation.code}: the automatic refund failed: {error}")


@retry_on_deadlock
def supplier_booking_retry_now(*, reservation: Reservation, actor: str,
                               expected_version: int | None = None) -> Reservation:
    """Staff: ask the supplier again now for an ON_REQUEST reservation (D2). Reuses the
    original supplier.book event (same id, same idempotency key): it cannot book twice."""
    with transaction.atomic(durable=True):
        locked = reservation_get_locked(reservation_id=reservation.pk)
        if expected_version is not None and locked.version != expected_version:
            raise VersionConflict(extra={"current_version": locked.version})
        if locked.status != ReservationStatus.CONFIRMED_INTERNAL or locked.supplier_status != SupplierStatus.ON_REQUEST:
            raise InvalidState("Only an ON_REQUEST reservation can be retried with the supplier.",
                               extra={"current_status": locked.status, "supplier_status": locked.supplier_status})
        event = OutboxEvent.objects.select_for_update().filter(dedup_key=f"supplier.book:{locked.id}").first()
        if event is None:
            event = outbox_enqueue(topic="supplier.book", dedup_key=f"supplier.book:{locked.id}",
                                   payload={"reservation_id": str(locked.id)}, reservation=locked)
        elif event.status == OutboxStatus.DEAD and event.dead_letters.filter(status="OPEN").exists():
            dead_letter_mark_replayed(dead_letter=event.dead_letters.filter(status="OPEN").latest("id"),
                                      actor=actor)
        elif event.status != OutboxStatus.IN_FLIGHT:
            outbox_event_rearm(event=event)
        reservation_set_supplier_status(reservation=locked, supplier_status=SupplierStatus.PENDING, actor=actor,
                                        reason="supplier booking retried by staff", data={"event_id": str(event.id)})
    return locked
