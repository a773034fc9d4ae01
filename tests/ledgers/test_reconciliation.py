"""Three-way reconciliation (H1) against the real local Stripe and the fake supplier: each kind of
discrepancy is found and recorded once, a rerun closes what no longer holds, staff resolutions
stand, and nothing is concluded from a ledger that could not be read."""

from __future__ import annotations

import time

import pytest
import requests
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from ledgers.models import Discrepancy, DiscrepancyKind, DiscrepancyStatus, LedgerReconcileRun
from ledgers.services import discrepancy_resolve, ledgers_reconcile, ledgers_reconcile_scheduled
from outbox.schedules import periodic_tasks
from payments import gateway
from payments.models import Payment, PaymentStatus, Refund, RefundMethod, RefundStatus
from reservations.models import Reservation, ReservationStatus, SupplierStatus
from tests.factories import ReservationFactory
from tests.ledgers.conftest import paid_and_booked, supplier_book, until_now
from tests.payments.conftest import new_key
from tests.support.outbox import paid_reservation

pytestmark = pytest.mark.django_db


def _open() -> dict[str, Discrepancy]:
    return {d.kind: d for d in Discrepancy.objects.filter(status=DiscrepancyStatus.OPEN)}


def test_ledgers_that_agree_leave_nothing_open(since, api, customer, product, visa, fake_supplier):
    reservation, _ = paid_and_booked(api, customer, product, visa)

    result = ledgers_reconcile(since=since, until=until_now())

    assert reservation.status == ReservationStatus.CONFIRMED
    assert (result.comparison.intents_checked, result.comparison.payments_checked,
            result.comparison.reservations_checked) == (1, 1, 1)
    assert (result.comparison.stripe_complete, result.comparison.supplier_complete) == (True, True)
    assert Discrepancy.objects.count() == 0
    assert LedgerReconcileRun.objects.get().finished_at is not None


def test_money_stripe_took_that_we_never_recorded_is_found_once(since, reservation, stripe_local):
    intent = gateway.payment_intent_create(amount=reservation.amount, currency="eur", payment_method="pm_card_visa",
                                           metadata={"reservation_id": str(reservation.id)},
                                           idempotency_key=new_key())

    first = ledgers_reconcile(since=since, until=until_now())
    ledgers_reconcile(since=since, until=until_now())

    [row] = Discrepancy.objects.all()
    assert (row.kind, row.subject, row.status, row.times_seen) == (
        DiscrepancyKind.CHARGED_NOT_RECORDED, f"pi:{intent.id}", DiscrepancyStatus.OPEN, 2)
    assert row.reservation_id == reservation.id
    assert first.opened == 1


def test_a_payment_we_hold_as_paid_that_stripe_never_captured_is_found(since, reservation, stripe_local):
    Payment.objects.create(reservation=reservation, amount=reservation.amount, currency="eur",
                           status=PaymentStatus.SUCCEEDED, stripe_payment_intent_id="pi_never_existed")

    ledgers_reconcile(since=since, until=until_now())

    assert set(_open()) == {DiscrepancyKind.RECORDED_NOT_CHARGED}


def test_a_refund_made_outside_us_is_a_mismatch_until_we_record_it(since, api, customer, product, visa,
                                                                   fake_supplier):
    _, payment = paid_and_booked(api, customer, product, visa)
    stripe_refund = gateway.refund_create(payment_intent_id=payment.stripe_payment_intent_id, amount=500,
                                          metadata={}, idempotency_key=new_key())  # "in the Dashboard"

    ledgers_reconcile(since=since, until=until_now())
    [mismatch] = _open().values()
    Refund.objects.create(payment=payment, idempotency_key="recorded", amount=500, actor="staff:x",
                          method=RefundMethod.STRIPE, status=RefundStatus.SUCCEEDED,
                          stripe_refund_id=stripe_refund.id)
    rerun = ledgers_reconcile(since=since, until=until_now())

    mismatch.refresh_from_db()
    assert mismatch.kind == DiscrepancyKind.REFUND_MISMATCH
    assert (mismatch.details["stripe"]["refunded"], mismatch.details["ours"]["refunded"]) == (500, 0)
    assert (mismatch.status, rerun.closed) == (DiscrepancyStatus.CLOSED, 1)


def test_a_live_booking_for_a_cancelled_reservation_is_found_and_closed_once_cancelled(
        since, api, customer, product, visa, fake_supplier):
    reservation, _ = paid_and_booked(api, customer, product, visa)
    Reservation.objects.filter(pk=reservation.pk).update(status=ReservationStatus.CANCELLED,
                                                         supplier_status=SupplierStatus.CANCELLED)
    Payment.objects.filter(reservation=reservation).update(status=PaymentStatus.REFUNDED)

    ledgers_reconcile(since=since, until=until_now())
    orphan = _open()[DiscrepancyKind.BOOKED_NOT_RECORDED]
    requests.delete(f"{fake_supplier.base_url}/bookings/{reservation.supplier_booking_id}",
                    headers={"Authorization": "Bearer k"}, timeout=5)
    ledgers_reconcile(since=since, until=until_now())

    orphan.refresh_from_db()
    assert orphan.subject == f"booking:{reservation.supplier_booking_id}"
    assert orphan.status == DiscrepancyStatus.CLOSED


