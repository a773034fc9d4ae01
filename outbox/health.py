"""Readiness details for the outbox and the task queue (E4, api.md /health/ready).

Neither fails readiness: a web process with a backlog still takes payments (their outbox
rows wait), so it must stay in the load balancer. Operators alert on the figures (and on
/metrics). What does fail readiness is outbox.schedules' check: no live cluster at all."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Max, Min
from django.utils import timezone
from django_q.models import Task
from django_q.status import Stat

from outbox.models import UNFINISHED, DeadLetter, DeadLetterStatus, OutboxEvent

DRAIN_SCHEDULE = "outbox drain"


def outbox_backlog() -> dict[str, Any]:
    now = timezone.now()
    pending = OutboxEvent.objects.filter(status__in=UNFINISHED).aggregate(oldest=Min("created_at"))
    count = OutboxEvent.objects.filter(status__in=UNFINISHED).count()
    oldest = pending["oldest"]
    return {"pending": count, "oldest_age_s": round((now - oldest).total_seconds(), 1) if oldest else 0,
            "dead_letters": DeadLetter.objects.filter(status=DeadLetterStatus.OPEN).count()}


def outbox_ready_check() -> tuple[bool, dict[str, Any]]:
    return True, outbox_backlog()


def queue_ready_check() -> tuple[bool, dict[str, Any]]:
    """Is a django-q2 cluster alive? Its own stats need a shared cache (Redis); without one,
    the drain tells: a live cluster finishes a drain run about every minute."""
    clusters = len(Stat.get_all())
    last_drain = Task.objects.filter(group=DRAIN_SCHEDULE).aggregate(last=Max("stopped"))["last"]
    drain_recent = last_drain is not None and last_drain > timezone.now() - timedelta(minutes=3)
    alive = clusters > 0 or drain_recent
    return True, {"status": "ok" if alive else "no_cluster", "clusters": clusters,
                  "drain_last_finished": last_drain.isoformat() if last_drain else None}
