"""The pay flow (B1-B3, B7, B8, B11): three short phases, the Stripe call outside any transaction.

1. begin (one transaction, reservation row locked): check the state, take the per-reservation
   "payment in progress" guard (a unique column) and write the Payment attempt;
2. call Stripe with a key derived from the attempt (no transaction, no lock);
3. apply (one transaction, rows locked, version-checked): payment, reservation, timeline, the
   supplier booking outbox event and the request's idempotent answer together.

What the Stripe call's failure means decides what happens to the attempt (B8):
- it provably never reached Stripe (breaker open, connection refused), or Stripe refused it
  without executing (our key or configuration): the attempt is closed at once, 503, and a new
  key (or the same one) pays immediately;
- it may have reached Stripe (timeout, 5xx, 409): the outcome is unknown, 503. The same key
  sends the identical request again (Stripe's idempotency layer answers it); another key first
  looks the attempt up, and pays only once it is known that no charge exists.

A customer's key maps to one attempt: a retry with it reports that attempt's final outcome (200
once a webhook settled it, 402 if declined), never a second charge and never a 409."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from common.compiled import insert_row
from common.db import retry_on_deadlock
from common.exceptions import InvalidState, NotFound
from outbox.services import staff_alert_enqueue
from payments import gateway
from payments.exceptions import (
    PaymentDeclined,
    PaymentInProgress,
    PaymentMethodRejected,
    PaymentProviderUnavailable,
)
from payments.models import Payment, PaymentStatus
from payments.services.locks import reservation_payments
from payments.services.lookup import (
    NOT_SENT,
    PAYMENT_METHOD_UNUSABLE,
    PROVIDER_MISCONFIGURED,
    attempt_params,
    payment_apply_intent_now,
    payment_attempt_resolve,
    payment_close_without_charge,
    payment_fail,
    payment_mark_outcome_unknown,
    payment_outcome_unknown,
)
from payments.state import IN_FLIGHT
from reservations.expiry import in_flight_grace
from reservations.models import Reservation, ReservationStatus
from reservations.services import reservation_get_locked, reservation_record_event

logger = logging.getLogger("reserve.payments")

# While another request of this reservation is paying: how soon to try again.
IN_PROGRESS_RETRY_AFTER = 2


@dataclass(frozen=True)
class PayOutcome:
    reservation: Reservation
    payment: Payment
    http_status: int  # 200 paid, 202 Stripe has not finished, 402 declined


# Called inside the transaction that commits the outcome: the API stores its answer there (B11).
PayResponder = Callable[[PayOutcome], None]


@dataclass(frozen=True)
class _Blocked:
    """Another key's attempt holds the guard with an unknown outcome: look it up first."""

    payment: Payment


@retry_on_deadlock
def _pay_begin(*, reservation_id: uuid.UUID | str, payer: Any, payment_method: str, attempt_key: str,
               return_url: str) -> Payment | _Blocked:
    with transaction.atomic(durable=True):
        reservation = reservation_get_locked(reservation_id=reservation_id)
        if payer is not None and reservation.user_id != payer.pk:
            # Another customer's reservation is indistinguishable from a missing one (A3).
            raise NotFound("Reservation not found.")
        # All attempts of the reservation in one read (usually none or one): under the
        # reservation's lock no other attempt can start or end meanwhile.
        payments = reservation_payments(reservation=reservation)
        own = max((p for p in payments if p.attempt_key == attempt_key), key=lambda p: p.created_at, default=None)
        if own is not None and own.status != PaymentStatus.CANCELED:
            return own  # this key's attempt: continue it, or report where it stands
        # (A CANCELED attempt took no money: the same key may start afresh.)
        if reservation.status != ReservationStatus.PENDING_PAYMENT:
            raise InvalidState(f"A reservation in status {reservation.status} cannot be paid.",
                               extra={"current_status": reservation.status})
        in_flight = next((p for p in payments if p.in_flight_for is not None), None)
        if in_flight is not None:
            if payment_outcome_unknown(in_flight):
                return _Blocked(in_flight)
            raise PaymentInProgress(headers={"Retry-After": str(IN_PROGRESS_RETRY_AFTER)})
        if reservation.expires_at is not None and reservation.expires_at <= timezone.now():
            raise InvalidState("The reservation hold has expired.", extra={"current_status": reservation.status})
        try:
            # The row lock above already serialises payers; the unique guard is what makes a
            # second in-flight attempt impossible even for code that forgets the lock. (No
            # savepoint: after a refusal this transaction only rolls back.)
            payment = insert_row(Payment(
                reservation=reservation, amount=reservation.amount, currency=reservation.currency,
                payment_method_id=payment_method, attempt_key=attempt_key, in_flight_for=reservation.id,
                return_url=return_url,
            ))
        except IntegrityError as exc:
            raise PaymentInProgress(headers={"Retry-After": str(IN_PROGRESS_RETRY_AFTER)}) from exc
        reservation_record_event(reservation=reservation, actor="customer", reason="payment started",
                                 data={"payment_id": str(payment.id)},
                                 from_status=reservation.status, to_status=reservation.status)
    return payment


