from django.apps import AppConfig


class ReservationsConfig(AppConfig):
    name = "reservations"

    def ready(self) -> None:
        # Imported here, not at module level: an AppConfig module is imported before the app
        # registry is ready, and these modules use the models.
        from common.metrics import register_gauge_source
        from outbox.handlers import register_topic
        from outbox.schedules import register_schedule
        from reservations import notifications
        from reservations.metrics import reservation_gauges
        from reservations.services import on_reservation_transition, on_supplier_status_change

        register_gauge_source("reservations", reservation_gauges)
        register_topic(notifications.TOPIC, notifications.GuestEmailHandler())
        # The guest is told when a booking is confirmed or goes to staff (C8), wherever that happens.
        on_reservation_transition(notifications.guest_emails_on_transition)
        on_supplier_status_change(notifications.guest_emails_on_supplier_status_change)
        register_schedule("reservation expiry", "reservations.expiry.reservations_expire_due", minutes=1)
