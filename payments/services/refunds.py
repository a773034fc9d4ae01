"""Refunds (B6, B9), after pretix's OrderRefund and Saleor's transaction events.

A refund is *decided* in a transaction (the payment row locked) together with the outbox event
`payment.refund` that sends it, so no crash can lose it. The event sends it to Stripe with a
key derived from the row (`refund:<id>`: a resend is answered from Stripe's idempotency layer,
never refunded twice) and records Stripe's answer. From then on the refund follows what Stripe
reports, through this one function whatever the source (API answer, refund webhooks,
reconciler): `PENDING → SUCCEEDED | FAILED | CANCELED` (payments/state.py). A FAILED or
CANCELED refund alerts staff and waits in the "refunds needing attention" queue, where staff
retry it under a new key or record a refund made outside Stripe; it never blocks anything."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from django.db import models, transaction
from django.utils import timezone

from common.db import retry_on_deadlock, version_check, versioned_update
from common.error_codes import ErrorCode
from common.exceptions import ApplicationError, InvalidState
from outbox.handlers import Verdict
from outbox.models import OutboxEvent
from outbox.services import outbox_enqueue, staff_alert_enqueue
from outbox.tasks import outbox_deliver_event
from payments import gateway
from payments.exceptions import RefundExceedsCaptured, RefundNotAllowed
from payments.models import Payment, PaymentStatus, Refund, RefundMethod, RefundResolution, RefundStatus
from payments.services.locks import payment_lock_with_reservation, refund_lock_with_payment
from payments.state import (
    CAPTURED,
    REFUNDABLE,
    STRIPE_REFUND_STATUS,
    can_transition,
    refund_can_transition,
)
from reservations.models import Reservation
from reservations.outbox import ReservationTopicHandler
from reservations.services import reservation_record_event

logger = logging.getLogger("reserve.payments")

REFUND_TOPIC = "payment.refund"


def _require_transaction(name: str) -> None:
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError(f"{name} must run inside a transaction")


def _sum(payment: Payment, statuses: frozenset[str] | set[str]) -> int:
    return payment.refunds.filter(status__in=statuses).aggregate(total=models.Sum("amount"))["total"] or 0


def payment_refundable_amount(*, payment: Payment) -> int:
    """What may still be refunded: the captured amount minus what is refunded (by us, or by
    Stripe as it reports on the charge) and what our pending refunds are about to give back."""
    refunded = max(payment.refunded_amount, _sum(payment, {RefundStatus.SUCCEEDED}))
    return max(payment.amount - refunded - _sum(payment, {RefundStatus.PENDING}), 0)


# --- deciding --------------------------------------------------------------------------------

def refund_record(*, payment: Payment, reservation: Reservation, amount: int | None, reason: str, actor: str,
                  idempotency_key: str, dispatch: bool = True, retry_of: Refund | None = None) -> Refund:
    """Decide a refund inside the caller's transaction (the payment row locked): the row and the
    outbox event that sends it commit together. The same `idempotency_key` returns the first
    refund. `amount=None` is all that is left. `dispatch=False` when the caller sends it itself
    right after commit (refund_deliver_now)."""
    _require_transaction("refund_record")
    existing = Refund.objects.filter(idempotency_key=idempotency_key).first()
    if existing is not None:
        if existing.payment_id != payment.id:
            raise ApplicationError("This idempotency key was used for another refund.",
                                   code=ErrorCode.IDEMPOTENCY_KEY_REUSED, status_code=409)
        return existing
    if payment.status not in REFUNDABLE or not payment.stripe_payment_intent_id:
        raise RefundNotAllowed(f"A payment in status {payment.status} cannot be refunded.",
                               extra={"payment_status": payment.status})
    remaining = payment_refundable_amount(payment=payment)
    amount = remaining if amount is None else amount
    if amount <= 0 or amount > remaining:
        raise RefundExceedsCaptured(extra={"refundable": remaining})
    refund = Refund.objects.create(payment=payment, idempotency_key=idempotency_key, amount=amount,
                                   reason=reason[:500], actor=actor, retry_of=retry_of)
    outbox_enqueue(topic=REFUND_TOPIC, dedup_key=f"{REFUND_TOPIC}:{refund.id}", dispatch=dispatch,
                   payload={"refund_id": str(refund.id), "reservation_id": str(reservation.id)})
    reservation_record_event(reservation=reservation, actor=actor, reason=f"refund decided: {reason}"[:500],
                             data={"payment_id": str(payment.id), "refund_id": str(refund.id), "amount": amount},
                             from_status=reservation.status, to_status=reservation.status)
    return refund


# --- applying what Stripe reports -------------------------------------------------------------

def _payment_status_for(payment: Payment, refunded: int) -> str:
    if payment.status == PaymentStatus.DISPUTED:
        return payment.status  # the dispute decides now, not our refunds
    if refunded >= payment.amount:
        return PaymentStatus.REFUNDED
    if payment.status in CAPTURED:
        return PaymentStatus.PARTIALLY_REFUNDED if refunded > 0 else PaymentStatus.SUCCEEDED
    return payment.status  # not captured (yet): a partial refund report changes nothing


def _payment_refunded_set(*, payment: Payment, reservation: Reservation, refunded: int, actor: str, reason: str,
                          data: dict[str, Any], correction: bool = False) -> None:
    """Write the refunded total and the status it implies. `correction`: a refund that failed
    after it succeeded gives money back to us, the only move back from REFUNDED."""
    target = _payment_status_for(payment, refunded)
    fields: dict[str, Any] = {}
    if refunded != payment.refunded_amount:
        fields["refunded_amount"] = refunded
    if target != payment.status and (correction or can_transition(payment.status, target)):
        fields["status"] = target
        if target == PaymentStatus.REFUNDED:
            fields["in_flight_for"] = None  # a refunded attempt can no longer charge
    if not fields:
        return
    previous = payment.status
    versioned_update(payment, fields=fields)
    reservation_record_event(
        reservation=reservation, actor=actor, reason=reason,
        data={"payment_id": str(payment.id), "refunded_amount": payment.refunded_amount,
              "payment_status": {"from": previous, "to": payment.status}, **data},
        from_status=reservation.status, to_status=reservation.status,
    )


def refund_apply_status(*, refund: Refund, payment: Payment, reservation: Reservation, status: str, actor: str,
                        stripe_refund_id: str = "", failure: str = "", data: dict[str, Any] | None = None) -> bool:
    """Move `refund` to `status` (ours, or Stripe's refund status), with reservation, payment
    and refund locked by the caller. Late, repeated and out-of-order reports change nothing.
    Returns whether the status changed."""
    _require_transaction("refund_apply_status")
    target = STRIPE_REFUND_STATUS.get(status, status)
    data = {"refund_id": str(refund.id), **(data or {})}
    links = {"stripe_refund_id": stripe_refund_id} if stripe_refund_id and not refund.stripe_refund_id else {}
    if target == refund.status or not refund_can_transition(refund.status, target):
        if links:
            versioned_update(refund, fields=links)
        return False
    previous = refund.status
    fields: dict[str, Any] = {"status": target, **links, "next_check_at": None, "last_check_error": ""}
    if failure:
        fields["failure_message"] = failure[:500]
    versioned_update(refund, fields=fields)
    succeeded = _sum(payment, {RefundStatus.SUCCEEDED})
    if target == RefundStatus.SUCCEEDED:
        refunded = max(payment.refunded_amount, succeeded)
        _payment_refunded_set(payment=payment, reservation=reservation, refunded=refunded, actor=actor,
                              reason=f"refund succeeded ({refund.amount})", data=data)
    elif previous == RefundStatus.SUCCEEDED:
        # Failed at the bank after Stripe reported success: the money is ours again.
        refunded = max(succeeded, payment.refunded_amount - refund.amount, 0)
        _payment_refunded_set(payment=payment, reservation=reservation, refunded=refunded, actor=actor,
                              reason="refund failed after it succeeded", data=data, correction=True)
    if target in (RefundStatus.FAILED, RefundStatus.CANCELED):
        reservation_record_event(reservation=reservation, actor=actor,
                                 reason=f"refund {target.lower()}: {failure or 'no reason given'}"[:500],
                                 data={**data, "amount": refund.amount},
                                 from_status=reservation.status, to_status=reservation.status)
        staff_alert_enqueue(
            reservation=reservation, dedup_key=f"refund-{target.lower()}:{refund.id}",
            subject=f"Refund {target.lower()}: needs attention",
            body=(f"A refund of {refund.amount} {payment.currency.upper()} for reservation {reservation.code} "
                  f"is {target}: {failure or 'no reason given'}. Retry it or record a refund made outside "
                  "Stripe in the back office (Payments > Refunds needing attention)."))
    return True


def payment_stripe_refunded_report(*, payment: Payment, reservation: Reservation, amount_refunded: int,
                                   actor: str, data: dict[str, Any]) -> None:
    """Stripe's cumulative refunded amount on the charge (charge.refunded): it counts refunds
    made anywhere, the Dashboard included. The larger of it and ours is the truth, never their
    sum; a full refund reported before the success means the money is back, nothing to book."""
    refunded = max(payment.refunded_amount, _sum(payment, {RefundStatus.SUCCEEDED}), amount_refunded)
    _payment_refunded_set(payment=payment, reservation=reservation, refunded=refunded, actor=actor,
                          reason="payment refunded", data=data)


def _find_refund(*, stripe_refund_id: str, metadata: dict[str, Any]) -> Refund | None:
    if stripe_refund_id:
        found = Refund.objects.filter(stripe_refund_id=stripe_refund_id).first()
        if found is not None:
            return found
    try:  # a refund whose create answer we never saw is found by our own id
        refund_id = uuid.UUID(str(metadata.get("refund_id") or ""))
    except ValueError:
        return None
    return Refund.objects.filter(pk=refund_id).first()


def refund_apply_stripe_object(*, obj: dict[str, Any], actor: str, data: dict[str, Any]) -> bool:
    """A Refund object from a webhook (refund.created/updated/failed, charge.refund.updated),
    inside the webhook's transaction. False when the refund is not one of ours (made in the
    Dashboard: charge.refunded accounts for its money)."""
    result = gateway.refund_result_from(obj)
    found = _find_refund(stripe_refund_id=result.id, metadata=result.metadata)
    if found is None:
        return False
    refund, payment, reservation = refund_lock_with_payment(refund_id=found.pk)
    refund_apply_status(refund=refund, payment=payment, reservation=reservation, status=result.status,
                        stripe_refund_id=result.id, failure=result.failure_reason, actor=actor, data=data)
    return True


# --- sending: the outbox topic ---------------------------------------------------------------

@dataclass(frozen=True)
class RefundSkipped:
    note: str


@dataclass(frozen=True)
class RefundRefused:
    """Stripe refused the refund: nothing was refunded, and the same request will not succeed."""

    message: str


@dataclass(frozen=True)
class RefundNotNow:
    """Stripe unavailable (or refusing our key): send again later with the same key.
    `not_sent_for`: the open breaker refused the call (it never left), and lets calls through
    again in this many seconds: the event is deferred without spending an attempt.
    `key_spent`: Stripe answered a 5xx and holds no refund of ours — it saved that 5xx for the
    key and would replay it to every retry: the next send goes under a new key."""

    error: str
    not_sent_for: float | None = None
    key_spent: bool = False


def _ours_at_stripe(*, refund: Refund, intent_id: str) -> gateway.RefundResult | None:
    """The refund Stripe made for this row (its metadata carries our id), if any."""
    for found in gateway.refunds_of_payment_intent(payment_intent_id=intent_id):
        if found.metadata.get("refund_id") == str(refund.id):
            return found
    return None


def refund_send(*, refund: Refund) -> gateway.RefundResult | RefundSkipped | RefundRefused | RefundNotNow:
    """The Stripe call of a PENDING refund (no transaction): a first send creates it under the
    row's key; once Stripe has it, we only ask where it stands."""
    if refund.status != RefundStatus.PENDING or refund.method != RefundMethod.STRIPE:
        return RefundSkipped(f"refund is {refund.status}")
    intent_id, reservation_id = Payment.objects.values_list(
        "stripe_payment_intent_id", "reservation_id").get(pk=refund.payment_id)
    try:
        if refund.stripe_refund_id:
            return gateway.refund_retrieve(refund_id=refund.stripe_refund_id)
        try:
            return gateway.refund_create(
                payment_intent_id=intent_id, amount=refund.amount, idempotency_key=refund.stripe_idempotency_key,
                metadata={"refund_id": str(refund.id), "reservation_id": str(reservation_id)})
        except gateway.StripeUnavailable as exc:
            if not exc.http_status or exc.http_status < 500:
                raise
            # Stripe answered 5xx and saved it for this key. Whether it refunded or not, the
            # list (consistent) tells: found, it is ours; not found, nothing was refunded and
            # only a new key can be answered.
            found = _ours_at_stripe(refund=refund, intent_id=intent_id)
            if found is not None:
                return found
            return RefundNotNow(f"refund: Stripe answered {exc.http_status} and refunded nothing; next send "
                                "under a new key", key_spent=True)
    except gateway.StripeUnavailable as exc:
        return RefundNotNow(f"refund: Stripe unavailable ({exc})"[:500],
                            not_sent_for=None if exc.reached else exc.retry_after)
    except gateway.StripeMisconfigured as exc:
        return RefundNotNow(f"refund: Stripe refuses our configuration ({exc})"[:500])
    except (gateway.StripeRequestRejected, gateway.CardDeclined) as exc:
        return RefundRefused(str(exc)[:500])