def _begin(*, reservation_id: uuid.UUID | str, payer: Any, payment_method: str, attempt_key: str,
           return_url: str) -> Payment:
    """Phase 1, after looking up another key's attempt whose outcome is unknown (B8): the first
    pay request after Stripe answers again resolves it synchronously."""
    begun = _pay_begin(reservation_id=reservation_id, payer=payer, payment_method=payment_method,
                       attempt_key=attempt_key, return_url=return_url)
    if not isinstance(begun, _Blocked):
        return begun
    try:
        known = payment_attempt_resolve(payment=begun.payment, actor="system", data={"looked_up_by": "pay"})
    except gateway.StripeUnavailable as exc:
        raise PaymentInProgress(headers={"Retry-After": str(exc.retry_after)}) from exc
    except gateway.GatewayError as exc:  # Stripe refuses the lookup itself (our key, a 404)
        logger.error("payment attempt lookup failed", extra={"payment_id": str(begun.payment.id)}, exc_info=True)
        raise PaymentProviderUnavailable(retry_after=IN_PROGRESS_RETRY_AFTER) from exc
    if not known:
        raise PaymentInProgress(headers={"Retry-After": str(IN_PROGRESS_RETRY_AFTER)})
    begun = _pay_begin(reservation_id=reservation_id, payer=payer, payment_method=payment_method,
                       attempt_key=attempt_key, return_url=return_url)
    if isinstance(begun, _Blocked):
        raise PaymentInProgress(headers={"Retry-After": str(IN_PROGRESS_RETRY_AFTER)})
    return begun


def _settled(payment: Payment) -> PayOutcome:
    """Where a known attempt stands, as the pay answer."""
    reservation = Reservation.objects.get(pk=payment.reservation_id)
    if payment.status == PaymentStatus.SUCCEEDED:
        return PayOutcome(reservation=reservation, payment=payment, http_status=200)
    if payment.status in (PaymentStatus.PROCESSING, PaymentStatus.REQUIRES_ACTION):
        return PayOutcome(reservation=reservation, payment=payment, http_status=202)
    if payment.status == PaymentStatus.FAILED:
        raise PaymentDeclined(payment.failure_message or None, code=payment.failure_code or "card_declined")
    # Captured, then refunded or disputed; or cancelled: this attempt is over.
    raise InvalidState(f"This payment attempt is {payment.status}.", extra={"payment_status": payment.status,
                                                                           "current_status": reservation.status})


def _alert_misconfigured(payment: Payment, exc: gateway.StripeMisconfigured) -> None:
    @retry_on_deadlock
    def alert() -> None:
        with transaction.atomic(durable=True):
            reservation = Reservation.objects.get(pk=payment.reservation_id)
            hour = timezone.now().strftime("%Y%m%d%H")
            staff_alert_enqueue(
                reservation=reservation, dedup_key=f"stripe-misconfigured:{exc.code}:{hour}",
                subject="Stripe refuses our requests: nobody can pay",
                body=f"Stripe answered {exc.http_status} ({exc.code}): {exc.message}. Check STRIPE_API_KEY "
                     "(rotated or revoked?) and the account's settings. Payments answer 503 until fixed.")

    alert()


def _render(respond: PayResponder | None) -> Callable[[Any], None] | None:
    if respond is None:
        return None

    def on_committing(outcome: Any) -> None:
        if outcome.refund_due:
            return  # the answer is an error, stored after
        payment, reservation = outcome.payment, outcome.reservation
        status = 200 if payment.status == PaymentStatus.SUCCEEDED else 202
        if payment.status in (PaymentStatus.SUCCEEDED, PaymentStatus.PROCESSING, PaymentStatus.REQUIRES_ACTION):
            respond(PayOutcome(reservation=reservation, payment=payment, http_status=status))

    return on_committing


