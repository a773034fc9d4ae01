"""Reconciliation runs (H1) and the staff action on their findings.

A run compares one window (`ledgers.reconciliation`), then records what it found: a new
discrepancy opens a row (unique per subject and kind), one seen before is updated (a CLOSED
one reopens), and an OPEN one whose subject lies in the window of a section that was read
completely but was not found again is CLOSED — it no longer holds. RESOLVED rows stay
resolved: staff looked and decided. Scheduled daily (outbox/schedules.py); on demand with
`manage.py reconcile_ledgers --since …`."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from common.db import retry_on_deadlock, versioned_update
from common.exceptions import ApplicationError, InvalidState, VersionConflict
from ledgers.models import Discrepancy, DiscrepancyStatus, LedgerReconcileRun
from ledgers.reconciliation import STRIPE_KINDS, SUPPLIER_KINDS, Comparison, Finding, ledgers_compare
from reservations.services import reservation_get_locked, reservation_record_event

logger = logging.getLogger("reserve.ledgers")


@dataclass(frozen=True)
class RunResult:
    run: LedgerReconcileRun
    comparison: Comparison
    opened: int
    closed: int

    @property
    def open_count(self) -> int:
        return Discrepancy.objects.filter(status=DiscrepancyStatus.OPEN).count()


def _record_finding(finding: Finding, now: dt.datetime) -> tuple[int, bool]:
    """(the discrepancy's id, whether it is newly open). The unique (subject, kind) decides
    "seen before" even when two runs race (B5: caught around a savepoint)."""
    fields = {"summary": finding.summary[:500], "details": finding.details, "last_seen_at": now,
              "reservation_id": finding.reservation_id, "payment_id": finding.payment_id}
    try:
        with transaction.atomic():
            row = Discrepancy.objects.create(kind=finding.kind, subject=finding.subject[:255],
                                             subject_created_at=finding.subject_created_at, **fields)
        return row.pk, True
    except IntegrityError:
        pass
    row = Discrepancy.objects.select_for_update().get(kind=finding.kind, subject=finding.subject[:255])
    reopened = row.status == DiscrepancyStatus.CLOSED
    if reopened:
        fields.update(status=DiscrepancyStatus.OPEN, closed_at=None)
    Discrepancy.objects.filter(pk=row.pk).update(times_seen=F("times_seen") + 1, version=F("version") + 1, **fields)
    return row.pk, reopened


@retry_on_deadlock
def _record(comparison: Comparison, run: LedgerReconcileRun) -> tuple[int, int]:
    now = timezone.now()
    with transaction.atomic(durable=True):
        seen, opened = set(), 0
        for finding in comparison.findings:
            pk, new = _record_finding(finding, now)
            seen.add(pk)
            opened += int(new)
        kinds = [*(STRIPE_KINDS if comparison.stripe_complete else ()),
                 *(SUPPLIER_KINDS if comparison.supplier_complete else ())]
        closed = Discrepancy.objects.filter(
            status=DiscrepancyStatus.OPEN, kind__in=kinds, subject_created_at__gte=comparison.since,
            subject_created_at__lt=comparison.until,
        ).exclude(pk__in=seen).update(status=DiscrepancyStatus.CLOSED, closed_at=now, version=F("version") + 1)
        LedgerReconcileRun.objects.filter(pk=run.pk).update(
            finished_at=now, stripe_complete=comparison.stripe_complete,
            supplier_complete=comparison.supplier_complete, intents_checked=comparison.intents_checked,
            payments_checked=comparison.payments_checked, reservations_checked=comparison.reservations_checked,
            found=len(comparison.findings), opened=opened, closed=closed, notes="\n".join(comparison.notes)[:10000])
    return opened, closed


def ledgers_reconcile(*, since: dt.datetime, until: dt.datetime | None = None) -> RunResult:
    """Compare Stripe, our payments and refunds, and the suppliers over [since, until) (until:
    now minus LEDGERS_RECONCILE_SETTLE_SECONDS, so that work in progress is not judged), and
    record what differs. No transaction is open during the network calls."""
    until = until or timezone.now() - dt.timedelta(seconds=settings.LEDGERS_RECONCILE_SETTLE_SECONDS)
    # Whole seconds, as Stripe stamps `created`: the window that is listed is the window closed.
    since, until = since.replace(microsecond=0), until.replace(microsecond=0)
    run = LedgerReconcileRun.objects.create(since=since, until=until)
    comparison = ledgers_compare(since=since, until=until)
    opened, closed = _record(comparison, run)
    run.refresh_from_db()
    logger.info("ledgers reconciled", extra={
        "since": since.isoformat(), "until": until.isoformat(), "found": len(comparison.findings), "opened": opened,
        "closed": closed, "stripe_complete": comparison.stripe_complete,
        "supplier_complete": comparison.supplier_complete})
    return RunResult(run=run, comparison=comparison, opened=opened, closed=closed)


def ledgers_reconcile_scheduled() -> dict[str, Any]:
    """The daily schedule: the last LEDGERS_RECONCILE_WINDOW_HOURS (overlapping the previous
    run's window, so that nothing falls between two runs)."""
    since = timezone.now() - dt.timedelta(hours=settings.LEDGERS_RECONCILE_WINDOW_HOURS)
    result = ledgers_reconcile(since=since)
    return {"found": len(result.comparison.findings), "opened": result.opened, "closed": result.closed,
            "stripe_complete": result.comparison.stripe_complete,
            "supplier_complete": result.comparison.supplier_complete}


# --- staff ---------------------------------------------------------------------------------------

@retry_on_deadlock
def discrepancy_resolve(*, discrepancy_id: int, actor: str, note: str, expected_version: int | None = None
                        ) -> Discrepancy:
    """Staff: the discrepancy was dealt with (refunded in the Dashboard, cancelled with the
    supplier, …) or is understood. A note is required; recorded on the row and on the
    reservation's timeline. Refused for a stale page and for a row that is not OPEN."""
    note = note.strip()
    if not note:
        raise ApplicationError("A note is required to resolve a discrepancy.", code="note_required")
    with transaction.atomic(durable=True):
        reservation_id = Discrepancy.objects.values_list("reservation_id", flat=True).get(pk=discrepancy_id)
        # The reservation first: the one lock order (common/locking.py) starts with it.
        reservation = reservation_get_locked(reservation_id=reservation_id) if reservation_id else None
        row = Discrepancy.objects.select_for_update().get(pk=discrepancy_id)
        if expected_version is not None and row.version != expected_version:
            raise VersionConflict(extra={"current_version": row.version})
        if row.status != DiscrepancyStatus.OPEN:
            raise InvalidState(f"This discrepancy is {row.status}: nothing to resolve.",
                               extra={"current_status": row.status})
        versioned_update(row, fields={"status": DiscrepancyStatus.RESOLVED, "resolved_by": actor[:160],
                                      "resolved_at": timezone.now(), "resolution_note": note[:500]})
        if reservation is not None:
            reservation_record_event(reservation=reservation, actor=actor,
                                     reason=f"ledger discrepancy resolved ({row.kind}): {note}"[:500],
                                     data={"discrepancy_id": row.pk, "subject": row.subject, "kind": row.kind},
                                     from_status=reservation.status, to_status=reservation.status)
    logger.info("discrepancy resolved", extra={"discrepancy_id": discrepancy_id, "actor": actor})
    return row
