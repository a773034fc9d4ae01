"""The periodic tasks, kept by `manage.py migrate` (G4: deploy = migrate).

A post_migrate handler creates or updates the django-q2 schedules on every migrate, so a
database that has been migrated is ready to serve with its safety nets running: the outbox
drain (retries, lost enqueues, expired leases), hold expiry, the Stripe reconciler and the
idempotency-key purge. `manage.py setup_schedules` does the same by hand.

Readiness (`schedules_ready_check`) fails while a schedule is missing or has not run for
three of its intervals: a deploy without a live django-q2 cluster is not healthy, since
nothing would retry a failed supplier booking."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db import DEFAULT_DB_ALIAS
from django.db.models import Max
from django.utils import timezone
from django_q.models import Schedule, Task

STALL_FACTOR = 3  # a schedule that has not run for this many intervals is stalled


@dataclass(frozen=True)
class PeriodicTask:
    name: str
    func: str  # dotted path: the outbox must not import the apps it serves
    minutes: int

    @property
    def interval(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.minutes)


# The drain runs every minute and itself loops for OUTBOX_DRAIN_SECONDS (longer than the
# minute plus the scheduler's ~30 s granularity), so one is always polling.
PERIODIC_TASKS: tuple[PeriodicTask, ...] = (
    PeriodicTask("outbox drain", "outbox.tasks.outbox_drain_task", 1),
    PeriodicTask("reservation expiry", "reservations.expiry.reservations_expire_due", 1),
    PeriodicTask("payments reconcile", "payments.services.payments_reconcile", 5),
    PeriodicTask("idempotency keys purge", "common.idempotency.idempotency_keys_purge", 60),
    PeriodicTask("ledgers reconcile", "ledgers.services.ledgers_reconcile_scheduled", 24 * 60),
)


def schedules_sync(*, using: str = DEFAULT_DB_ALIAS) -> list[tuple[PeriodicTask, bool]]:
    """Create or update every schedule (idempotent). A new one, or one whose next run lies
    further ahead than its interval (its interval was shortened), is due now."""
    now = timezone.now()
    results = []
    for task in PERIODIC_TASKS:
        schedule, created = Schedule.objects.using(using).update_or_create(
            name=task.name,
            defaults={"func": task.func, "schedule_type": Schedule.MINUTES, "minutes": task.minutes, "repeats": -1},
        )
        if created or schedule.next_run is None or schedule.next_run > now + task.interval:
            Schedule.objects.using(using).filter(pk=schedule.pk).update(next_run=now)
        results.append((task, created))
    return results


def schedules_after_migrate(sender: Any, using: str = DEFAULT_DB_ALIAS, **kwargs: Any) -> None:
    schedules_sync(using=using)


def schedules_status(*, now: dt.datetime | None = None) -> dict[str, dict[str, Any]]:
    """{name: {"last_run_age_s", "interval_s", "status"}}. The last run is the last finished
    task of the schedule (django-q2 names the task's group after its schedule); one that never
    ran counts from when it was first due."""
    now = now or timezone.now()
    schedules = {s.name: s for s in Schedule.objects.filter(name__in=[t.name for t in PERIODIC_TASKS])}
    finished = dict(
        Task.objects.filter(group__in=list(schedules)).values("group").annotate(last=Max("stopped"))
        .values_list("group", "last")
    )
    status: dict[str, dict[str, Any]] = {}
    for task in PERIODIC_TASKS:
        schedule = schedules.get(task.name)
        if schedule is None:
            status[task.name] = {"last_run_age_s": None, "interval_s": task.minutes * 60, "status": "missing"}
            continue
        since = finished.get(task.name) or min(schedule.next_run or now, now)
        age = max((now - since).total_seconds(), 0.0)
        stalled = age > STALL_FACTOR * task.interval.total_seconds() or schedule.func != task.func
        status[task.name] = {"last_run_age_s": round(age, 1), "interval_s": task.minutes * 60,
                             "status": "stalled" if stalled else "ok"}
    return status


def schedules_ready_check() -> tuple[bool, dict[str, dict[str, Any]]]:
    status = schedules_status()
    return all(s["status"] == "ok" for s in status.values()), status
