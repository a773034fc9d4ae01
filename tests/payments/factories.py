from __future__ import annotations

import uuid

import factory

from payments.models import Payment, PaymentStatus
from tests.factories import ReservationFactory


class PaymentFactory(factory.django.DjangoModelFactory):
    """An attempt Stripe has an intent for, still in flight (guard held)."""

    class Meta:
        model = Payment

    reservation = factory.SubFactory(ReservationFactory)
    amount = factory.LazyAttribute(lambda p: p.reservation.amount)
    currency = factory.LazyAttribute(lambda p: p.reservation.currency)
    status = PaymentStatus.PENDING
    stripe_payment_intent_id = factory.LazyFunction(lambda: f"pi_test_{uuid.uuid4().hex[:20]}")
    stripe_charge_id = factory.LazyFunction(lambda: f"ch_test_{uuid.uuid4().hex[:20]}")
    payment_method_id = "pm_test"
    attempt_key = factory.LazyFunction(lambda: f"pay-{uuid.uuid4()}")
    in_flight_for = factory.LazyAttribute(lambda p: p.reservation.id if p.status in (
        PaymentStatus.PENDING, PaymentStatus.PROCESSING, PaymentStatus.REQUIRES_ACTION) else None)