def reservation_pay(*, reservation_id: uuid.UUID | str, payment_method: str, attempt_key: str,
                    return_url: str = "", payer: Any = None, respond: PayResponder | None = None) -> PayOutcome:
    """Charge a reservation once. Raises NotFound (404: not `payer`'s reservation, when a payer
    is given), PaymentDeclined (402), PaymentMethodRejected (400), PaymentInProgress (409),
    InvalidState (409) or PaymentProviderUnavailable (503).
    `respond(outcome)` runs inside the transaction that commits a 200, 202 or 402 (B11)."""
    payment = _begin(reservation_id=reservation_id, payer=payer, payment_method=payment_method,
                     attempt_key=attempt_key, return_url=return_url)
    if payment.status != PaymentStatus.PENDING:
        return _settled(payment)

    try:
        intent = gateway.payment_intent_create(**attempt_params(payment))
    except gateway.CardDeclined as exc:
        def respond_declined(payment: Payment, reservation: Reservation) -> None:
            if respond is not None:
                respond(PayOutcome(reservation=reservation, payment=payment, http_status=402))

        payment_fail(payment_id=payment.id, code=exc.code, message=exc.message, intent_id=exc.payment_intent_id,
                     on_committing=respond_declined)
        raise PaymentDeclined(exc.message, code=exc.code) from exc
    except gateway.PaymentMethodUnusable as exc:
        payment_close_without_charge(payment_id=payment.id, code=PAYMENT_METHOD_UNUSABLE, message=exc.message)
        raise PaymentMethodRejected(exc.message) from exc
    except gateway.StripeIdempotencyKeyReused as exc:
        # A lookup (reconciler, intent cancel) probed this attempt's key while our request was on
        # its way: the lookup's answer decides. Report where the attempt stands.
        payment_attempt_resolve(payment=payment, actor="system")
        payment.refresh_from_db()
        if payment.status == PaymentStatus.PENDING:
            raise PaymentProviderUnavailable(retry_after=IN_PROGRESS_RETRY_AFTER) from exc
        return _settled(payment)
    except gateway.StripeRequestRejected as exc:
        # Refused without executing, not because of the customer (StripeMisconfigured included:
        # a rotated key, a request our account cannot make). No charge: close the attempt.
        payment_close_without_charge(payment_id=payment.id, code=PROVIDER_MISCONFIGURED,
                                     message=f"{exc.code}: {exc.message}")
        if isinstance(exc, gateway.StripeMisconfigured):
            _alert_misconfigured(payment, exc)
        raise PaymentProviderUnavailable(retry_after=gateway.stripe_breaker().reset_timeout) from exc
    except gateway.StripeUnavailable as exc:
        if exc.reached:
            # It may have charged: the same key resends the identical request; anything else
            # looks it up (B8). Never charged again by us.
            payment_mark_outcome_unknown(payment_id=payment.id, reason=exc.reason)
        else:
            payment_close_without_charge(payment_id=payment.id, code=NOT_SENT, message=exc.reason)
        raise PaymentProviderUnavailable(retry_after=exc.retry_after) from exc

    outcome = payment_apply_intent_now(payment_id=payment.id, reservation_id=payment.reservation_id, intent=intent,
                                       actor="stripe", on_committing=_render(respond))
    if outcome.refund_due:
        raise InvalidState("The reservation can no longer be paid; the payment is being refunded.",
                           extra={"current_status": outcome.reservation.status})
    if outcome.payment.status in IN_FLIGHT - {PaymentStatus.PENDING} or outcome.payment.status == \
            PaymentStatus.SUCCEEDED:
        return PayOutcome(reservation=outcome.reservation, payment=outcome.payment,
                          http_status=200 if outcome.payment.status == PaymentStatus.SUCCEEDED else 202)
    return _settled(outcome.payment)


def payment_attempt_keeps_hold(reservation: Reservation) -> bool:
    """Registered as an expiry guard: a hold whose payment attempt is in flight is not expired
    for a while (the customer started paying before it ran out: Stripe is answering, or asking
    for 3-D Secure); expiring it would charge and then refund them. The attempt's row is written
    under the same reservation lock (pay phase 1), so this cannot miss one that is starting."""
    return Payment.objects.filter(in_flight_for=reservation.id,
                                  updated_at__gt=timezone.now() - in_flight_grace()).exists()
