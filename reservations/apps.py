from django.apps import AppConfig


class ReservationsConfig(AppConfig):
    name = "reservations"

    def ready(self) -> None:
        # Imported here, not at module level: an AppConfig module is imported before the app
        # registry is ready, and these modules use the models.
        from common.metrics import register_gauge_source
        from outbox.alerts import EmailMessageHandler
        from outbox.handlers import register_topic
        from outbox.schedules import register_schedule
        from reservations.metrics import reservation_gauges
        from reservations.notifications import TOPIC as GUEST_EMAIL_TOPIC

        register_gauge_source("reservations", reservation_gauges)
        register_topic(GUEST_EMAIL_TOPIC, EmailMessageHandler())
        register_schedule("reservation expiry", "reservations.expiry.reservations_expire_due", minutes=1)
