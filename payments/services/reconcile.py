"""The safety net (scheduled): settle what the request and webhook paths left unfinished, by
looking things up at Stripe — never by charging (B8).

- attempts whose outcome is unknown (their request gave up or died), and attempts Stripe was
  still processing (a webhook may have been lost): looked up and applied;
- refunds still PENDING after a grace period: sent again under their own key, or, once Stripe
  has them, asked where they stand;
- money captured for a reservation that ended (a late success whose refund was never decided):
  a refund is decided.

Each row is isolated: an error on one (a 404 for an intent that is not there, a 401 after a key
rotation) is recorded on that row, which is looked at again after a growing delay
(`next_check_at`), and the run moves on. Rows are taken oldest-check first and in bounded
batches, so none starves. Only Stripe being unavailable for everyone ends a run early. Each run
is recorded (ReconcileRun): readiness and /metrics show the last successful one."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.db.models import F, Q
from django.utils import timezone

from common.db import retry_on_deadlock
from payments import gateway
from payments.models import Payment, PaymentStatus, ReconcileRun, Refund, RefundMethod, RefundStatus
from payments.services.apply import LATE_REFUND_REASON, late_refund_key
from payments.services.locks import payment_lock_with_reservation, refund_lock_with_payment
from payments.services.lookup import payment_apply_intent_now, payment_attempt_resolve, payment_outcome_unknown
from payments.services.refunds import (
    RefundNotNow,
    payment_refundable_amount,
    refund_record,
    refund_record_send_result,
    refund_send,
)
from payments.state import REFUNDABLE
from reservations.models import ReservationStatus

logger = logging.getLogger("reserve.payments")

BATCH = 50
# Stripe usually settles PROCESSING within minutes; a refund's event had its chance before this.
RECHECK_SECONDS = 300
REFUND_GRACE_SECONDS = 120
MAX_BACKOFF_SECONDS = 6 * 3600
RUNS_KEPT = 200


class _StripeDown(Exception):
    pass


@dataclass
class ReconcileStats:
    checked: int = 0
    changed: int = 0
    errors: int = 0
    stopped: str = ""


def _backoff(failures: int) -> dt.timedelta:
    return dt.timedelta(seconds=min(60 * 2 ** max(failures - 1, 0), MAX_BACKOFF_SECONDS))


def _due(now: dt.datetime) -> Q:
    return Q(next_check_at__isnull=True) | Q(next_check_at__lte=now)


def _record_check(model: type[models.Model], pk: Any, *, error: str = "", later: dt.timedelta | None = None) -> None:
    """Bookkeeping on the row itself: fair order, backoff, and the last error for staff."""
    now = timezone.now()
    if error:
        model._default_manager.filter(pk=pk).update(
            check_failures=F("check_failures") + 1, last_check_error=error[:500],
            next_check_at=now + _backoff(int(model._default_manager.filter(pk=pk).values_list(
                "check_failures", flat=True).first() or 0) + 1))
    else:
        model._default_manager.filter(pk=pk).update(check_failures=0, last_check_error="",
                                                    next_check_at=now + later if later else None)


def _isolated(rows: Iterable[models.Model], check: Callable[[Any], bool], stats: ReconcileStats) -> None:
    for row in rows:
        stats.checked += 1
        try:
            stats.changed += int(check(row))
        except gateway.StripeUnavailable as exc:
            raise _StripeDown(str(exc)) from exc
        except Exception as exc:  # one row's problem (a 404, a 401, a bug) must not stop the others
            stats.errors += 1
            logger.warning("reconciliation of a row failed; it is retried later",
                           extra={"row": f"{type(row).__name__}:{row.pk}", "error": type(exc).__name__}, exc_info=True)
            _record_check(type(row), row.pk, error=f"{type(exc).__name__}: {exc}")


def _check_payment(payment: Payment) -> bool:
    before = payment.status
    if payment.status == PaymentStatus.PENDING:
        known = payment_attempt_resolve(payment=payment, actor="system", data={"reconciled": True})
    else:
        intent = gateway.payment_intent_retrieve(intent_id=payment.stripe_payment_intent_id)
        payment_apply_intent_now(payment_id=payment.id, intent=intent, actor="system", data={"reconciled": True})
        known = True
    status = Payment.objects.values_list("status", flat=True).get(pk=payment.pk)
    still_open = status in (PaymentStatus.PENDING, PaymentStatus.PROCESSING, PaymentStatus.REQUIRES_ACTION)
    _record_check(Payment, payment.pk, later=dt.timedelta(seconds=RECHECK_SECONDS) if still_open or not known
                  else None)
    return status != before


@retry_on_deadlock
def _record_refund_result(refund_id: Any, result: Any) -> None:
    with transaction.atomic(durable=True):
        refund, payment, reservation = refund_lock_with_payment(refund_id=refund_id)
        refund_record_send_result(refund=refund, payment=payment, reservation=reservation, result=result)


def _check_refund(refund: Refund) -> bool:
    result = refund_send(refund=refund)
    if isinstance(result, RefundNotNow) and not result.key_spent:
        raise gateway.StripeUnavailable(result.error, retry_after=5, reached=True)
    _record_refund_result(refund.pk, result)
    status = Refund.objects.values_list("status", flat=True).get(pk=refund.pk)
    _record_check(Refund, refund.pk, later=dt.timedelta(seconds=RECHECK_SECONDS)
                  if status == RefundStatus.PENDING else None)
    return status != RefundStatus.PENDING


@retry_on_deadlock
def _refund_late_money(payment: Payment) -> bool:
    with transaction.atomic(durable=True):
        locked, reservation = payment_lock_with_reservation(payment_id=payment.pk)
        if locked.status not in REFUNDABLE or payment_refundable_amount(payment=locked) <= 0:
            return False
        refund_record(payment=locked, reservation=reservation, amount=None, reason=LATE_REFUND_REASON,
                      actor="system", idempotency_key=late_refund_key(payment_id=locked.pk))
    return True


def payments_reconcile() -> dict[str, Any]:
    """One run (scheduled every few minutes). Returns the run's figures."""
    now = timezone.now()
    run = ReconcileRun.objects.create()
    stats = ReconcileStats()
    stale = now - dt.timedelta(seconds=settings.IDEMPOTENCY_LOCK_STALE_SECONDS)
    try:
        attempts = Payment.objects.filter(
            Q(status=PaymentStatus.PENDING) & (Q(outcome_unknown_at__isnull=False) | Q(updated_at__lt=stale))
            | Q(status__in=[PaymentStatus.PROCESSING, PaymentStatus.REQUIRES_ACTION],
                stripe_payment_intent_id__isnull=False, updated_at__lt=stale),
        ).filter(_due(now)).order_by(F("next_check_at").asc(nulls_first=True), "updated_at")[:BATCH]
        _isolated([p for p in attempts if p.status != PaymentStatus.PENDING or payment_outcome_unknown(p, now=now)],
                  _check_payment, stats)
        refunds = Refund.objects.filter(
            status=RefundStatus.PENDING, method=RefundMethod.STRIPE,
            updated_at__lt=now - dt.timedelta(seconds=REFUND_GRACE_SECONDS),
        ).filter(_due(now)).order_by(F("next_check_at").asc(nulls_first=True), "updated_at")[:BATCH]
        _isolated(list(refunds), _check_refund, stats)
        late = Payment.objects.filter(
            status__in=REFUNDABLE,
            reservation__status__in=[ReservationStatus.EXPIRED, ReservationStatus.CANCELLED],
        ).filter(_due(now)).order_by(F("next_check_at").asc(nulls_first=True), "updated_at")[:BATCH]
        _isolated([p for p in late if payment_refundable_amount(payment=p) > 0], _refund_late_money, stats)
    except _StripeDown as exc:
        stats.stopped = f"Stripe unavailable: {exc}"[:500]
        logger.warning("stripe unavailable; reconciliation resumes on the next run")
    ReconcileRun.objects.filter(pk=run.pk).update(
        finished_at=timezone.now(), ok=not stats.stopped, checked=stats.checked, changed=stats.changed,
        errors=stats.errors, stopped_reason=stats.stopped)
    old = ReconcileRun.objects.order_by("-pk").values_list("pk", flat=True)[RUNS_KEPT:RUNS_KEPT + 1]
    if old:
        ReconcileRun.objects.filter(pk__lte=old[0]).delete()
    logger.info("payments reconciled", extra={"checked": stats.checked, "changed": stats.changed,
                                              "errors": stats.errors, "stopped": stats.stopped})
    return {"checked": stats.checked, "changed": stats.changed, "errors": stats.errors, "stopped": stats.stopped}


def reconcile_last_success() -> dt.datetime | None:
    return ReconcileRun.objects.filter(ok=True).order_by("-finished_at").values_list("finished_at", flat=True).first()


def reconcile_ready_check() -> tuple[bool, dict[str, Any]]:
    """Reported, never failing readiness on its own (the schedules check does that)."""
    last = reconcile_last_success()
    return True, {"last_success_age_s": round((timezone.now() - last).total_seconds(), 1) if last else None}
