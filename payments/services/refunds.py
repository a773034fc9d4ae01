"""Refunds (B6), cancelling a paid reservation, and cancelling an open PaymentIntent.

Same three phases as paying: write the Refund row (unique idempotency key) under the payment
lock, call Stripe with a key derived from that row, apply the answer in a second short
transaction. A retry with the same key resumes a PENDING refund and never refunds twice."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from django.db import models, transaction

from common.db import retry_on_deadlock, versioned_update
from common.exceptions import ApplicationError, InvalidState, NotFound, VersionConflict
from outbox.services import outbox_enqueue
from payments import gateway
from payments.exceptions import (
    PaymentProviderUnavailable,
    RefundExceedsCaptured,
    RefundFailed,
    RefundNotAllowed,
)
from payments.models import Payment, PaymentStatus, Refund, RefundStatus
from payments.services.apply import LATE_REFUND_REASON, late_refund_key, payment_lock_with_reservation
from payments.state import IN_FLIGHT, can_transition
from reservations.models import Reservation, ReservationStatus, SupplierStatus
from reservations.services import reservation_get_locked, reservation_record_event, reservation_transition
from reservations.state import can_transition as reservation_can_transition

logger = logging.getLogger("reserve.payments")

REFUNDABLE = frozenset({PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED})
# A refund under this key prefix was started by a cancellation: once it is really sent, the
# cancellation is completed (the reconciler finishes one whose request got a 503).
CANCEL_REFUND_PREFIX = "cancel:"
SUPPLIER_ASKED = frozenset({SupplierStatus.PENDING, SupplierStatus.CONFIRMED, SupplierStatus.ON_REQUEST})


def _refunds_total(payment: Payment, status: str) -> int:
    return payment.refunds.filter(status=status).aggregate(total=models.Sum("amount"))["total"] or 0


def payment_refundable_amount(*, payment: Payment) -> int:
    """What may still be refunded: the captured amount minus what Stripe or we refunded and
    what our own pending refunds are about to."""
    refunded = max(payment.refunded_amount, _refunds_total(payment, RefundStatus.SUCCEEDED))
    return max(payment.amount - refunded - _refunds_total(payment, RefundStatus.PENDING), 0)


@retry_on_deadlock
def _refund_begin(*, payment_id: Any, amount: int | None, reason: str, actor: str, idempotency_key: str) -> Refund:
    with transaction.atomic(durable=True):
        payment, _ = payment_lock_with_reservation(payment_id=payment_id)
        existing = Refund.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            if existing.payment_id != payment.id:
                raise ApplicationError("This idempotency key was used for another refund.",
                                       code="idempotency_key_reused", status_code=409)
            return existing
        if payment.status not in REFUNDABLE or not payment.stripe_payment_intent_id:
            raise RefundNotAllowed(f"A payment in status {payment.status} cannot be refunded.",
                                   extra={"payment_status": payment.status})
        remaining = payment_refundable_amount(payment=payment)
        amount = remaining if amount is None else amount
        if amount <= 0 or amount > remaining:
            raise RefundExceedsCaptured(extra={"refundable": remaining})
        return Refund.objects.create(payment=payment, idempotency_key=idempotency_key, amount=amount,
                                     reason=reason[:500], actor=actor)


@retry_on_deadlock
def _refund_finish(*, refund_id: Any, result: gateway.RefundResult | None, error: str = "") -> Refund:
    with transaction.atomic(durable=True):
        payment_id = Refund.objects.values_list("payment_id", flat=True).get(pk=refund_id)
        payment, reservation = payment_lock_with_reservation(payment_id=payment_id)
        refund = Refund.objects.select_for_update().get(pk=refund_id)
        if refund.status != RefundStatus.PENDING:
            return refund
        if result is None:
            versioned_update(refund, fields={"status": RefundStatus.FAILED, "failure_message": error[:500]})
            return refund
        versioned_update(refund, fields={"status": RefundStatus.SUCCEEDED, "stripe_refund_id": result.id})
        # Stripe's cumulative amount (charge.refunded) and our ledger may arrive in any order:
        # the larger one is the truth, never their sum.
        refunded = max(payment.refunded_amount, _refunds_total(payment, RefundStatus.SUCCEEDED))
        target = PaymentStatus.REFUNDED if refunded >= payment.amount else PaymentStatus.PARTIALLY_REFUNDED
        fields: dict[str, Any] = {"refunded_amount": refunded}
        if can_transition(payment.status, target):
            fields["status"] = target
        previous = payment.status
        versioned_update(payment, fields=fields)
        reservation_record_event(
            reservation=reservation, actor=refund.actor, reason=refund.reason or "refund",
            data={"payment_id": str(payment.id), "refund_id": str(refund.id), "amount": refund.amount,
                  "refunded_amount": refunded, "payment_status": {"from": previous, "to": payment.status}},
            from_status=reservation.status, to_status=reservation.status,
        )
    return refund


def payment_refund(*, payment: Payment, amount: int | None, reason: str, actor: str,
                   idempotency_key: str) -> Refund:
    """Refund `amount` (None = all that is left) of a captured payment, at most once per
    `idempotency_key`. Raises RefundNotAllowed / RefundExceedsCaptured (409), RefundFailed
    (502, Stripe refused) or PaymentProviderUnavailable (503: retry with the same key)."""
    refund = _refund_begin(payment_id=payment.id, amount=amount, reason=reason, actor=actor,
                           idempotency_key=idempotency_key)
    refund = payment_refund_send(refund=refund)
    payment.refresh_from_db()
    return refund


def payment_refund_send(*, refund: Refund) -> Refund:
    """Send a refund row to Stripe (again) with the key derived from the row: a PENDING refund
    whose first send timed out is answered from Stripe's idempotency cache, never refunded
    twice. Raises RefundFailed (502) or PaymentProviderUnavailable (503, stays PENDING)."""
    if refund.status == RefundStatus.SUCCEEDED:
        return refund
    if refund.status == RefundStatus.FAILED:
        raise RefundFailed(refund.failure_message or None)
    intent_id, reservation_id = Payment.objects.values_list(
        "stripe_payment_intent_id", "reservation_id").get(pk=refund.payment_id)
    try:
        result = gateway.refund_create(
            payment_intent_id=intent_id, amount=refund.amount, idempotency_key=refund.stripe_idempotency_key,
            metadata={"refund_id": str(refund.id), "reservation_id": str(reservation_id)},
        )
    except gateway.StripeUnavailable as exc:
        raise PaymentProviderUnavailable(retry_after=exc.retry_after) from exc
    except (gateway.StripeRequestRejected, gateway.CardDeclined) as exc:
        _refund_finish(refund_id=refund.id, result=None, error=str(exc))
        raise RefundFailed(str(exc)) from exc
    return _refund_finish(refund_id=refund.id, result=result)


def payment_refund_everything(*, payment: Payment, reason: str, actor: str, idempotency_key: str) -> list[Refund]:
    """Give back all captured money of `payment`: first re-send every refund still PENDING (by
    whatever path wrote it: a cancel that got a 503, a supplier-rejection compensation, a late
    payment), then refund what is left under `idempotency_key`. Returns only when all of it is
    really refunded; raises PaymentProviderUnavailable / RefundFailed otherwise, and a retry
    with the same key resumes exactly where this one stopped."""
    refunds = [payment_refund_send(refund=pending)
               for pending in payment.refunds.filter(status=RefundStatus.PENDING).order_by("created_at")]
    payment.refresh_from_db()
    own = Refund.objects.filter(idempotency_key=idempotency_key, payment=payment).first()
    if own is not None and own.status != RefundStatus.PENDING:
        if own.status == RefundStatus.FAILED:
            raise RefundFailed(own.failure_message or None)
        return refunds if own in refunds else [*refunds, own]
    if payment.status in REFUNDABLE and payment_refundable_amount(payment=payment) > 0:
        refunds.append(payment_refund(payment=payment, amount=None, reason=reason, actor=actor,
                                      idempotency_key=idempotency_key))
    return refunds


def cancel_refund_key(*, reservation_id: Any, payment_id: Any) -> str:
    return f"{CANCEL_REFUND_PREFIX}{reservation_id}:{payment_id}"


def payment_refund_late(*, payment: Payment) -> Refund | None:
    """A success that came after the reservation stopped accepting money: give it back.
    If Stripe is unreachable now, `payments_reconcile` retries with the same key."""
    try:
        return payment_refund(payment=payment, amount=None, reason=LATE_REFUND_REASON,
                              actor="system", idempotency_key=late_refund_key(payment_id=payment.id))
    except (PaymentProviderUnavailable, RefundFailed, RefundExceedsCaptured, RefundNotAllowed):
        logger.warning("late payment refund not done yet; the reconciler retries",
                       extra={"payment_id": str(payment.id)}, exc_info=True)
        return None


@retry_on_deadlock
def _reservation_cancel_after_refund(*, reservation_id: Any, actor: str, reason: str,
                                     data: dict[str, Any]) -> Reservation:
    with transaction.atomic(durable=True):
        reservation = reservation_get_locked(reservation_id=reservation_id)
        if reservation.status == ReservationStatus.CANCELLED:
            return reservation  # a concurrent cancel finished first
        if not reservation_can_transition(reservation.status, ReservationStatus.CANCELLED):
            raise InvalidState(f"A reservation in status {reservation.status} cannot be cancelled.",
                               extra={"current_status": reservation.status})
        supplier_asked = reservation.supplier_status in SUPPLIER_ASKED
        reservation_transition(reservation=reservation, to_status=ReservationStatus.CANCELLED, actor=actor,
                               reason=reason, data=data)
        if supplier_asked:
            outbox_enqueue(topic="supplier.cancel", dedup_key=f"supplier.cancel:{reservation.id}",
                           payload={"reservation_id": str(reservation.id)}, reservation=reservation)
    return reservation


def reservation_cancel_paid(*, reservation_id: uuid.UUID | str, actor: str, reason: str,
                            expected_version: int | None) -> Reservation:
    """Full refund through the gateway, then CANCELLED (+ supplier cancellation via the outbox)
    in one transaction. The version is checked before any money moves, so a stale staff form
    is refused without refunding."""
    reservation = Reservation.objects.filter(pk=reservation_id).first()
    if reservation is None:
        raise NotFound("Reservation not found.")
    if expected_version is not None and reservation.version != expected_version:
        raise VersionConflict(extra={"current_version": reservation.version})
    if not reservation_can_transition(reservation.status, ReservationStatus.CANCELLED):
        raise InvalidState(f"A reservation in status {reservation.status} cannot be cancelled.",
                           extra={"current_status": reservation.status})
    data: dict[str, Any] = {}
    # Every payment holding money, or with a refund still PENDING: that refund is sent again with
    # its own Stripe key before anything is cancelled (a retry after a 503 must not find "nothing
    # refundable" because the PENDING refund already counts as given back).
    payments = reservation.payments.filter(
        models.Q(status__in=REFUNDABLE) | models.Q(refunds__status=RefundStatus.PENDING)).distinct()
    for payment in payments:
        for refund in payment_refund_everything(
                payment=payment, reason=reason, actor=actor,
                idempotency_key=cancel_refund_key(reservation_id=reservation.id, payment_id=payment.id)):
            data.setdefault("refunds", []).append({"refund_id": str(refund.id), "amount": refund.amount})
    return _reservation_cancel_after_refund(reservation_id=reservation.id, actor=actor, reason=reason, data=data)


def payment_cancel_open_intent(*, reservation: Reservation) -> int:
    """Cancel the PaymentIntents of a reservation that are not finished (reservation expiry).
    Stripe may answer that the intent already succeeded: then that truth is applied (the
    reservation gets paid, or refunded if it can no longer be). Returns how many changed."""
    from payments.services.pay import payment_apply_intent_now

    changed = 0
    for payment in Payment.objects.filter(reservation=reservation, status__in=IN_FLIGHT):
        if not payment.stripe_payment_intent_id:
            continue  # Stripe never answered the create: the reconciler settles it
        try:
            intent = gateway.payment_intent_cancel(intent_id=payment.stripe_payment_intent_id,
                                                   idempotency_key=f"cancel-intent:{payment.id}")
        except gateway.StripeRequestRejected:
            # Not cancelable any more (e.g. it succeeded meanwhile): apply what it really is.
            intent = gateway.payment_intent_retrieve(intent_id=payment.stripe_payment_intent_id)
        except gateway.StripeUnavailable as exc:
            raise PaymentProviderUnavailable(retry_after=exc.retry_after) from exc
        outcome = payment_apply_intent_now(payment_id=payment.id, intent=intent, actor="system")
        if outcome.refund_due:
            payment_refund_late(payment=outcome.payment)
        changed += int(outcome.changed)
    return changed


__all__ = [
    "cancel_refund_key",
    "payment_cancel_open_intent",
    "payment_refund",
    "payment_refund_everything",
    "payment_refund_late",
    "payment_refund_send",
    "payment_refundable_amount",
    "reservation_cancel_paid",
]
