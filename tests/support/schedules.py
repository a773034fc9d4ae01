"""What a live django-q2 cluster leaves behind: a finished task per schedule."""

from __future__ import annotations

import datetime as dt
import uuid

from django.utils import timezone
from django_q.models import Task

from outbox.schedules import periodic_tasks


def record_schedule_runs(*, age: dt.timedelta = dt.timedelta(seconds=5), names: list[str] | None = None) -> None:
    stopped = timezone.now() - age
    for task in periodic_tasks():
        if names is None or task.name in names:
            Task.objects.create(id=uuid.uuid4().hex, name=f"test-{uuid.uuid4().hex[:8]}", func=task.func,
                                group=task.name, started=stopped - dt.timedelta(seconds=1), stopped=stopped,
                                success=True)
