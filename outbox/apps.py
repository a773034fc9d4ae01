from django.apps import AppConfig
from django.db.models.signals import post_migrate


class OutboxConfig(AppConfig):
    name = "outbox"

    def ready(self) -> None:
        from common.health import register_ready_check
        from common.metrics import register_gauge_source
        from outbox.health import outbox_ready_check, queue_ready_check
        from outbox.metrics import outbox_gauges
        from outbox.schedules import schedules_after_migrate, schedules_ready_check

        register_ready_check("outbox", outbox_ready_check)
        register_ready_check("queue", queue_ready_check)
        register_ready_check("schedules", schedules_ready_check)
        register_gauge_source("outbox", outbox_gauges)
        # Deploy = migrate (G4): every migrate (and every test flush) leaves the schedules in place.
        post_migrate.connect(schedules_after_migrate, sender=self, dispatch_uid="outbox_schedules")
