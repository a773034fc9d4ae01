from django.apps import AppConfig


class OutboxConfig(AppConfig):
    name = "outbox"

    def ready(self) -> None:
        from common.health import register_ready_check
        from outbox.health import outbox_ready_check, queue_ready_check

        register_ready_check("outbox", outbox_ready_check)
        register_ready_check("queue", queue_ready_check)
