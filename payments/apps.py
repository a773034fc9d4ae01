from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payments"

    def ready(self) -> None:
        from common.breakers import breakers_ready_check
        from common.health import register_ready_check

        register_ready_check("breakers", breakers_ready_check)
