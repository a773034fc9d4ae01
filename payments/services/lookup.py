"""Settle, never initiate (B8): finding out what happened to a payment attempt whose Stripe call
ended without an answer, by looking it up. Nothing here creates or confirms a charge.

Three ways to look, in order:
1. We know the PaymentIntent: retrieve it.
2. We never saw the create's answer: send the same idempotency key *without* confirm. Stripe
   compares the parameters of a repeated key with the first request's:
   - 400 idempotency_error: the first create reached Stripe, whose idempotency layer then
     answers the identical request with the saved result of the first one (it is not run again);
   - a new, unconfirmed intent: the first never reached Stripe. The probe is cancelled at once
     (it can never charge) and the attempt is closed: no charge exists.
3. The saved result is itself an error that tells nothing (a 500), or the key expired: search
   the intents by `metadata.payment_id`. Search is eventually consistent, so "none found" only
   closes an attempt older than SEARCH_SETTLED_SECONDS.

While Stripe cannot answer, the attempt stays unresolved and blocks other keys (409
payment_in_progress with Retry-After): the next pay request or the reconciler looks again."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from common.db import retry_on_deadlock, versioned_update
from common.faults import fault_point
from payments import gateway
from payments.models import Payment, PaymentStatus
from payments.services.apply import ApplyOutcome, payment_apply_intent
from payments.services.locks import payment_lock_with_reservation
from payments.state import IN_FLIGHT
from reservations.services import reservation_record_event

logger = logging.getLogger("reserve.payments")

# failure_code of attempts closed (CANCELED) without a charge. A retry with the same customer
# key starts a new attempt: a CANCELED attempt provably took no money.
NOT_SENT = "not_sent"
NO_CHARGE_FOUND = "no_charge_found"
PROVIDER_MISCONFIGURED = "provider_misconfigured"
PAYMENT_METHOD_UNUSABLE = "payment_method_unusable"


def attempt_params(payment: Payment) -> dict[str, Any]:
    """Exactly the create request of this attempt: every resend must be identical (B3)."""
    return {
        "amount": payment.amount, "currency": payment.currency, "payment_method": payment.payment_method_id,
        # reservation_id is the public contract; payment_id lets a webhook or a lookup find an
        # attempt whose create answer we never saw.
        "metadata": {"reservation_id": str(payment.reservation_id), "payment_id": str(payment.id)},
        "idempotency_key": payment.stripe_idempotency_key, "return_url": payment.return_url,
    }


@dataclass(frozen=True)
class Declined:
    code: str
    message: str
    intent_id: str


@dataclass(frozen=True)
class NoCharge:
    reason: str


def payment_outcome_unknown(payment: Payment, *, now: dt.datetime | None = None) -> bool:
    """PENDING and not being sent right now: its request gave up without an answer, or died."""
    if payment.status != PaymentStatus.PENDING:
        return False
    if payment.outcome_unknown_at is not None:
        return True
    now = now or timezone.now()
    return payment.updated_at < now - dt.timedelta(seconds=settings.IDEMPOTENCY_LOCK_STALE_SECONDS)


def _look_up(payment: Payment) -> gateway.IntentResult | Declined | NoCharge | None:
    """What Stripe holds for this attempt; None when it cannot tell yet. Raises StripeUnavailable."""
    if payment.stripe_payment_intent_id:
        return gateway.payment_intent_retrieve(intent_id=payment.stripe_payment_intent_id)
    params = attempt_params(payment)
    try:
        probe = gateway.payment_intent_create(**params, confirm=False)
    except gateway.StripeIdempotencyKeyReused:
        try:
            return gateway.payment_intent_create(**params)  # answered from Stripe's saved result
        except gateway.CardDeclined as exc:
            return Declined(code=exc.code, message=exc.message, intent_id=exc.payment_intent_id)
        except gateway.StripeUnavailable as exc:
            if exc.reason.startswith("conflict"):
                return None  # the first request is still executing at Stripe
            return _search(payment)  # the saved result is a 5xx: it tells nothing
    if probe.status in ("requires_confirmation", "requires_payment_method"):
        # Our probe made this intent: the first create never reached Stripe. Cancel the probe so
        # that it can never be confirmed, and report that no charge exists.
        gateway.payment_intent_cancel(intent_id=probe.id, idempotency_key=f"cancel-intent:{payment.id}")
        return NoCharge("the first create never reached Stripe")
    return probe


def _search(payment: Payment) -> gateway.IntentResult | NoCharge | None:
    found = gateway.payment_intents_with_metadata(key="payment_id", value=str(payment.id))
    for intent in found:
        if intent.status == "succeeded":
            return intent
    if found:
        return found[0]
    age = (timezone.now() - payment.created_at).total_seconds()
    settled = age > settings.STRIPE_SEARCH_SETTLED_SECONDS
    return NoCharge("no PaymentIntent carries this attempt") if settled else None


@retry_on_deadlock
def payment_close_without_charge(*, payment_id: Any, code: str, message: str, actor: str = "system") -> Payment:
    """End an attempt that took no money (never sent, refused before executing, or looked up and
    not found): CANCELED, the in-flight guard falls, the customer may pay again at once."""
    with transaction.atomic(durable=True):
        payment, reservation = payment_lock_with_reservation(payment_id=payment_id)
        if payment.status == PaymentStatus.PENDING:
            versioned_update(payment, fields={"status": PaymentStatus.CANCELED, "in_flight_for": None,
                                              "outcome_unknown_at": None, "failure_code": code[:64],
                                              "failure_message": message[:500]})
            reservation_record_event(reservation=reservation, actor=actor, reason="payment attempt closed: no charge",
                                     data={"payment_id": str(payment.id), "failure_code": code, "detail": message},
                                     from_status=reservation.status, to_status=reservation.status)
    return payment


@retry_on_deadlock
def payment_mark_outcome_unknown(*, payment_id: Any, reason: str) -> None:
    """The Stripe call may have reached Stripe but its answer was lost: looked up from now on."""
    with transaction.atomic(durable=True):
        payment, reservation = payment_lock_with_reservation(payment_id=payment_id)
        if payment.status == PaymentStatus.PENDING and payment.outcome_unknown_at is None:
            versioned_update(payment, fields={"outcome_unknown_at": timezone.now()})
            reservation_record_event(reservation=reservation, actor="system", reason="payment outcome unknown",
                                     data={"payment_id": str(payment.id), "error": reason[:200]},
                                     from_status=reservation.status, to_status=reservation.status)


@retry_on_deadlock
def payment_apply_intent_now(*, payment_id: Any, intent: gateway.IntentResult, actor: str,
                             data: dict[str, Any] | None = None, on_committing: Any = None,
                             reservation_id: Any = None) -> ApplyOutcome:
    """Lock, apply what Stripe says, commit (pay phase 3, lookups, reconciler).
    `on_committing(outcome)` runs last inside the transaction (the pay API stores its answer)."""
    with transaction.atomic(durable=True):
        payment, reservation = payment_lock_with_reservation(payment_id=payment_id, reservation_id=reservation_id)
        outcome = payment_apply_intent(payment=payment, reservation=reservation, intent=intent, actor=actor,
                                       data=data)
        fault_point("pay.apply")
        if on_committing is not None:
            on_committing(outcome)
    return outcome


@retry_on_deadlock
def payment_fail(*, payment_id: Any, code: str, message: str, intent_id: str, actor: str = "stripe",
                 on_committing: Any = None) -> Payment:
    """Stripe declined the charge: the attempt is over and the customer may pay again."""
    with transaction.atomic(durable=True):
        payment, reservation = payment_lock_with_reservation(payment_id=payment_id)
        if payment.status in IN_FLIGHT:
            fields: dict[str, Any] = {"status": PaymentStatus.FAILED, "in_flight_for": None,
                                      "outcome_unknown_at": None,
                                      "failure_code": code[:64], "failure_message": message[:500]}
            if intent_id and not payment.stripe_payment_intent_id:
                fields["stripe_payment_intent_id"] = intent_id
            versioned_update(payment, fields=fields)
            reservation_record_event(reservation=reservation, actor=actor, reason="payment failed",
                                     data={"payment_id": str(payment.id), "failure_code": code},
                                     from_status=reservation.status, to_status=reservation.status)
        if on_committing is not None:
            on_committing(payment, reservation)
    return payment


def payment_attempt_resolve(*, payment: Payment, actor: str = "system", data: dict[str, Any] | None = None) -> bool:
    """Look up an attempt and apply what is found. True when its outcome is known now (it may
    still be PROCESSING or REQUIRES_ACTION: then Stripe has it and will tell by webhook).
    Raises gateway.StripeUnavailable while Stripe cannot answer."""
    found = _look_up(payment)
    if found is None:
        return False
    if isinstance(found, NoCharge):
        payment_close_without_charge(payment_id=payment.id, code=NO_CHARGE_FOUND, message=found.reason, actor=actor)
        return True
    if isinstance(found, Declined):
        payment_fail(payment_id=payment.id, code=found.code, message=found.message, intent_id=found.intent_id,
                     actor=actor)
        return True
    payment_apply_intent_now(payment_id=payment.id, intent=found, actor=actor, data=data)
    return True