def test_a_second_booking_and_a_missing_one_are_found(since, api, customer, product, visa, fake_supplier):
    twice, _ = paid_and_booked(api, customer, product, visa)
    lost, _ = paid_and_booked(api, customer, product, visa)
    duplicate = supplier_book(fake_supplier, reference=twice.code, key="someone-else")
    Reservation.objects.filter(pk=lost.pk).update(supplier_booking_id="bk_we_think_we_hold")

    ledgers_reconcile(since=since, until=until_now())

    found = {(d.kind, d.subject) for d in Discrepancy.objects.filter(status=DiscrepancyStatus.OPEN)}
    assert found == {(DiscrepancyKind.BOOKED_NOT_RECORDED, f"booking:{duplicate}"),
                     (DiscrepancyKind.BOOKED_NOT_RECORDED, f"booking:{lost.supplier_booking_id}"),
                     (DiscrepancyKind.RECORDED_NOT_BOOKED, f"reservation:{lost.pk}")}


def test_amounts_that_differ_are_found(since, api, customer, product, visa, fake_supplier):
    _, payment = paid_and_booked(api, customer, product, visa)
    Payment.objects.filter(pk=payment.pk).update(amount=payment.amount + 100)

    ledgers_reconcile(since=since, until=until_now())

    subjects = {d.subject for d in Discrepancy.objects.filter(kind=DiscrepancyKind.AMOUNT_MISMATCH)}
    assert subjects == {f"pi:{payment.stripe_payment_intent_id}", f"payment:{payment.pk}"}


def test_a_supplier_that_does_not_answer_closes_nothing_of_its_kinds(since, api, customer, product, visa,
                                                                    fake_supplier):
    reservation, _ = paid_and_booked(api, customer, product, visa)
    supplier_book(fake_supplier, reference=reservation.code, key="duplicate")
    ledgers_reconcile(since=since, until=until_now())
    fake_supplier.control(override="fail")

    result = ledgers_reconcile(since=since, until=until_now())

    assert result.comparison.supplier_complete is False
    assert result.comparison.stripe_complete is True
    assert set(_open()) == {DiscrepancyKind.BOOKED_NOT_RECORDED}


def test_a_resolved_discrepancy_stays_resolved_and_is_audited(since, reservation, stripe_local, staff_user):
    gateway.payment_intent_create(amount=reservation.amount, currency="eur", payment_method="pm_card_visa",
                                  metadata={"reservation_id": str(reservation.id)}, idempotency_key=new_key())
    ledgers_reconcile(since=since, until=until_now())
    [row] = Discrepancy.objects.all()

    discrepancy_resolve(discrepancy_id=row.pk, actor="staff:ops", note="refunded in the Dashboard",
                        expected_version=row.version)
    ledgers_reconcile(since=since, until=until_now())

    row.refresh_from_db()
    assert (row.status, row.resolved_by, row.resolution_note) == (DiscrepancyStatus.RESOLVED, "staff:ops",
                                                                  "refunded in the Dashboard")
    assert row.times_seen == 2
    assert reservation.events.filter(actor="staff:ops", reason__contains="refunded in the Dashboard").exists()


def test_work_still_in_progress_is_not_judged(since, reservation, stripe_local):
    gateway.payment_intent_create(amount=reservation.amount, currency="eur", payment_method="pm_card_visa",
                                  metadata={"reservation_id": str(reservation.id)}, idempotency_key=new_key())

    result = ledgers_reconcile(since=since, until=since)  # the settle margin covers all of it

    assert (result.comparison.intents_checked, Discrepancy.objects.count()) == (0, 0)


def test_ended_reservations_supplier_bookings_with_no_record_of_a_call_are_not_asked(since, product, fake_supplier):
    ReservationFactory(product=product, status=ReservationStatus.CANCELLED, created_at=timezone.now())

    result = ledgers_reconcile(since=since, until=until_now())

    assert result.comparison.reservations_checked == 0


def test_the_command_reconciles_a_window_and_fails_while_discrepancies_are_open(since, reservation, stripe_local,
                                                                                fake_supplier, capsys):
    call_command("reconcile_ledgers", "--since", since.isoformat(), "--settle-seconds", "0", "--fail-on-open")
    gateway.payment_intent_create(amount=reservation.amount, currency="eur", payment_method="pm_card_visa",
                                  metadata={"reservation_id": str(reservation.id)}, idempotency_key=new_key())
    time.sleep(1)  # into the next whole second: the window ends before "now"
    with pytest.raises(CommandError):
        call_command("reconcile_ledgers", "--since", since.isoformat(), "--settle-seconds", "0", "--fail-on-open")

    out = capsys.readouterr().out
    assert "open discrepancies: 0" in out
    assert "open discrepancies: 1" in out
    assert "charged_not_recorded" in out


def test_the_daily_schedule_reconciles_the_last_two_days(settings, reservation, stripe_local, fake_supplier):
    [task] = [t for t in periodic_tasks() if t.func == "ledgers.services.ledgers_reconcile_scheduled"]
    ledgers_reconcile_scheduled()

    run = LedgerReconcileRun.objects.get()
    assert task.minutes == 24 * 60
    assert round((run.until - run.since).total_seconds() / 3600) == settings.LEDGERS_RECONCILE_WINDOW_HOURS


def test_a_booking_no_audit_row_records_is_found_for_a_reservation_we_asked_to_book(since, product, fake_supplier):
    """The worker that booked died before its audit row: the supplier.book event is what says we
    asked, so the reservation is still asked about."""
    reservation = paid_reservation(product)
    orphan = supplier_book(fake_supplier, reference=reservation.code, key=f"reservation:{reservation.id}:book")
    Reservation.objects.filter(pk=reservation.pk).update(status=ReservationStatus.CANCELLED)

    ledgers_reconcile(since=since, until=until_now())

    assert {(d.kind, d.subject) for d in Discrepancy.objects.all()} == {
        (DiscrepancyKind.BOOKED_NOT_RECORDED, f"booking:{orphan}")}
