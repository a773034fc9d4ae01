"""The safety net (scheduled): settle payments the request/webhook path left unfinished."""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.utils import timezone

from common.exceptions import ApplicationError
from payments import gateway
from payments.exceptions import PaymentProviderUnavailable, RefundFailed
from payments.models import Payment, PaymentStatus, Refund, RefundStatus
from payments.services.pay import _pay_fail, payment_apply_intent_now, payment_intent_params
from payments.services.refunds import (
    CANCEL_REFUND_PREFIX,
    payment_refund_late,
    payment_refund_send,
    payment_refundable_amount,
    reservation_cancel_paid,
)
from reservations.models import Reservation, ReservationStatus
from reservations.state import can_transition as reservation_can_transition

logger = logging.getLogger("reserve.payments")

BATCH = 100


def _settle(payment: Payment) -> bool:
    """Ask Stripe what happened to this attempt and apply it. True if something changed."""
    if payment.stripe_payment_intent_id:
        intent = gateway.payment_intent_retrieve(intent_id=payment.stripe_payment_intent_id)
    elif not _still_payable(payment):
        try:
            intent = _intent_of_lost_create(payment)
        except (gateway.CardDeclined, gateway.StripeRequestRejected) as exc:
            _pay_fail(payment_id=payment.id, code=exc.code, message=exc.message,
                      intent_id=getattr(exc, "payment_intent_id", ""))
            return True
    else:
        # The pay request died before it saw Stripe's answer. Sending the same create with the
        # same Stripe idempotency key replays the first outcome; it never charges twice.
        try:
            intent = gateway.payment_intent_create(**payment_intent_params(payment))
        except (gateway.CardDeclined, gateway.StripeRequestRejected) as exc:
            _pay_fail(payment_id=payment.id, code=exc.code, message=exc.message,
                      intent_id=getattr(exc, "payment_intent_id", ""))
            return True
    outcome = payment_apply_intent_now(payment_id=payment.id, intent=intent, actor="system",
                                       data={"reconciled": True})
    if outcome.refund_due:
        payment_refund_late(payment=outcome.payment)
    return outcome.changed


def _still_payable(payment: Payment) -> bool:
    reservation = Reservation.objects.get(pk=payment.reservation_id)
    return reservation.status == ReservationStatus.PENDING_PAYMENT and (
        reservation.expires_at is None or reservation.expires_at > timezone.now())


def _intent_of_lost_create(payment: Payment) -> gateway.IntentResult:
    """The reservation no longer takes money, so the confirming create must not be sent as if
    new: if the first one never reached Stripe, it would charge the card now. Real Stripe
    compares the parameters of a repeated idempotent request with the first one, so the same
    key sent *without* confirm tells the two cases apart:
    - 400 idempotency_error: the first create reached Stripe. The identical request is then
      answered from Stripe's idempotency cache (the original intent or decline), not run again;
    - a new, unconfirmed intent: the first never reached Stripe. It is cancelled at once (it
      can never charge) and the attempt ends CANCELED.
    Listing intents to find metadata.payment_id cannot be done with a bound on real Stripe (no
    metadata filter; search is eventually consistent) nor on localstripe (no `created` filter).
    Keys live 24 h at Stripe; the reconciler runs every few minutes, well inside that."""
    params = payment_intent_params(payment)
    try:
        probe = gateway.payment_intent_create(**params, confirm=False)
    except gateway.StripeIdempotencyKeyReused:
        return gateway.payment_intent_create(**params)
    if probe.status not in ("requires_confirmation", "requires_payment_method"):
        return probe  # cannot be a fresh unconfirmed intent: apply what it is
    return gateway.payment_intent_cancel(intent_id=probe.id, idempotency_key=f"cancel-intent:{payment.id}")


def _refunds_resume(*, stale_before: dt.datetime) -> int:
    """Re-send every refund still PENDING after the grace period (its request got a 503 or died),
    with the Stripe key derived from the row: whatever wrote it (a cancel, a supplier-rejection
    compensation, a late or second payment), the money goes back. A refund started by a
    cancellation then completes that cancellation. Returns how many refunds were settled."""
    settled = 0
    pending = Refund.objects.filter(status=RefundStatus.PENDING, updated_at__lt=stale_before).order_by("updated_at")
    for pending_refund in list(pending[:BATCH]):
        try:
            refund = payment_refund_send(refund=pending_refund)
        except RefundFailed:
            logger.warning("pending refund refused by stripe", extra={"refund_id": str(pending_refund.id)},
                           exc_info=True)
            settled += 1
            continue
        settled += 1
        if refund.idempotency_key.startswith(CANCEL_REFUND_PREFIX):
            _cancel_complete(refund)
    return settled


def _cancel_complete(refund: Refund) -> None:
    reservation = Reservation.objects.get(payments__refunds=refund)
    if not reservation_can_transition(reservation.status, ReservationStatus.CANCELLED):
        return  # the cancel request was retried and finished, or something else ended it
    try:
        reservation_cancel_paid(reservation_id=reservation.id, actor=refund.actor, reason=refund.reason,
                                expected_version=None)
    except PaymentProviderUnavailable:
        raise
    except ApplicationError:
        logger.warning("cancellation not completed", extra={"reservation_id": str(reservation.id)}, exc_info=True)


def payments_reconcile() -> int:
    """Re-fetch PaymentIntents stuck in PROCESSING / REQUIRES_ACTION, settle attempts left
    PENDING by a dead request, re-send refunds left PENDING, and refund money captured for
    reservations that ended.
    Returns how many payments changed. Stops early while Stripe is unavailable."""
    stale = timezone.now() - dt.timedelta(seconds=settings.IDEMPOTENCY_LOCK_STALE_SECONDS)
    candidates = list(
        Payment.objects.filter(status__in=[PaymentStatus.PROCESSING, PaymentStatus.REQUIRES_ACTION],
                               stripe_payment_intent_id__isnull=False).order_by("updated_at")[:BATCH]
    ) + list(Payment.objects.filter(status=PaymentStatus.PENDING, updated_at__lt=stale).order_by("updated_at")[:BATCH])
    changed = 0
    try:
        for payment in candidates:
            try:
                changed += int(_settle(payment))
            except ApplicationError:
                logger.warning("payment not reconciled", extra={"payment_id": str(payment.id)}, exc_info=True)
        changed += _refunds_resume(stale_before=stale)
        late = Payment.objects.filter(
            status__in=[PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED],
            reservation__status__in=[ReservationStatus.EXPIRED, ReservationStatus.CANCELLED],
        ).order_by("updated_at")[:BATCH]
        for payment in late:
            if payment_refundable_amount(payment=payment) > 0 and payment_refund_late(payment=payment):
                changed += 1
    except (gateway.StripeUnavailable, PaymentProviderUnavailable):
        logger.warning("stripe unavailable; reconciliation resumes on the next run")
    logger.info("payments reconciled", extra={"changed": changed})
    return changed
