from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payments"

    def ready(self) -> None:
        from common.breakers import breakers_ready_check
        from common.health import register_ready_check
        from common.metrics import register_gauge_source
        from outbox.handlers import register_topic
        from outbox.schedules import register_schedule
        from payments import gateway
        from payments.api.serializers import PaymentOutputSerializer, listed_payment_bodies, payment_body
        from payments.metrics import count_stripe_outcome, observe_stripe_latency, payment_gauges
        from payments.services.cancel import (
            CANCEL_INTENT_TOPIC,
            COMPENSATE_TOPIC,
            CompensationHandler,
            IntentCancelHandler,
            payments_on_reservation_transition,
            payments_on_supplier_status_change,
        )
        from payments.services.pay import payment_attempt_keeps_hold
        from payments.services.reconcile import reconcile_ready_check
        from payments.services.refunds import REFUND_TOPIC, RefundSendHandler
        from reservations.api.serializers import register_reservation_output_field
        from reservations.expiry import register_expiry_guard
        from reservations.services import on_reservation_transition, on_supplier_status_change

        register_ready_check("breakers", breakers_ready_check)
        register_ready_check("reconciler", reconcile_ready_check)
        register_gauge_source("payments", payment_gauges)
        gateway.latency_observer = observe_stripe_latency
        gateway.outcome_observer = count_stripe_outcome
        on_reservation_transition(payments_on_reservation_transition)
        on_supplier_status_change(payments_on_supplier_status_change)
        register_expiry_guard(payment_attempt_keeps_hold)
        # The reservation body's "payment": the newest attempt (api.md).
        register_reservation_output_field(
            "payment", lambda: PaymentOutputSerializer(source="latest_payment", read_only=True, allow_null=True),
            render=lambda reservation: payment_body(reservation.latest_payment), render_listed=listed_payment_bodies)
        register_topic(REFUND_TOPIC, RefundSendHandler())
        register_topic(CANCEL_INTENT_TOPIC, IntentCancelHandler())
        register_topic(COMPENSATE_TOPIC, CompensationHandler())
        register_schedule("payments reconcile", "payments.services.payments_reconcile", minutes=5)
