from django.apps import AppConfig


class SuppliersConfig(AppConfig):
    name = "suppliers"

    def ready(self) -> None:
        from reservations.services import on_reservation_transition
        from suppliers.booking import supplier_on_reservation_transition

        on_reservation_transition(supplier_on_reservation_transition)
