from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payments"

    def ready(self) -> None:
        from common.breakers import breakers_ready_check
        from common.health import register_ready_check
        from common.metrics import register_gauge_source
        from payments import gateway
        from payments.metrics import observe_stripe_call, payment_gauges
        from payments.services.cancel import payments_on_reservation_transition
        from payments.services.reconcile import reconcile_ready_check
        from reservations.services import on_reservation_transition

        register_ready_check("breakers", breakers_ready_check)
        register_ready_check("reconciler", reconcile_ready_check)
        register_gauge_source("payments", payment_gauges)
        gateway.latency_observer = observe_stripe_call
        on_reservation_transition(payments_on_reservation_transition)
