from django.apps import AppConfig


class SuppliersConfig(AppConfig):
    name = "suppliers"

    def ready(self) -> None:
        from outbox.handlers import register_topic
        from reservations.services import on_reservation_transition
        from suppliers.booking import (
            BOOK_TOPIC,
            CANCEL_TOPIC,
            SupplierBookHandler,
            SupplierCancelHandler,
            supplier_on_reservation_transition,
        )

        on_reservation_transition(supplier_on_reservation_transition)
        register_topic(BOOK_TOPIC, SupplierBookHandler())
        register_topic(CANCEL_TOPIC, SupplierCancelHandler())
