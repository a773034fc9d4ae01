from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ReservationsConfig(AppConfig):
    name = "reservations"

    def ready(self) -> None:
        from common.metrics import register_gauge_source
        from reservations.metrics import reservation_gauges
        from reservations.staff_group import _after_migrate

        register_gauge_source("reservations", reservation_gauges)

        # Once per migrate (and per test flush); it creates the permissions it needs itself,
        # so it does not depend on the order in which apps receive post_migrate.
        post_migrate.connect(_after_migrate, sender=self, dispatch_uid="reservations_staff_group")
