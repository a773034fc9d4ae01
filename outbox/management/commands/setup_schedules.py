"""Create or update the periodic tasks. `manage.py migrate` already does this on every run
(outbox.schedules); this command is kept for operators and scripts that call it.

    python manage.py setup_schedules
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from outbox.schedules import schedules_sync


class Command(BaseCommand):
    help = "Create or update the django-q2 schedules (migrate does this too)."

    def handle(self, *args: object, **options: object) -> None:
        for task, created in schedules_sync():
            self.stdout.write(f"{'created' if created else 'updated'} schedule {task.name!r}: "
                              f"{task.func} every {task.minutes} min")
