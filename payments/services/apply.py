"""Applying what Stripe says about a PaymentIntent: the one place shared by the pay request,
the webhook, the lookups and the reconciler, so all of them obey the same rules."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from common.db import versioned_update
from payments.gateway import IntentResult
from payments.models import Payment, PaymentStatus
from payments.services.refunds import payment_refundable_amount, refund_record
from payments.state import CAPTURED, IN_FLIGHT, can_transition
from reservations.models import Reservation, ReservationStatus, SupplierStatus
from reservations.services import reservation_record_event, reservation_transition

logger = logging.getLogger("reserve.payments")

# Stripe PaymentIntent status → ours. `requires_payment_method` after a confirm means the
# attempt failed; `requires_capture` cannot last with automatic capture.
INTENT_STATUS: dict[str, str] = {
    "succeeded": PaymentStatus.SUCCEEDED,
    "processing": PaymentStatus.PROCESSING,
    "requires_capture": PaymentStatus.PROCESSING,
    "requires_action": PaymentStatus.REQUIRES_ACTION,
    "requires_source_action": PaymentStatus.REQUIRES_ACTION,
    "requires_payment_method": PaymentStatus.FAILED,
    "canceled": PaymentStatus.CANCELED,
    "requires_confirmation": PaymentStatus.PENDING,
}

LATE_REFUND_REASON = "payment not needed: the reservation ended or was already paid"


def late_refund_key(*, payment_id: Any) -> str:
    return f"late:{payment_id}"


@dataclass
class ApplyOutcome:
    payment: Payment
    reservation: Reservation
    changed: bool
    # Money was captured for a reservation that can no longer take it (expired, cancelled or
    # already paid by another attempt): a refund was decided in the same transaction.
    refund_due: bool = False


def _late_refund_record(payment: Payment, reservation: Reservation) -> None:
    """Give back money taken for a reservation that stopped accepting it, decided in the same
    transaction as the success that makes it due (its outbox event sends it)."""
    if payment_refundable_amount(payment=payment) > 0 and payment.stripe_payment_intent_id:
        refund_record(payment=payment, reservation=reservation, amount=None, reason=LATE_REFUND_REASON,
                      actor="system", idempotency_key=late_refund_key(payment_id=payment.id))


def payment_apply_intent(
    *, payment: Payment, reservation: Reservation, intent: IntentResult, actor: str,
    data: dict[str, Any] | None = None,
) -> ApplyOutcome:
    """Move `payment` (and its reservation) to the state `intent` reports. The caller holds
    both row locks inside its transaction; writes are version-checked."""
    target = INTENT_STATUS.get(intent.status)
    links: dict[str, Any] = {}
    if intent.id and payment.stripe_payment_intent_id != intent.id:
        links["stripe_payment_intent_id"] = intent.id
    if intent.latest_charge_id and payment.stripe_charge_id != intent.latest_charge_id:
        links["stripe_charge_id"] = intent.latest_charge_id
    if payment.outcome_unknown_at is not None and target is not None:
        links["outcome_unknown_at"] = None  # Stripe's answer is known now
    if target is None or target == payment.status or not can_transition(payment.status, target):
        # Late, repeated or out of order: a terminal state never regresses.
        if links:
            versioned_update(payment, fields=links)
        return ApplyOutcome(payment=payment, reservation=reservation, changed=False)

    previous = payment.status
    fields: dict[str, Any] = {"status": target, **links}
    if target == PaymentStatus.REQUIRES_ACTION:
        fields["client_secret"] = intent.client_secret
        fields["next_action"] = intent.next_action
    elif payment.next_action is not None:
        fields["next_action"] = None
    if target in (PaymentStatus.FAILED, PaymentStatus.CANCELED):
        fields["failure_code"] = (intent.failure_code or ("canceled" if target == PaymentStatus.CANCELED
                                                          else "payment_failed"))[:64]
        fields["failure_message"] = intent.failure_message[:500]
    if target not in IN_FLIGHT:
        fields["in_flight_for"] = None  # the guard falls: the customer may pay again
    if target == PaymentStatus.SUCCEEDED and payment.refunded_amount >= payment.amount:
        # Stripe told us of a full refund before the success (out of order): the money is
        # already back, there is nothing to book.
        fields["status"] = target = PaymentStatus.REFUNDED
    versioned_update(payment, fields=fields)

    event_data = {"payment_id": str(payment.id), "payment_intent": intent.id,
                  "payment_status": {"from": previous, "to": target}, **(data or {})}
    refund_due = False
    if target == PaymentStatus.SUCCEEDED:
        # The reservation's payments were locked with it (payment_lock_with_reservation): read
        # from there, a capture by another attempt cannot hide.
        already_paid = any(other.pk != payment.pk and other.status in CAPTURED for other in reservation.payments_read())
        if reservation.status == ReservationStatus.PENDING_PAYMENT and not already_paid:
            reservation_transition(
                reservation=reservation, to_status=ReservationStatus.PAID, actor=actor, reason="payment succeeded",
                data=event_data, fields={"supplier_status": SupplierStatus.PENDING},
            )
            # B2/C1: the suppliers app's transition hook writes the booking request in this
            # same transaction (suppliers.booking.supplier_book_enqueue).
        else:
            # Never revive an expired or cancelled reservation, never keep a second charge.
            refund_due = True
            _late_refund_record(payment, reservation)
            reservation_record_event(
                reservation=reservation, actor=actor, reason="payment succeeded too late: refund due",
                data=event_data, from_status=reservation.status, to_status=reservation.status,
            )
            logger.warning("late payment success, refund due",
                           extra={"reservation_id": str(reservation.id), "payment_id": str(payment.id)})
    else:
        reason = ("payment succeeded after a full refund: nothing to book" if target == PaymentStatus.REFUNDED
                  else f"payment {target.lower().replace('_', ' ')}")
        reservation_record_event(
            reservation=reservation, actor=actor, reason=reason,
            data={**event_data, **({"failure_code": fields["failure_code"]} if "failure_code" in fields else {})},
            from_status=reservation.status, to_status=reservation.status,
        )
    return ApplyOutcome(payment=payment, reservation=reservation, changed=True, refund_due=refund_due)
