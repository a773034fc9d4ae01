"""Outbox gauges for /metrics (F3), computed at scrape time.

Only the unfinished and dead events are counted by status: DELIVERED and DISCARDED rows are
history that grows without bound, and counting them on every scrape would cost a table scan."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count, Min, Q
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric

from outbox.models import DeadLetter, DeadLetterStatus, OutboxEvent, OutboxStatus

COUNTED = (OutboxStatus.PENDING, OutboxStatus.IN_FLIGHT, OutboxStatus.DEAD)


def outbox_gauges() -> Iterator[Metric]:
    now = timezone.now()
    events = GaugeMetricFamily("reserve_outbox_events", "Outbox events waiting, in flight or dead, by topic.",
                               labels=["status", "topic"])
    for row in OutboxEvent.objects.filter(status__in=COUNTED).values("status", "topic").annotate(n=Count("id")):
        events.add_metric([row["status"], row["topic"]], row["n"])
    yield events

    # Due since: a PENDING event since its available_at, a lease-expired one since its lease ended.
    due = OutboxEvent.objects.aggregate(
        pending=Min("available_at", filter=Q(status=OutboxStatus.PENDING, available_at__lte=now)),
        lease=Min("locked_until", filter=Q(status=OutboxStatus.IN_FLIGHT, locked_until__lte=now)),
    )
    oldest = min((t for t in due.values() if t is not None), default=None)
    yield GaugeMetricFamily("reserve_outbox_oldest_due_age_seconds",
                            "How long the longest-waiting due event has been due (0: none is due).",
                            value=(now - oldest).total_seconds() if oldest else 0.0)

    dead = GaugeMetricFamily("reserve_dead_letters_open", "Open dead letters (staff must replay or discard), "
                             "by topic.", labels=["topic"])
    for row in DeadLetter.objects.filter(status=DeadLetterStatus.OPEN).values("topic").annotate(n=Count("id")):
        dead.add_metric([row["topic"]], row["n"])
    yield dead
