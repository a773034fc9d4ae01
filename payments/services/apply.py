"""Applying what Stripe says about a PaymentIntent: the one place shared by the pay
request, the webhook and the reconciler, so all three obey the same rules."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from common.db import versioned_update
from outbox.services import outbox_enqueue
from payments.gateway import IntentResult
from payments.models import Payment, PaymentStatus, Refund
from payments.state import IN_FLIGHT, can_transition
from reservations.models import Reservation, ReservationStatus, SupplierStatus
from reservations.services import reservation_get_locked, reservation_record_event, reservation_transition

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


def _late_refund_record(payment: Payment) -> None:
    """Write the refund that is due in the same transaction as the success that makes it due,
    so it survives Stripe being down and the process dying before the refund call: the caller
    sends it after commit, `payments_reconcile` re-sends it if that did not happen. The caller
    holds the payment row lock, which is what `_refund_begin` serialises on too."""
    from payments.services.refunds import payment_refundable_amount

    key = late_refund_key(payment_id=payment.id)
    amount = payment_refundable_amount(payment=payment)
    if amount > 0 and payment.stripe_payment_intent_id and not Refund.objects.filter(idempotency_key=key).exists():
        Refund.objects.create(payment=payment, idempotency_key=key, amount=amount, reason=LATE_REFUND_REASON,
                              actor="system")


@dataclass
class ApplyOutcome:
    payment: Payment
    reservation: Reservation
    changed: bool
    # Money was captured for a reservation that can no longer take it (expired, cancelled or
    # already paid by another attempt): the caller refunds it after commit.
    refund_due: bool = False


def payment_lock_with_reservation(*, payment_id: Any) -> tuple[Payment, Reservation]:
    """Lock order everywhere: reservation row, then payment row (no deadlock between the pay
    flow, the webhook and refunds)."""
    reservation_id = Payment.objects.values_list("reservation_id", flat=True).get(pk=payment_id)
    reservation = reservation_get_locked(reservation_id=reservation_id)
    payment = Payment.objects.select_for_update().get(pk=payment_id)
    return payment, reservation


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
    if target is None or target == payment.status or not can_transition(payment.status, target):
        # Late, repeated or out of order: a terminal state never regresses.
        if links:
            versioned_update(payment, fields=links)
        return ApplyOutcome(payment=payment, reservation=reservation, changed=False)

    previous = payment.status
    fields: dict[str, Any] = {"status": target, **links}
    if target == PaymentStatus.REQUIRES_ACTION:
        fields["client_secret"] = intent.client_secret
    if target in (PaymentStatus.FAILED, PaymentStatus.CANCELED):
        fields["failure_code"] = (intent.failure_code or ("canceled" if target == PaymentStatus.CANCELED
                                                          else "payment_failed"))[:64]
        fields["failure_message"] = intent.failure_message[:500]
    if target not in IN_FLIGHT:
        fields["in_flight_for"] = None  # the guard falls: the customer may pay again
    versioned_update(payment, fields=fields)

    event_data = {"payment_id": str(payment.id), "payment_intent": intent.id,
                  "payment_status": {"from": previous, "to": target}, **(data or {})}
    refund_due = False
    if target == PaymentStatus.SUCCEEDED:
        already_paid = reservation.payments.filter(
            status__in=[PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.DISPUTED,
                        PaymentStatus.REFUNDED]).exclude(pk=payment.pk).exists()
        if reservation.status == ReservationStatus.PENDING_PAYMENT and not already_paid:
            reservation_transition(
                reservation=reservation, to_status=ReservationStatus.PAID, actor=actor, reason="payment succeeded",
                data=event_data, fields={"supplier_status": SupplierStatus.PENDING},
            )
            # B2/C1: the booking request is written in the same transaction as the payment.
            outbox_enqueue(topic="supplier.book", dedup_key=f"supplier.book:{reservation.id}",
                           payload={"reservation_id": str(reservation.id)}, reservation=reservation)
        else:
            # Never revive an expired or cancelled reservation, never keep a second charge.
            refund_due = True
            _late_refund_record(payment)
            reservation_record_event(
                reservation=reservation, actor=actor, reason="payment succeeded too late: refund due",
                data=event_data, from_status=reservation.status, to_status=reservation.status,
            )
            logger.warning("late payment success, refund due",
                           extra={"reservation_id": str(reservation.id), "payment_id": str(payment.id)})
    else:
        reservation_record_event(
            reservation=reservation, actor=actor, reason=f"payment {target.lower().replace('_', ' ')}",
            data={**event_data, **({"failure_code": fields["failure_code"]} if "failure_code" in fields else {})},
            from_status=reservation.status, to_status=reservation.status,
        )
    return ApplyOutcome(payment=payment, reservation=reservation, changed=True, refund_due=refund_due)
