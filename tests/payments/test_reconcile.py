"""The reconciler (B8, issue "money lifecycle" item 5): it looks things up and never charges;
one bad row never stops it; rows are taken fairly; every run is recorded."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django.utils import timezone

from payments.models import Payment, PaymentStatus, ReconcileRun, RefundStatus
from payments.services import payments_reconcile
from payments.services import reconcile as reconcile_module
from payments.services.reconcile import reconcile_ready_check
from reservations.models import Reservation, ReservationStatus
from tests.payments.conftest import intents_for, new_key, pay
from tests.payments.factories import PaymentFactory
from tests.support.outbox import drain_all

pytestmark = pytest.mark.django_db

STALE = dt.timedelta(hours=1)


def _abandoned_attempt(reservation, visa) -> Payment:
    """An attempt whose pay request died before Stripe was called (or before it saw the answer)."""
    attempt = Payment.objects.create(reservation=reservation, amount=reservation.amount, currency=reservation.currency,
                                     payment_method_id=visa, attempt_key="dead", in_flight_for=reservation.id)
    Payment.objects.filter(pk=attempt.pk).update(updated_at=timezone.now() - STALE,
                                                 created_at=timezone.now() - STALE)
    attempt.refresh_from_db()
    return attempt


def test_reconcile_applies_the_real_state_of_a_stuck_intent(api, reservation, visa):
    assert pay(api, reservation, key=new_key(), payment_method=visa).status_code == 200
    payment = Payment.objects.get(reservation=reservation)
    # As if the answer had been "processing" and the webhook never came.
    Payment.objects.filter(pk=payment.pk).update(status=PaymentStatus.PROCESSING, in_flight_for=reservation.id,
                                                 updated_at=timezone.now() - STALE)
    Reservation.objects.filter(pk=reservation.pk).update(status=ReservationStatus.PENDING_PAYMENT)

    assert payments_reconcile()["changed"] == 1

    payment.refresh_from_db()
    reservation.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert reservation.status == ReservationStatus.PAID


def test_reconcile_never_charges_an_attempt_that_never_reached_stripe(reservation, visa, stripe_local,
                                                                    strict_stripe):
    """B8: even while the reservation is still payable, the reconciler only looks. The probe
    (same key, no confirm) proves the create never reached Stripe; the probe is cancelled."""
    attempt = _abandoned_attempt(reservation, visa)

    call_command("payments_reconcile")

    assert [pi.status for pi in intents_for(stripe_local, reservation.id)] == ["canceled"]
    assert all(s.params.get("confirm") == "false" for s in strict_stripe.intent_creates())
    attempt.refresh_from_db()
    assert (attempt.status, attempt.failure_code, attempt.in_flight_for) == (
        PaymentStatus.CANCELED, "no_charge_found", None)
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.PENDING_PAYMENT  # the customer may pay again


def test_reconcile_finds_a_charge_whose_answer_was_lost_without_charging_again(
        api, reservation, visa, stripe_local, strict_stripe, settings):
    settings.STRIPE_TIMEOUT_SECONDS = 0.5
    strict_stripe.lose_answers = True
    assert pay(api, reservation, key=new_key(), payment_method=visa).status_code == 503
    strict_stripe.lose_answers = False
    [original] = intents_for(stripe_local, reservation.id)
    Payment.objects.filter(reservation=reservation).update(updated_at=timezone.now() - STALE)

    payments_reconcile()

    assert [pi.id for pi in intents_for(stripe_local, reservation.id)] == [original.id]
    assert len(strict_stripe.executed_intent_creates()) == 1
    attempt = Payment.objects.get(reservation=reservation)
    assert (attempt.status, attempt.stripe_payment_intent_id) == (PaymentStatus.SUCCEEDED, original.id)
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.PAID


@pytest.mark.parametrize("ended", [ReservationStatus.EXPIRED, ReservationStatus.CANCELLED])
def test_reconcile_refunds_money_a_lost_create_took_for_a_reservation_that_ended(
        api, reservation, visa, stripe_local, strict_stripe, settings, ended):
    settings.STRIPE_TIMEOUT_SECONDS = 0.5
    strict_stripe.lose_answers = True
    assert pay(api, reservation, key=new_key(), payment_method=visa).status_code == 503
    strict_stripe.lose_answers = False
    Reservation.objects.filter(pk=reservation.pk).update(status=ended)
    Payment.objects.filter(reservation=reservation).update(updated_at=timezone.now() - STALE)

    payments_reconcile()
    drain_all()  # the refund decided with the success goes out through the outbox

    attempt = Payment.objects.get(reservation=reservation)
    assert (attempt.status, attempt.refunded_amount, attempt.in_flight_for) == (
        PaymentStatus.REFUNDED, attempt.amount, None)
    reservation.refresh_from_db()
    assert reservation.status == ended


def test_reconcile_decides_the_refund_of_money_held_by_an_ended_reservation(api, reservation, visa):
    assert pay(api, reservation, key=new_key(), payment_method=visa).status_code == 200
    Reservation.objects.filter(pk=reservation.pk).update(status=ReservationStatus.EXPIRED)

    assert payments_reconcile()["changed"] == 1
    drain_all()

    payment = Payment.objects.get(reservation=reservation)
    assert (payment.status, payment.refunded_amount) == (PaymentStatus.REFUNDED, payment.amount)
    assert payment.refunds.get().status == RefundStatus.SUCCEEDED


def test_one_bad_row_is_recorded_and_does_not_stop_the_run(api, customer, product, visa, stripe_local):
    from tests.factories import ReservationFactory

    broken = PaymentFactory(status=PaymentStatus.PROCESSING, stripe_payment_intent_id="pi_gone_from_stripe")
    good_reservation = ReservationFactory(user=customer, product=product)
    assert pay(api, good_reservation, key=new_key(), payment_method=visa).status_code == 200
    good = Payment.objects.get(reservation=good_reservation)
    Payment.objects.filter(pk=good.pk).update(status=PaymentStatus.PROCESSING, in_flight_for=good_reservation.id)
    Reservation.objects.filter(pk=good_reservation.pk).update(status=ReservationStatus.PENDING_PAYMENT)
    Payment.objects.filter(pk__in=[broken.pk, good.pk]).update(updated_at=timezone.now() - STALE)
    Payment.objects.filter(pk=broken.pk).update(updated_at=timezone.now() - 2 * STALE)  # looked at first

    run = payments_reconcile()

    assert (run["errors"], run["stopped"]) == (1, "")
    good.refresh_from_db()
    broken.refresh_from_db()
    assert good.status == PaymentStatus.SUCCEEDED
    assert broken.status == PaymentStatus.PROCESSING
    assert broken.check_failures == 1
    assert "resource_missing" in broken.last_check_error or "StripeRequestRejected" in broken.last_check_error
    assert broken.next_check_at > timezone.now()


def test_rows_are_taken_fairly_a_failing_row_steps_back(stripe_local, monkeypatch):
    monkeypatch.setattr(reconcile_module, "BATCH", 1)
    failing = PaymentFactory(status=PaymentStatus.PROCESSING, stripe_payment_intent_id="pi_gone_1")
    newer = PaymentFactory(status=PaymentStatus.PROCESSING, stripe_payment_intent_id="pi_gone_2")
    Payment.objects.filter(pk=failing.pk).update(updated_at=timezone.now() - 2 * STALE)
    Payment.objects.filter(pk=newer.pk).update(updated_at=timezone.now() - STALE)

    payments_reconcile()
    payments_reconcile()

    failing.refresh_from_db()
    newer.refresh_from_db()
    # The oldest failed and was pushed back by its backoff: the next run took the newer row.
    assert (failing.check_failures, newer.check_failures) == (1, 1)


def test_a_run_stops_while_stripe_is_down_and_readiness_shows_the_last_success(reservation, visa, settings,
                                                                            stripe_local):
    from tests.support.servers import closed_port

    assert payments_reconcile()["stopped"] == ""
    ok, details = reconcile_ready_check()
    assert ok
    assert details["last_success_age_s"] is not None

    _abandoned_attempt(reservation, visa)
    settings.STRIPE_API_BASE = f"http://127.0.0.1:{closed_port()}"
    run = payments_reconcile()

    assert run["stopped"].startswith("Stripe unavailable")
    assert ReconcileRun.objects.filter(ok=False).count() == 1
    assert ReconcileRun.objects.filter(ok=True).count() == 1