def refund_record_send_result(*, refund: Refund, payment: Payment, reservation: Reservation,
                              result: gateway.RefundResult | RefundSkipped | RefundRefused | RefundNotNow) -> Verdict:
    """Record what refund_send learnt, inside a transaction with all three rows locked."""
    if isinstance(result, RefundSkipped):
        return Verdict.delivered(result.note)
    if isinstance(result, RefundNotNow):
        if result.not_sent_for is not None:
            return Verdict.defer(seconds=result.not_sent_for, reason=result.error)
        if result.key_spent:
            versioned_update(refund, fields={"stripe_key_generation": refund.stripe_key_generation + 1})
        return Verdict.retry(result.error)
    if isinstance(result, RefundRefused):
        refund_apply_status(refund=refund, payment=payment, reservation=reservation, status=RefundStatus.FAILED,
                            failure=f"Stripe refused the refund: {result.message}", actor="stripe")
        return Verdict.delivered("refused by Stripe")
    refund_apply_status(refund=refund, payment=payment, reservation=reservation, status=result.status,
                        stripe_refund_id=result.id, failure=result.failure_reason, actor="stripe")
    return Verdict.delivered(f"stripe refund {result.status}")


class RefundSendHandler(ReservationTopicHandler):
    """Outbox topic `payment.refund`: send one decided refund to Stripe and record the answer."""

    def lock(self, event: OutboxEvent) -> tuple[Refund, Payment, Reservation]:
        return refund_lock_with_payment(refund_id=event.payload["refund_id"])

    def perform(self, event: OutboxEvent) -> Any:
        return refund_send(refund=Refund.objects.get(pk=event.payload["refund_id"]))

    def apply(self, event: OutboxEvent, result: Any, held: tuple[Refund, Payment, Reservation]) -> Verdict:
        refund, payment, reservation = held
        return refund_record_send_result(refund=refund, payment=payment, reservation=reservation, result=result)

    def on_dead(self, event: OutboxEvent, error: str) -> None:
        refund, payment, reservation = refund_lock_with_payment(refund_id=event.payload["refund_id"])
        # Still PENDING (Stripe was away for every attempt): the reconciler keeps re-sending it
        # under the same key; staff are told it is late.
        staff_alert_enqueue(reservation=reservation, dedup_key=f"refund-late:{refund.id}",
                            subject="Refund not sent yet",
                            body=f"The refund of {refund.amount} {payment.currency.upper()} for reservation "
                                 f"{reservation.code} could not be sent to Stripe: {error}. The reconciler keeps "
                                 "trying with the same key.")


