"""The pay flow (B1-B3): three short phases, the Stripe call outside any transaction.

1. begin (one transaction, reservation row locked): check the state, take the per-reservation
   "payment in progress" guard (a unique column) and write the Payment attempt;
2. call Stripe with a key derived from the attempt (no transaction, no lock);
3. apply (one transaction, rows locked, version-checked): payment, reservation, timeline and
   the supplier booking outbox event together.

A request that dies between 1 and 3 leaves the attempt in flight: a retry with the same
Idempotency-Key resumes it (same Stripe key), and `payments_reconcile` settles it otherwise."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from common.db import retry_on_deadlock, versioned_update
from common.exceptions import InvalidState
from payments import gateway
from payments.exceptions import PaymentDeclined, PaymentInProgress, PaymentProviderUnavailable
from payments.faults import fault_point
from payments.models import Payment, PaymentStatus
from payments.services.apply import ApplyOutcome, payment_apply_intent, payment_lock_with_reservation
from payments.state import IN_FLIGHT
from reservations.models import Reservation, ReservationStatus
from reservations.services import reservation_get_locked, reservation_record_event

logger = logging.getLogger("reserve.payments")


@dataclass(frozen=True)
class PayOutcome:
    reservation: Reservation
    payment: Payment
    http_status: int  # 200 paid, 202 Stripe has not finished


@retry_on_deadlock
def _pay_begin(*, reservation_id: uuid.UUID | str, payment_method: str, attempt_key: str) -> Payment:
    with transaction.atomic(durable=True):
        reservation = reservation_get_locked(reservation_id=reservation_id)
        if reservation.status != ReservationStatus.PENDING_PAYMENT:
            raise InvalidState(f"A reservation in status {reservation.status} cannot be paid.",
                               extra={"current_status": reservation.status})
        in_flight = Payment.objects.filter(in_flight_for=reservation.id).first()
        if in_flight is not None:
            if in_flight.attempt_key == attempt_key:
                return in_flight  # the same request again (after a 503): resume this attempt
            raise PaymentInProgress
        if reservation.expires_at is not None and reservation.expires_at <= timezone.now():
            raise InvalidState("The reservation hold has expired.", extra={"current_status": reservation.status})
        try:
            # The row lock above already serialises payers; the unique guard is what makes a
            # second in-flight attempt impossible even for code that forgets the lock.
            with transaction.atomic():
                payment = Payment.objects.create(
                    reservation=reservation, amount=reservation.amount, currency=reservation.currency,
                    payment_method_id=payment_method, attempt_key=attempt_key, in_flight_for=reservation.id,
                )
        except IntegrityError as exc:
            raise PaymentInProgress from exc
        reservation_record_event(reservation=reservation, actor="customer", reason="payment started",
                                 data={"payment_id": str(payment.id)},
                                 from_status=reservation.status, to_status=reservation.status)
    return payment


@retry_on_deadlock
def payment_apply_intent_now(*, payment_id: Any, intent: gateway.IntentResult, actor: str,
                             data: dict[str, Any] | None = None) -> ApplyOutcome:
    """Phase 3 (also used by the reconciler): lock, apply, commit."""
    with transaction.atomic(durable=True):
        payment, reservation = payment_lock_with_reservation(payment_id=payment_id)
        outcome = payment_apply_intent(payment=payment, reservation=reservation, intent=intent, actor=actor,
                                       data=data)
        fault_point("pay.apply")
    return outcome


@retry_on_deadlock
def _pay_fail(*, payment_id: Any, code: str, message: str, intent_id: str) -> Payment:
    """Stripe refused the charge: the attempt is over and the customer may pay again."""
    with transaction.atomic(durable=True):
        payment, reservation = payment_lock_with_reservation(payment_id=payment_id)
        if payment.status in IN_FLIGHT:
            fields: dict[str, Any] = {"status": PaymentStatus.FAILED, "in_flight_for": None,
                                      "failure_code": code[:64], "failure_message": message[:500]}
            if intent_id and not payment.stripe_payment_intent_id:
                fields["stripe_payment_intent_id"] = intent_id
            versioned_update(payment, fields=fields)
            reservation_record_event(reservation=reservation, actor="stripe", reason="payment failed",
                                     data={"payment_id": str(payment.id), "failure_code": code},
                                     from_status=reservation.status, to_status=reservation.status)
    return payment


def payment_intent_params(payment: Payment) -> dict[str, Any]:
    return {
        "amount": payment.amount, "currency": payment.currency, "payment_method": payment.payment_method_id,
        # reservation_id is the public contract; payment_id lets a webhook find an attempt
        # whose create answer we never saw.
        "metadata": {"reservation_id": str(payment.reservation_id), "payment_id": str(payment.id)},
        "idempotency_key": payment.stripe_idempotency_key,
    }


def _outcome(payment: Payment, reservation: Reservation) -> PayOutcome:
    if payment.status == PaymentStatus.SUCCEEDED:
        return PayOutcome(reservation=reservation, payment=payment, http_status=200)
    if payment.status in (PaymentStatus.PROCESSING, PaymentStatus.REQUIRES_ACTION):
        return PayOutcome(reservation=reservation, payment=payment, http_status=202)
    raise PaymentDeclined(payment.failure_message or None, code=payment.failure_code or "card_declined")


def reservation_pay(*, reservation_id: uuid.UUID | str, payment_method: str, attempt_key: str) -> PayOutcome:
    """Charge a reservation once. Raises PaymentDeclined (402), PaymentInProgress (409),
    InvalidState (409) or PaymentProviderUnavailable (503, the attempt stays resumable)."""
    payment = _pay_begin(reservation_id=reservation_id, payment_method=payment_method, attempt_key=attempt_key)
    if payment.status != PaymentStatus.PENDING:
        # Resumed an attempt Stripe already answered (202 earlier): report where it stands.
        reservation = Reservation.objects.get(pk=payment.reservation_id)
        return _outcome(payment, reservation)

    try:
        intent = gateway.payment_intent_create(**payment_intent_params(payment))
    except gateway.CardDeclined as exc:
        _pay_fail(payment_id=payment.id, code=exc.code, message=exc.message, intent_id=exc.payment_intent_id)
        raise PaymentDeclined(exc.message, code=exc.code) from exc
    except gateway.StripeRequestRejected as exc:
        _pay_fail(payment_id=payment.id, code=exc.code, message=exc.message, intent_id="")
        raise PaymentDeclined(exc.message, code=exc.code) from exc
    except gateway.StripeUnavailable as exc:
        # The attempt stays in flight: whether Stripe charged is unknown until the same
        # Stripe key is sent again (retry with the same Idempotency-Key, or the reconciler).
        raise PaymentProviderUnavailable(retry_after=exc.retry_after) from exc

    outcome = payment_apply_intent_now(payment_id=payment.id, intent=intent, actor="stripe")
    if outcome.refund_due:
        from payments.services.refunds import payment_refund_late

        payment_refund_late(payment=outcome.payment)
        raise InvalidState("The reservation can no longer be paid; the payment is refunded.",
                           extra={"current_status": outcome.reservation.status})
    return _outcome(outcome.payment, outcome.reservation)
