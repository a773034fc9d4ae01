"""Register the periodic tasks (idempotent: run by `make run` and by every deploy).

    python manage.py setup_schedules
"""

from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand
from django.utils import timezone
from django_q.models import Schedule

# name -> (function, every N minutes). The drain runs every minute and loops for
# OUTBOX_DRAIN_SECONDS itself; the others are plain periodic jobs.
SCHEDULES: dict[str, tuple[str, int]] = {
    "outbox drain": ("outbox.tasks.outbox_drain_task", 1),
    "reservation expiry": ("reservations.expiry.reservations_expire_due", 1),
    "payments reconcile": ("payments.services.payments_reconcile", 5),
    "idempotency keys purge": ("common.idempotency.idempotency_keys_purge", 60),
}


class Command(BaseCommand):
    help = "Create or update the django-q2 schedules (outbox drain, expiry, reconcile, purge)."

    def handle(self, *args: object, **options: object) -> None:
        for name, (func, minutes) in SCHEDULES.items():
            schedule, created = Schedule.objects.update_or_create(
                name=name,
                defaults={"func": func, "schedule_type": Schedule.MINUTES, "minutes": minutes, "repeats": -1},
            )
            if created or schedule.next_run is None or schedule.next_run > timezone.now() + timedelta(minutes=minutes):
                schedule.next_run = timezone.now()
                schedule.save(update_fields=["next_run"])
            self.stdout.write(f"{'created' if created else 'updated'} schedule {name!r}: {func} every {minutes} min")