def refund_deliver_now(*, refund: Refund) -> Refund:
    """Send a just-decided refund from the request that decided it (its event was written with
    dispatch=False). If a worker got to the event first, that worker's answer counts."""
    event_id = OutboxEvent.objects.filter(dedup_key=f"{REFUND_TOPIC}:{refund.id}").values_list("id", flat=True).first()
    if event_id is not None:
        outbox_deliver_event(str(event_id))
    refund.refresh_from_db()
    return refund


# --- staff and service entry points ----------------------------------------------------------

@retry_on_deadlock
def _refund_decide(*, payment_id: Any, amount: int | None, reason: str, actor: str, idempotency_key: str) -> Refund:
    with transaction.atomic(durable=True):
        payment, reservation = payment_lock_with_reservation(payment_id=payment_id)
        return refund_record(payment=payment, reservation=reservation, amount=amount, reason=reason, actor=actor,
                             idempotency_key=idempotency_key, dispatch=False)


def payment_refund(*, payment: Payment, amount: int | None, reason: str, actor: str, idempotency_key: str) -> Refund:
    """Refund `amount` (None: all that is left) of a captured payment, at most once per
    `idempotency_key`, and send it now. The returned refund's status says where it stands:
    still PENDING when Stripe is unavailable (its outbox event keeps sending it). Raises
    RefundNotAllowed / RefundExceedsCaptured (409) when there is nothing to refund."""
    refund = _refund_decide(payment_id=payment.id, amount=amount, reason=reason, actor=actor,
                            idempotency_key=idempotency_key)
    refund = refund_deliver_now(refund=refund)
    payment.refresh_from_db()
    return refund


