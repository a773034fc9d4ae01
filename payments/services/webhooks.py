"""Applying Stripe webhook events (B4) through the `StripeEvent` inbox.

One transaction stores the event and applies it, under row locks and version checks, inside
`retry_on_deadlock`: a database failure rolls both back and the 5xx makes Stripe redeliver.
A duplicate of an applied event is acknowledged without touching anything. An event whose
application raised a bug-type error is recorded FAILED (for staff to re-process) and answered
5xx so Stripe keeps retrying as well."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from common.compiled import CompiledQuery, insert_row
from common.db import retry_on_deadlock, version_check, versioned_update
from common.exceptions import InvalidState
from common.faults import fault_point
from common.request_context import log_context
from outbox.services import staff_alert_enqueue
from payments.gateway import IntentResult, intent_result_from
from payments.models import Payment, PaymentStatus, StripeEvent, StripeEventStatus
from payments.services.apply import payment_apply_intent
from payments.services.locks import payment_lock_with_reservation
from payments.services.refunds import payment_stripe_refunded_report, refund_apply_stripe_object
from payments.state import can_transition
from reservations.models import ReservationStatus, SupplierStatus
from reservations.services import reservation_record_event

logger = logging.getLogger("reserve.webhooks")

# The event type decides the outcome; the embedded object may be a stale snapshot.
INTENT_EVENTS: dict[str, str] = {
    "payment_intent.succeeded": "succeeded",
    "payment_intent.payment_failed": "requires_payment_method",
    "payment_intent.processing": "processing",
    "payment_intent.requires_action": "requires_action",
    "payment_intent.canceled": "canceled",
}
# Refund objects: their status drives our Refund rows (B9).
REFUND_EVENTS = frozenset({"refund.created", "refund.updated", "refund.failed", "charge.refund.updated"})
HANDLED_TYPES = frozenset({*INTENT_EVENTS, *REFUND_EVENTS, "charge.refunded", "charge.dispute.created"})


@dataclass(frozen=True)
class IngestResult:
    status: str  # "applied", "ignored", "duplicate"
    event: StripeEvent
    refund_due_payment_id: Any = None


# The payment an event is about, by one of its columns (Payment.objects.filter(...).first()):
# every event reads one, compiled once (common.compiled).
_PAYMENT_BY = {column: CompiledQuery(lambda value, column=column: Payment.objects.filter(**{column: value}),
                                     value=Payment._meta.get_field(column))
               for column in ("stripe_payment_intent_id", "stripe_charge_id", "id")}


def _first_payment(column: str, value: Any) -> Payment | None:
    found = _PAYMENT_BY[column].execute(value=value, window=slice(0, 1))
    return found[0] if found else None


def _find_payment(*, intent_id: str | None, charge_id: str | None = None,
                  metadata: dict[str, Any] | None = None) -> Payment | None:
    if intent_id:
        payment = _first_payment("stripe_payment_intent_id", intent_id)
        if payment is not None:
            return payment
    if charge_id:
        payment = _first_payment("stripe_charge_id", charge_id)
        if payment is not None:
            return payment
    # An attempt whose create answer we never saw (timeout) is found by our own id.
    # Other integrations on the same Stripe account may use the same metadata name for
    # their own ids ("order-42"): anything that is not a UUID is not ours. Checked before the
    # query, because a database error here could not be caught without a savepoint (B5).
    try:
        payment_id = uuid.UUID(str((metadata or {}).get("payment_id") or ""))
    except ValueError:
        return None
    return _first_payment("id", payment_id)


def _id_of(value: Any) -> str | None:
    if isinstance(value, dict):
        return value.get("id")
    return value or None


def _apply_intent_event(event_type: str, obj: dict[str, Any], data: dict[str, Any]) -> tuple[bool, Any]:
    payment = _find_payment(intent_id=obj.get("id"), metadata=obj.get("metadata"))
    if payment is None:
        return False, None
    payment, reservation = payment_lock_with_reservation(payment_id=payment.pk, reservation_id=payment.reservation_id)
    snapshot = intent_result_from(obj)
    intent = IntentResult(**{**snapshot.__dict__, "status": INTENT_EVENTS[event_type]})
    outcome = payment_apply_intent(payment=payment, reservation=reservation, intent=intent, actor="stripe",
                                   data=data)
    return True, payment.pk if outcome.refund_due else None


def _apply_charge_refunded(obj: dict[str, Any], data: dict[str, Any]) -> bool:
    payment = _find_payment(intent_id=_id_of(obj.get("payment_intent")), charge_id=obj.get("id"))
    if payment is None:
        return False
    payment, reservation = payment_lock_with_reservation(payment_id=payment.pk, reservation_id=payment.reservation_id)
    before = payment.refunded_amount
    payment_stripe_refunded_report(payment=payment, reservation=reservation, actor="stripe", data=data,
                                   amount_refunded=int(obj.get("amount_refunded") or 0))
    # Our own cancellations refund a CANCELLED reservation and cancel the supplier booking
    # themselves; a refund of a booking the supplier still holds was made elsewhere (e.g. the
    # Stripe Dashboard) and needs a human to decide about the booking.
    still_booked = reservation.supplier_status == SupplierStatus.CONFIRMED
    if payment.refunded_amount != before and still_booked and reservation.status != ReservationStatus.CANCELLED:
        _alert_staff(reservation, data, subject="Refund on a supplier-confirmed booking",
                     body=f"Stripe refunded {payment.refunded_amount} of {payment.amount} "
                          f"{payment.currency.upper()} for reservation {reservation.code}, which the supplier has "
                          f"confirmed (reference {reservation.supplier_reference or '-'}). Decide whether to cancel "
                          "the supplier booking.")
    return True


def _alert_staff(reservation: Any, data: dict[str, Any], *, subject: str, body: str) -> None:
    staff_alert_enqueue(reservation=reservation, subject=subject, body=body,
                        dedup_key=f"stripe:{data['stripe_event_id']}")


def _apply_dispute_created(obj: dict[str, Any], data: dict[str, Any]) -> bool:
    payment = _find_payment(intent_id=_id_of(obj.get("payment_intent")), charge_id=_id_of(obj.get("charge")))
    if payment is None:
        return False
    payment, reservation = payment_lock_with_reservation(payment_id=payment.pk, reservation_id=payment.reservation_id)
    previous = payment.status
    if can_transition(payment.status, PaymentStatus.DISPUTED):
        versioned_update(payment, fields={"status": PaymentStatus.DISPUTED})
    # The dispute is on the timeline even when the status cannot move (staff must see it).
    reservation_record_event(
        reservation=reservation, actor="stripe", reason="dispute opened",
        data={"payment_id": str(payment.id), "dispute_id": obj.get("id"), "amount": obj.get("amount"),
              "dispute_reason": obj.get("reason"), "payment_status": {"from": previous, "to": payment.status},
              **data},
        from_status=reservation.status, to_status=reservation.status,
    )
    # A dispute freezes the money whatever the supplier did; bookings are never cancelled
    # automatically for a dispute (the customer may still travel), so staff decide.
    _alert_staff(reservation, data, subject="Payment disputed",
                 body=f"A dispute ({obj.get('reason') or 'no reason given'}) was opened on reservation "
                      f"{reservation.code} (status {reservation.status}, supplier {reservation.supplier_status}).")
    return True


def _apply(event: StripeEvent, *, reprocessed_by: str | None) -> tuple[str, Any]:
    obj = (event.payload.get("data") or {}).get("object") or {}
    data: dict[str, Any] = {"stripe_event_id": event.stripe_event_id}
    if reprocessed_by:
        data["reprocessed_by"] = reprocessed_by
    refund_due = None
    if event.type in INTENT_EVENTS:
        found, refund_due = _apply_intent_event(event.type, obj, data)
    elif event.type == "charge.refunded":
        found = _apply_charge_refunded(obj, data)
    elif event.type in REFUND_EVENTS:
        found = refund_apply_stripe_object(obj=obj, actor="stripe", data=data)
    elif event.type == "charge.dispute.created":
        found = _apply_dispute_created(obj, data)
    else:
        return StripeEventStatus.IGNORED, None  # stored and acknowledged
    return (StripeEventStatus.PROCESSED if found else StripeEventStatus.IGNORED), refund_due


@retry_on_deadlock
def _stripe_event_store_and_apply(*, payload: dict[str, Any], reprocessed_by: str | None = None) -> IngestResult:
    with transaction.atomic(durable=True):
        try:
            with transaction.atomic():
                # Written as processed: this transaction commits only if applying the event
                # succeeds (a failure rolls all of it back, and _stripe_event_record_failure
                # stores it FAILED), so only an ignored event needs a second write to its row.
                event = insert_row(StripeEvent(
                    stripe_event_id=payload["id"], type=str(payload.get("type", ""))[:100], payload=payload,
                    status=StripeEventStatus.PROCESSED, attempts=1, processed_at=timezone.now(),
                ))
            new = True
        except IntegrityError:
            event = StripeEvent.objects.select_for_update().get(stripe_event_id=payload["id"])
            if event.status != StripeEventStatus.FAILED:
                return IngestResult(status="duplicate", event=event)
            new = False
        status, refund_due = _apply(event, reprocessed_by=reprocessed_by)
        fault_point("webhook.apply")
        if not new:  # a FAILED event applied again
            versioned_update(event, fields={"status": status, "attempts": event.attempts + 1, "error": "",
                                            "processed_at": timezone.now()})
        elif status != event.status:
            versioned_update(event, fields={"status": status})
    return IngestResult(status="applied" if status == StripeEventStatus.PROCESSED else "ignored", event=event,
                        refund_due_payment_id=refund_due)


@retry_on_deadlock
def _stripe_event_record_failure(*, payload: dict[str, Any], error: str) -> None:
    with transaction.atomic(durable=True):
        try:
            with transaction.atomic():
                StripeEvent.objects.create(stripe_event_id=payload["id"], type=str(payload.get("type", ""))[:100],
                                           payload=payload, status=StripeEventStatus.FAILED, attempts=1,
                                           error=error)
                return
        except IntegrityError:
            event = StripeEvent.objects.select_for_update().get(stripe_event_id=payload["id"])
        if event.status != StripeEventStatus.FAILED:
            # Another delivery of the same event applied it while this one failed: its outcome
            # stands (marked FAILED, the next delivery or a staff reprocess would apply it again).
            logger.warning("stripe event failed here but was applied by another delivery",
                           extra={"status": event.status})
            return
        versioned_update(event, fields={"status": StripeEventStatus.FAILED, "attempts": event.attempts + 1,
                                        "error": error})


def _ingest(*, payload: dict[str, Any], reprocessed_by: str | None) -> IngestResult:
    with log_context(event_id=payload.get("id")):
        try:
            result = _stripe_event_store_and_apply(payload=payload, reprocessed_by=reprocessed_by)
        except DatabaseError:
            raise  # nothing was written; the 5xx makes Stripe redeliver
        except Exception as exc:
            logger.exception("stripe event could not be applied")
            _stripe_event_record_failure(payload=payload, error=f"{type(exc).__name__}: {exc}"[:2000])
            raise
        logger.info("stripe event %s", result.status, extra={"type": payload.get("type")})
        return result


def stripe_event_ingest(*, payload: dict[str, Any]) -> IngestResult:
    """Store and apply one verified webhook event (the view verified the signature)."""
    return _ingest(payload=payload, reprocessed_by=None)


def stripe_event_reprocess(*, stripe_event: StripeEvent, actor: str, expected_version: int | None = None
                           ) -> IngestResult:
    """Staff action (D4): apply a FAILED inbox event again. Raises InvalidState otherwise, and
    VersionConflict when the event changed since the staff member's page was rendered."""
    stripe_event.refresh_from_db()
    version_check(stripe_event, expected_version)
    if stripe_event.status != StripeEventStatus.FAILED:
        raise InvalidState(f"Only FAILED events can be re-processed (this one is {stripe_event.status}).")
    logger.info("stripe event re-processed", extra={"event_id": stripe_event.stripe_event_id, "actor": actor})
    return _ingest(payload=stripe_event.payload, reprocessed_by=actor)
