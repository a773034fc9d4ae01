from django.apps import AppConfig


class LedgersConfig(AppConfig):
    name = "ledgers"
    verbose_name = "Ledgers"

    def ready(self) -> None:
        from outbox.schedules import register_schedule

        # Daily: yesterday's window, settled (LEDGERS_RECONCILE_WINDOW_HOURS).
        register_schedule("ledgers reconcile", "ledgers.services.ledgers_reconcile_scheduled", minutes=24 * 60)
