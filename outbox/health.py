"""Readiness details for the outbox and the task queue (E4, api.md /health/ready).

Neither fails readiness: a web process with a backlog or without workers still takes
payments (their outbox rows wait), so it must stay in the load balancer. Operators alert on
the figures (and on /metrics)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Min
from django.utils import timezone

from outbox.models import UNFINISHED, DeadLetter, DeadLetterStatus, OutboxEvent


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
    the drain schedule tells: a running cluster moves `next_run` forward every minute."""
    from django_q.models import Schedule
    from django_q.status import Stat

    clusters = len(Stat.get_all())
    next_run = Schedule.objects.filter(name="outbox drain").values_list("next_run", flat=True).first()
    schedule_fresh = next_run is not None and next_run > timezone.now() - timedelta(minutes=2)
    alive = clusters > 0 or schedule_fresh
    return True, {"status": "ok" if alive else "no_cluster", "clusters": clusters,
                  "drain_next_run": next_run.isoformat() if next_run else None}