def _attention_locked(*, refund_id: Any, expected_version: int | None) -> tuple[Refund, Payment, Reservation]:
    refund, payment, reservation = refund_lock_with_payment(refund_id=refund_id)
    version_check(refund, expected_version)
    if not refund.needs_attention:
        raise InvalidState(f"This refund is {refund.status}{' and resolved' if refund.resolution else ''}: "
                           "nothing to do.", extra={"refund_status": refund.status})
    return refund, payment, reservation


@retry_on_deadlock
def _refund_retry_decide(*, refund_id: Any, actor: str, expected_version: int | None) -> Refund:
    with transaction.atomic(durable=True):
        refund, payment, reservation = _attention_locked(refund_id=refund_id, expected_version=expected_version)
        versioned_update(refund, fields={"resolution": RefundResolution.RETRIED, "resolved_by": actor[:160],
                                         "resolved_at": timezone.now()})
        return refund_record(payment=payment, reservation=reservation, amount=refund.amount,
                             reason=f"retry of refund {refund.id}: {refund.reason}"[:500], actor=actor,
                             idempotency_key=f"retry:{refund.id}", dispatch=False, retry_of=refund)


def refund_retry(*, refund: Refund, actor: str, expected_version: int | None = None) -> Refund:
    """Staff (B9): send a FAILED or CANCELED refund again as a new refund, under a new Stripe key
    (the old key's answer is Stripe's refusal, saved for 24 h). Audited on the timeline."""
    new = _refund_retry_decide(refund_id=refund.pk, actor=actor, expected_version=expected_version)
    logger.info("refund retried", extra={"refund_id": str(refund.pk), "new_refund_id": str(new.pk), "actor": actor})
    return refund_deliver_now(refund=new)


