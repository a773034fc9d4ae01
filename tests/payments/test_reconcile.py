from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django.utils import timezone

from payments.models import Payment, PaymentStatus
from payments.services import payments_reconcile
from reservations.models import Reservation, ReservationStatus
from tests.payments.conftest import new_key, pay

pytestmark = pytest.mark.django_db


def test_reconcile_applies_the_real_state_of_a_stuck_intent(api, reservation, visa):
    assert pay(api, reservation, key=new_key(), payment_method=visa).status_code == 200
    payment = Payment.objects.get(reservation=reservation)
    # As if the answer had been "processing" and the webhook never came.
    Payment.objects.filter(pk=payment.pk).update(status=PaymentStatus.PROCESSING, in_flight_for=reservation.id)
    Reservation.objects.filter(pk=reservation.pk).update(status=ReservationStatus.PENDING_PAYMENT)

    assert payments_reconcile() == 1

    payment.refresh_from_db()
    reservation.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert reservation.status == ReservationStatus.PAID


def test_reconcile_settles_an_attempt_left_pending_by_a_dead_request(reservation, visa):
    stale = timezone.now() - dt.timedelta(hours=1)
    attempt = Payment.objects.create(reservation=reservation, amount=reservation.amount, currency=reservation.currency,
                                     payment_method_id=visa, attempt_key="dead", in_flight_for=reservation.id)
    Payment.objects.filter(pk=attempt.pk).update(updated_at=stale)

    call_command("payments_reconcile")

    attempt.refresh_from_db()
    assert attempt.status == PaymentStatus.SUCCEEDED
    assert attempt.stripe_payment_intent_id


def test_reconcile_refunds_money_taken_for_an_expired_reservation(api, reservation, visa):
    assert pay(api, reservation, key=new_key(), payment_method=visa).status_code == 200
    Reservation.objects.filter(pk=reservation.pk).update(status=ReservationStatus.EXPIRED)

    assert payments_reconcile() == 1

    payment = Payment.objects.get(reservation=reservation)
    assert (payment.status, payment.refunded_amount) == (PaymentStatus.REFUNDED, payment.amount)


@pytest.mark.parametrize("ended", [ReservationStatus.EXPIRED, ReservationStatus.CANCELLED])
def test_reconcile_never_charges_for_a_reservation_that_ended(reservation, visa, stripe_local, ended):
    """An attempt left PENDING with no intent (503 during pay) whose reservation then ended: the
    reconciler must find out whether Stripe made an intent, not make one that charges now."""
    from tests.payments.conftest import intents_for

    stale = timezone.now() - dt.timedelta(hours=1)
    attempt = Payment.objects.create(reservation=reservation, amount=reservation.amount, currency=reservation.currency,
                                     payment_method_id=visa, attempt_key="dead", in_flight_for=reservation.id)
    Payment.objects.filter(pk=attempt.pk).update(updated_at=stale)
    Reservation.objects.filter(pk=reservation.pk).update(status=ended)

    payments_reconcile()

    assert [pi.status for pi in intents_for(stripe_local, reservation.id) if pi.status == "succeeded"] == []
    attempt.refresh_from_db()
    assert (attempt.status, attempt.in_flight_for) == (PaymentStatus.CANCELED, None)
    reservation.refresh_from_db()
    assert reservation.status == ended


def test_reconcile_finds_the_charge_a_lost_create_made_for_an_ended_reservation_and_refunds_it(
        api, reservation, visa, stripe_local, settings):
    """The first create did reach Stripe and charged, but its answer was lost (503), then the
    reservation expired. Against Stripe's idempotency layer, the probe without confirm is refused
    (key used with other parameters), the identical create is answered from the cache with the
    original intent, and the money is refunded: no second intent, no second charge."""
    from tests.payments.conftest import intents_for
    from tests.support.stripe_idempotency_proxy import StripeIdempotencyProxy

    settings.STRIPE_TIMEOUT_SECONDS = 0.5
    with StripeIdempotencyProxy(stripe_local) as stripe_like:
        settings.STRIPE_API_BASE = stripe_like.url
        stripe_like.lose_answers = True
        assert pay(api, reservation, key=new_key(), payment_method=visa).status_code == 503
        stripe_like.lose_answers = False
        [original] = intents_for(stripe_local, reservation.id)
        assert original.status == "succeeded"
        attempt = Payment.objects.get(reservation=reservation)
        assert (attempt.status, attempt.stripe_payment_intent_id) == (PaymentStatus.PENDING, None)
        Reservation.objects.filter(pk=reservation.pk).update(status=ReservationStatus.EXPIRED)
        Payment.objects.filter(pk=attempt.pk).update(updated_at=timezone.now() - dt.timedelta(hours=1))

        payments_reconcile()

    assert [pi.id for pi in intents_for(stripe_local, reservation.id)] == [original.id]
    attempt.refresh_from_db()
    assert attempt.stripe_payment_intent_id == original.id
    assert (attempt.status, attempt.refunded_amount, attempt.in_flight_for) == (
        PaymentStatus.REFUNDED, attempt.amount, None)
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.EXPIRED
