"""A2 expiry against a payment in progress: a customer who started paying before the hold ran
out is not expired under Stripe's feet; an abandoned attempt does not keep the hold forever."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from payments.models import Payment
from reservations.expiry import in_flight_grace, reservations_expire_due
from reservations.models import Reservation, ReservationStatus
from tests.factories import ReservationFactory
from tests.payments.factories import PaymentFactory
from tests.support.servers import closed_port

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _stripe_unreachable(settings):
    # Expiry cancels open intents after its transaction; never let that leave this machine.
    settings.STRIPE_API_BASE = f"http://127.0.0.1:{closed_port()}"


def _overdue_with_attempt(*, attempt_age: dt.timedelta) -> Reservation:
    reservation = ReservationFactory(expires_at=timezone.now() - dt.timedelta(seconds=5))
    payment = PaymentFactory(reservation=reservation, stripe_payment_intent_id=None)
    Payment.objects.filter(pk=payment.pk).update(updated_at=timezone.now() - attempt_age)
    return reservation


def test_a_reservation_being_paid_is_not_expired_while_stripe_answers():
    reservation = _overdue_with_attempt(attempt_age=dt.timedelta(seconds=1))

    assert reservations_expire_due() == 0

    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.PENDING_PAYMENT


def test_an_abandoned_attempt_does_not_keep_the_hold_forever():
    reservation = _overdue_with_attempt(attempt_age=in_flight_grace() + dt.timedelta(seconds=1))

    assert reservations_expire_due() == 1

    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.EXPIRED