@retry_on_deadlock
def refund_record_external(*, refund: Refund, actor: str, reason: str, reference: str = "",
                           expected_version: int | None = None) -> Refund:
    """Staff (B9): the money went back outside Stripe (bank transfer, cash, a refund made in the
    Dashboard). Requires a reason; records a SUCCEEDED external refund of the same amount."""
    if not reason.strip():
        raise ApplicationError("A reason is required to record a refund made outside Stripe.",
                               code=ErrorCode.REASON_REQUIRED)
    with transaction.atomic(durable=True):
        failed, payment, reservation = _attention_locked(refund_id=refund.pk, expected_version=expected_version)
        versioned_update(failed, fields={"resolution": RefundResolution.RECORDED_EXTERNAL,
                                         "resolved_by": actor[:160], "resolved_at": timezone.now()})
        external = Refund.objects.create(
            payment=payment, idempotency_key=f"external:{failed.id}", amount=failed.amount, actor=actor,
            reason=reason.strip()[:500], method=RefundMethod.EXTERNAL, status=RefundStatus.SUCCEEDED,
            external_reference=reference.strip()[:255], retry_of=failed)
        refunded = max(payment.refunded_amount, _sum(payment, {RefundStatus.SUCCEEDED}))
        _payment_refunded_set(payment=payment, reservation=reservation, refunded=refunded, actor=actor,
                              reason=f"refund made outside Stripe recorded: {reason.strip()}"[:500],
                              data={"refund_id": str(external.id), "replaces": str(failed.id),
                                    "reference": external.external_reference})
    return external


def refunds_needing_attention() -> models.QuerySet[Refund]:
    return Refund.objects.filter(status__in=[RefundStatus.FAILED, RefundStatus.CANCELED], resolution="")


__all__ = [
    "REFUND_TOPIC",
    "RefundNotNow",
    "RefundRefused",
    "RefundSendHandler",
    "RefundSkipped",
    "payment_refund",
    "payment_refundable_amount",
    "payment_stripe_refunded_report",
    "refund_apply_status",
    "refund_apply_stripe_object",
    "refund_deliver_now",
    "refund_record",
    "refund_record_external",
    "refund_retry",
    "refunds_needing_attention",
]
