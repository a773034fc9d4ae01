"""Cancelling a reservation (A6, B10): the one home of "refund and cancel".

The decision is recorded first, in one transaction: the reservation becomes CANCELLED (who,
why, how much is refunded, on the timeline), and with it are written the refunds and the
outbox events that carry the decision out: each refund (`payment.refund`), the supplier
cancellation (`supplier.cancel`, by the suppliers app's transition hook), the cancellation of
any open PaymentIntent (`payment.cancel_intent`, by this app's hook) and the guest e-mail. A
crash at any point after that commit changes nothing: the outbox finishes the work, and every
piece of it is idempotent (one refund row and Stripe key per payment, one supplier key).

The request then sends the refunds itself, so that its answer can say "done" (200); while
Stripe is unavailable it answers 202 and the outbox completes the refund. Before the product's
cancellation cutoff (or for staff), anyone may cancel; after it, only staff."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from common.db import retry_on_deadlock, version_check
from common.exceptions import InvalidState
from common.faults import fault_point
from outbox.handlers import Verdict
from outbox.models import OutboxEvent
from outbox.services import outbox_enqueue, staff_alert_enqueue
from payments import gateway
from payments.exceptions import CancellationClosed
from payments.models import Payment, PaymentStatus, Refund, RefundStatus
from payments.services.apply import payment_apply_intent
from payments.services.locks import payment_lock_with_reservation, reservation_payments_locked
from payments.services.lookup import payment_attempt_resolve, payment_outcome_unknown
from payments.services.refunds import payment_refundable_amount, refund_deliver_now, refund_record
from payments.state import IN_FLIGHT, REFUNDABLE
from reservations.models import Reservation, ReservationStatus, SupplierStatus
from reservations.notifications import GuestEmail, guest_email_enqueue
from reservations.outbox import ReservationTopicHandler
from reservations.services import reservation_get_locked, reservation_transition
from reservations.state import TERMINAL, can_transition

logger = logging.getLogger("reserve.payments")

CANCEL_INTENT_TOPIC = "payment.cancel_intent"
COMPENSATE_TOPIC = "reservation.compensate"


@dataclass(frozen=True)
class CancelOutcome:
    reservation: Reservation
    # Every refund of the decision went through (or none was due): 200. Otherwise 202: the
    # outbox completes it (Stripe unavailable, or Stripe still processing the refund).
    done: bool


def cancellation_cutoff(*, product: Any, date: dt.date) -> dt.datetime | None:
    """The last moment a customer may cancel: `cancellation_cutoff_hours` before the service
    date (its start, 00:00 UTC); None when the product sets no cutoff."""
    if product.cancellation_cutoff_hours is None:
        return None
    start = dt.datetime.combine(date, dt.time.min, tzinfo=dt.UTC)
    return start - dt.timedelta(hours=product.cancellation_cutoff_hours)


def reservation_cancel_record(*, reservation: Reservation, actor: str, reason: str,
                              email: GuestEmail | None, dispatch: bool) -> list[Refund]:
    """Record a cancellation decision inside the caller's transaction, the reservation locked:
    CANCELLED, the refunds of all captured money, and the work that follows (see the module
    docstring). Returns the refunds decided. `dispatch=False` when the caller sends them."""
    payments = reservation_payments_locked(reservation=reservation)
    owed = [(payment, payment_refundable_amount(payment=payment)) for payment in payments
            if payment.status in REFUNDABLE and payment.stripe_payment_intent_id]
    owed = [(payment, amount) for payment, amount in owed if amount > 0]
    total = sum(amount for _, amount in owed)
    reservation_transition(reservation=reservation, to_status=ReservationStatus.CANCELLED, actor=actor,
                           reason=reason, data={"decided_by": actor, "refund_amount": total,
                                                "refund_payments": [str(payment.id) for payment, _ in owed]})
    refunds = [refund_record(payment=payment, reservation=reservation, amount=amount, reason=reason, actor=actor,
                             idempotency_key=f"cancel:{reservation.id}:{payment.id}", dispatch=dispatch)
               for payment, amount in owed]
    if email is not None and total:
        guest_email_enqueue(reservation=reservation, kind=email, refund_amount=total)
    return refunds


@retry_on_deadlock
def _cancel_decide(*, reservation_id: uuid.UUID | str, actor: str, reason: str, expected_version: int | None,
                   by_staff: bool) -> list[Refund]:
    with transaction.atomic(durable=True):
        reservation = reservation_get_locked(reservation_id=reservation_id)
        version_check(reservation, expected_version)
        if not can_transition(reservation.status, ReservationStatus.CANCELLED):
            raise InvalidState(f"A reservation in status {reservation.status} cannot be cancelled.",
                               extra={"current_status": reservation.status})
        cutoff = cancellation_cutoff(product=reservation.product, date=reservation.date)
        if not by_staff and cutoff is not None and timezone.now() >= cutoff:
            raise CancellationClosed(extra={"cancellable_until": cutoff.isoformat()})
        paid = reservation.status != ReservationStatus.PENDING_PAYMENT
        refunds = reservation_cancel_record(reservation=reservation, actor=actor, reason=reason,
                                            email=GuestEmail.CANCELLED_REFUND if paid else None, dispatch=False)
        fault_point("cancel.deciding")
    return refunds


def reservation_cancel(*, reservation_id: uuid.UUID | str, actor: str, reason: str,
                       expected_version: int | None = None, by_staff: bool = False) -> CancelOutcome:
    """Cancel for the customer (or staff, `by_staff`: the cutoff does not apply to them).
    Unpaid: CANCELLED, hold released, open PaymentIntents cancelled (outbox). Paid: the decision
    is recorded, then the refunds are sent now; the outbox finishes whatever this cannot."""
    refunds = _cancel_decide(reservation_id=reservation_id, actor=actor, reason=reason,
                             expected_version=expected_version, by_staff=by_staff)
    fault_point("cancel.decided")
    done = True
    for refund in refunds:
        done = refund_deliver_now(refund=refund).status == RefundStatus.SUCCEEDED and done
    reservation = Reservation.objects.get(pk=reservation_id)
    logger.info("reservation cancelled", extra={"reservation_id": str(reservation.id), "actor": actor,
                                                "refunds": len(refunds), "done": done})
    return CancelOutcome(reservation=reservation, done=done)


# --- the outbox topics this module owns --------------------------------------------------------

def compensation_enqueue(*, reservation: Reservation) -> OutboxEvent:
    """Refund and cancel a paid reservation whose booking the supplier rejected (C5), after that
    reservation's earlier events, inside the caller's transaction."""
    return outbox_enqueue(topic=COMPENSATE_TOPIC, dedup_key=f"{COMPENSATE_TOPIC}:{reservation.id}",
                          payload={"reservation_id": str(reservation.id)}, reservation=reservation)


def payments_on_supplier_status_change(reservation: Reservation, from_status: str, to_status: str) -> None:
    """Registered with reservations.services: a paid booking the supplier rejected is
    compensated (a rejection of a booking under staff care stays with staff: not PAID)."""
    if to_status == SupplierStatus.REJECTED and reservation.status == ReservationStatus.PAID:
        compensation_enqueue(reservation=reservation)


def payments_on_reservation_transition(reservation: Reservation, from_status: str, to_status: str) -> None:
    """Registered with reservations.services: when a reservation ends, every attempt that may
    still charge has its PaymentIntent cancelled at Stripe (the customer could otherwise
    complete 3-D Secure on it, be charged and then refunded, and Stripe keeps its fee)."""
    if to_status not in TERMINAL:
        return
    for payment_id in Payment.objects.filter(reservation=reservation, status__in=IN_FLIGHT).values_list("id",
                                                                                                       flat=True):
        outbox_enqueue(topic=CANCEL_INTENT_TOPIC, dedup_key=f"{CANCEL_INTENT_TOPIC}:{payment_id}",
                       payload={"payment_id": str(payment_id), "reservation_id": str(reservation.id)})


@dataclass(frozen=True)
class _Skip:
    note: str


@dataclass(frozen=True)
class _Later:
    error: str
    not_sent_for: float | None = None  # the breaker refused the call: defer, no attempt spent


class IntentCancelHandler(ReservationTopicHandler):
    """Outbox topic `payment.cancel_intent`: cancel one attempt's open PaymentIntent, idempotently
    (`cancel-intent:<payment id>`). An attempt whose create answer we never saw is looked up
    first (lookup.py); one Stripe finished meanwhile is applied as it is (a success on an ended
    reservation is refunded by the apply rules)."""

    def lock(self, event: OutboxEvent) -> tuple[Payment, Reservation]:
        return payment_lock_with_reservation(payment_id=event.payload["payment_id"])

    def perform(self, event: OutboxEvent) -> Any:
        payment = Payment.objects.get(pk=event.payload["payment_id"])
        if payment.status not in IN_FLIGHT:
            return _Skip(f"payment is {payment.status}")
        try:
            if not payment.stripe_payment_intent_id:
                if payment.status == PaymentStatus.PENDING and not payment_outcome_unknown(payment):
                    return _Later("the attempt is being sent right now")
                if not payment_attempt_resolve(payment=payment, actor="system", data={"looked_up_by": "cancel"}):
                    return _Later("Stripe cannot tell yet what happened to the attempt")
                payment.refresh_from_db()
                if payment.status not in IN_FLIGHT or not payment.stripe_payment_intent_id:
                    return _Skip(f"looked up: payment is {payment.status}")
            try:
                return gateway.payment_intent_cancel(intent_id=payment.stripe_payment_intent_id,
                                                     idempotency_key=f"cancel-intent:{payment.id}")
            except gateway.StripeRequestRejected:
                # Not cancelable any more (it succeeded or failed meanwhile): apply what it is.
                return gateway.payment_intent_retrieve(intent_id=payment.stripe_payment_intent_id)
        except gateway.StripeUnavailable as exc:
            return _Later(f"Stripe unavailable: {exc}"[:500], not_sent_for=None if exc.reached else exc.retry_after)
        except gateway.StripeMisconfigured as exc:
            return _Later(f"Stripe refuses our configuration: {exc}"[:500])

    def apply(self, event: OutboxEvent, result: Any, held: tuple[Payment, Reservation]) -> Verdict:
        if isinstance(result, _Skip):
            return Verdict.delivered(result.note)
        if isinstance(result, _Later):
            if result.not_sent_for is not None:
                return Verdict.defer(seconds=result.not_sent_for, reason=result.error)
            return Verdict.retry(result.error)
        payment, reservation = held
        payment_apply_intent(payment=payment, reservation=reservation, intent=result, actor="system",
                             data={"cancelled_because": f"reservation {reservation.status}"})
        return Verdict.delivered(f"intent {result.status}")

    def on_dead(self, event: OutboxEvent, error: str) -> None:
        payment, reservation = payment_lock_with_reservation(payment_id=event.payload["payment_id"])
        staff_alert_enqueue(reservation=reservation, dedup_key=f"intent-cancel-dead:{payment.id}",
                            subject="Open PaymentIntent could not be cancelled",
                            body=f"Reservation {reservation.code} is {reservation.status}, but its PaymentIntent "
                                 f"{payment.stripe_payment_intent_id or '(unknown)'} could not be cancelled: "
                                 f"{error}. The reconciler refunds any money it takes.")


class CompensationHandler(ReservationTopicHandler):
    """Outbox topic `reservation.compensate` (the suppliers app enqueues it on a rejection, C5):
    refund everything and cancel, as one recorded decision, and tell the guest."""

    def lock(self, event: OutboxEvent) -> Reservation:
        reservation = reservation_get_locked(reservation_id=event.payload["reservation_id"])
        reservation_payments_locked(reservation=reservation)
        return reservation

    def perform(self, event: OutboxEvent) -> None:
        return None  # nothing to ask anyone: the refunds are outbox events of their own

    def apply(self, event: OutboxEvent, result: None, held: Reservation) -> Verdict:
        reservation = held
        if reservation.status != ReservationStatus.PAID:
            return Verdict.delivered(f"reservation is {reservation.status}: no compensation")
        refunds = reservation_cancel_record(reservation=reservation, actor="system",
                                            reason="supplier rejected the booking; refunded",
                                            email=GuestEmail.REJECTED_REFUND, dispatch=True)
        return Verdict.delivered(f"compensated: {len(refunds)} refund(s) decided")

    def on_dead(self, event: OutboxEvent, error: str) -> None:
        reservation = reservation_get_locked(reservation_id=event.payload["reservation_id"])
        staff_alert_enqueue(reservation=reservation, subject="Compensation after a supplier rejection failed",
                            body=f"Reservation {reservation.code}: refund and cancel after the supplier's rejection "
                                 f"failed: {error}")

