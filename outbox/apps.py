from django.apps import AppConfig
from django.db.models.signals import post_migrate


class OutboxConfig(AppConfig):
    name = "outbox"

    def ready(self) -> None:
        from common.health import register_ready_check
        from common.metrics import register_gauge_source
        from outbox.alerts import AlertEmailHandler, AlertSlackHandler
        from outbox.handlers import register_topic
        from outbox.health import outbox_ready_check, queue_ready_check
        from outbox.metrics import outbox_gauges
        from outbox.schedules import register_schedule, schedules_after_migrate, schedules_ready_check
        from outbox.services import ALERT_EMAIL_TOPIC, ALERT_SLACK_TOPIC

        register_ready_check("outbox", outbox_ready_check)
        register_ready_check("queue", queue_ready_check)
        register_ready_check("schedules", schedules_ready_check)
        register_gauge_source("outbox", outbox_gauges)
        register_topic(ALERT_EMAIL_TOPIC, AlertEmailHandler())
        register_topic(ALERT_SLACK_TOPIC, AlertSlackHandler())
        # The drain runs every minute and itself loops for OUTBOX_DRAIN_SECONDS (longer than the
        # minute plus the scheduler's ~30 s granularity), so one is always polling.
        register_schedule("outbox drain", "outbox.tasks.outbox_drain_task", minutes=1)
        register_schedule("idempotency keys purge", "common.idempotency.idempotency_keys_purge", minutes=60)
        register_schedule("api tokens purge", "common.tokens.api_tokens_purge_expired", minutes=60)
        # Deploy = migrate (G4): every migrate (and every test flush) leaves the schedules in place.
        post_migrate.connect(schedules_after_migrate, sender=self, dispatch_uid="outbox_schedules")
