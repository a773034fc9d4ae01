"""The invariant checker (G5): each invariant holds on a consistent system and catches the
violation it is about. Our database is real (MariaDB); Stripe's and the supplier's ledgers are
given as the checker reads them, except in the first test, which reads the real ones."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from ledgers.invariants import HttpAnswer, Snapshot, invariants_check
from ledgers.models import Discrepancy, DiscrepancyKind
from ledgers.snapshot import snapshot_load
from outbox.models import DeadLetter, OutboxEvent, OutboxStatus
from payments.gateway import LedgerIntent, LedgerRefund
from payments.models import Payment, PaymentStatus
from reservations.models import DailyInventory, ReservationEvent, ReservationStatus, SupplierStatus
from suppliers.clients import SupplierBooking
from tests.factories import ReservationFactory
from tests.ledgers.conftest import paid_and_booked

pytestmark = pytest.mark.django_db


def _intent(reservation, *, amount: int | None = None, status: str = "succeeded", pi: str = "pi_1") -> LedgerIntent:
    amount = reservation.amount if amount is None else amount
    return LedgerIntent(id=pi, status=status, amount=amount, amount_received=amount if status == "succeeded" else 0,
                        currency="eur", created=int(time.time()), metadata={"reservation_id": str(reservation.id)})


def _paid(reservation, pi: str = "pi_1", status: str = PaymentStatus.SUCCEEDED) -> Payment:
    return Payment.objects.create(reservation=reservation, amount=reservation.amount, currency="eur", status=status,
                                  stripe_payment_intent_id=pi)


def _violations(**ledgers) -> dict[str, list]:
    snapshot = Snapshot(stripe_intents=ledgers.get("intents", []), stripe_refunds=ledgers.get("refunds", []),
                        supplier_bookings=ledgers.get("bookings", []), http_answers=ledgers.get("answers"))
    return {name: found for name, found in invariants_check(snapshot).items() if found}


def test_a_consistent_system_read_from_the_real_ledgers_violates_nothing(since, api, customer, product, visa,
                                                                         fake_supplier, stripe_local, tmp_path):
    paid_and_booked(api, customer, product, visa)
    log = tmp_path / "http.jsonl"
    log.write_text('{"endpoint": "reservation.pay", "status": 200, "content_type": "application/json"}\n')

    snapshot = snapshot_load(since=since, supplier_state_urls=[f"{fake_supplier.base_url}/_state"], http_log=log)

    assert (len(snapshot.stripe_intents), len(snapshot.supplier_bookings), len(snapshot.http_answers)) == (1, 1, 1)
    assert {name: found for name, found in invariants_check(snapshot).items() if found} == {}


def test_money_kept_for_a_cancelled_reservation_is_caught(product):
    reservation = ReservationFactory(product=product, status=ReservationStatus.CANCELLED)
    _paid(reservation)
    refunded_half = LedgerRefund(id="re_1", status="succeeded", amount=reservation.amount // 2,
                                 payment_intent_id="pi_1", created=0)

    found = _violations(intents=[_intent(reservation)], refunds=[refunded_half])

    assert set(found) == {"ended_holds_no_money", "charge_belongs_to_one_booked_reservation"}
    assert _violations(intents=[_intent(reservation)], refunds=[
        LedgerRefund(id="re_2", status="succeeded", amount=reservation.amount, payment_intent_id="pi_1",
                     created=0)]) == {}


def test_a_second_charge_kept_is_caught(product):
    reservation = ReservationFactory(product=product, status=ReservationStatus.CONFIRMED)
    _paid(reservation, "pi_1")
    _paid(reservation, "pi_2")

    found = _violations(intents=[_intent(reservation, pi="pi_1"), _intent(reservation, pi="pi_2")])

    assert set(found) == {"no_double_charge"}


def test_a_charge_we_do_not_hold_as_paid_is_caught(product):
    reservation = ReservationFactory(product=product, status=ReservationStatus.PENDING_PAYMENT)
    _paid(reservation, status=PaymentStatus.CANCELED)

    assert set(_violations(intents=[_intent(reservation)])) == {"charge_belongs_to_one_booked_reservation"}


def test_orphan_duplicate_and_lost_supplier_bookings_are_caught(product):
    cancelled = ReservationFactory(product=product, status=ReservationStatus.CANCELLED)
    twice = ReservationFactory(product=product, status=ReservationStatus.CONFIRMED, supplier_booking_id="bk_a")
    lost = ReservationFactory(product=product, status=ReservationStatus.CONFIRMED,
                              supplier_status=SupplierStatus.CONFIRMED, supplier_booking_id="bk_gone")
    bookings = [SupplierBooking("bk_x", cancelled.code, "CONFIRMED"), SupplierBooking("bk_a", twice.code, "CONFIRMED"),
                SupplierBooking("bk_b", twice.code, "ON_REQUEST"), SupplierBooking("bk_gone", lost.code, "CANCELLED"),
                SupplierBooking("bk_nobody", "R-NOBODY", "CONFIRMED")]

    [*violations] = _violations(bookings=bookings)["supplier_bookings_match"]

    assert sorted(v.subject for v in violations) == ["booking:bk_a, bk_b", "booking:bk_nobody", "booking:bk_x",
                                                     f"reservation:{lost.pk}"]


def test_overbooking_and_inventory_drift_are_caught(supplier):
    from tests.factories import ProductFactory

    limited = ProductFactory(supplier=supplier, daily_capacity=2)
    day = timezone.localdate() + dt.timedelta(days=3)
    for _ in range(3):
        ReservationFactory(product=limited, date=day, quantity=1, holds_capacity=True)
    DailyInventory.objects.create(product=limited, date=day, reserved=2)

    [over, drift] = _violations()["capacity_respected"]

    assert "3 places held, capacity 2" in over.detail
    assert "inventory says 2" in drift.detail


def test_a_paid_reservation_left_between_supplier_states_is_caught(product):
    stuck = ReservationFactory(product=product, status=ReservationStatus.PAID, supplier_status=SupplierStatus.PENDING)
    ReservationEvent.objects.create(reservation=stuck, from_status="", to_status=ReservationStatus.PENDING_PAYMENT,
                                    actor="customer")
    ReservationEvent.objects.create(reservation=stuck, from_status=ReservationStatus.PENDING_PAYMENT,
                                    to_status=ReservationStatus.PAID, actor="stripe")

    found = _violations()

    assert set(found) == {"paid_reached_supplier_terminal", "outbox_not_lost_or_stuck"}  # and no supplier.book
    assert found["outbox_not_lost_or_stuck"][0].detail == "paid, but no supplier.book event was written"


def test_events_stuck_past_their_lease_or_dead_without_a_letter_are_caught():
    past = timezone.now() - dt.timedelta(minutes=10)
    OutboxEvent.objects.create(topic="alert.email", dedup_key="a", status=OutboxStatus.IN_FLIGHT, available_at=past,
                               locked_until=past)
    OutboxEvent.objects.create(topic="alert.email", dedup_key="b", status=OutboxStatus.PENDING, available_at=past)
    dead = OutboxEvent.objects.create(topic="alert.email", dedup_key="c", status=OutboxStatus.DEAD, available_at=past)
    OutboxEvent.objects.create(topic="alert.email", dedup_key="d", status=OutboxStatus.PENDING,
                               available_at=timezone.now())  # due now: a drain takes it within a second

    found = _violations()["outbox_not_lost_or_stuck"]
    DeadLetter.objects.create(event=dead, topic=dead.topic)

    assert len(found) == 3
    assert len(_violations()["outbox_not_lost_or_stuck"]) == 2


def test_undocumented_answers_and_tracebacks_are_caught():
    answers = [HttpAnswer("reservation.pay", 200, "application/json"),
               HttpAnswer("reservation.pay", 503, "application/problem+json", "payment_provider_unavailable"),
               HttpAnswer("reservation.pay", 500, "application/problem+json", "internal_error"),
               HttpAnswer("reservation.create", 409, "text/html"),
               HttpAnswer("webhook", 400, "application/problem+json", traceback=True)]

    found = _violations(answers=answers)["http_answers_documented"]

    assert [v.detail.split()[0] for v in found] == ["500", "409", "400"]


def test_an_illegal_or_inconsistent_timeline_is_caught(product):
    reservation = ReservationFactory(product=product, status=ReservationStatus.CONFIRMED)
    for from_status, to_status in [("", ReservationStatus.PENDING_PAYMENT),
                                   (ReservationStatus.PENDING_PAYMENT, ReservationStatus.CONFIRMED)]:
        ReservationEvent.objects.create(reservation=reservation, from_status=from_status, to_status=to_status,
                                        actor="x")

    [illegal] = _violations()["timeline_legal"]

    assert illegal.detail == "illegal PENDING_PAYMENT → CONFIRMED"


def test_an_open_discrepancy_is_a_violation():
    Discrepancy.objects.create(kind=DiscrepancyKind.RECORDED_NOT_BOOKED, subject="reservation:x", summary="s",
                               subject_created_at=timezone.now(), last_seen_at=timezone.now())

    assert set(_violations()) == {"no_open_discrepancy"}


def test_the_command_prints_the_table_and_fails_on_a_violation(since, product, stripe_local, fake_supplier, tmp_path,
                                                               capsys):
    (tmp_path / "faults.jsonl").write_text('{"t": 1.5, "fault": "redis restart", "detail": "2 s"}\n')
    (tmp_path / "operations.json").write_text('{"pay requests": 3}')
    (tmp_path / "http.jsonl").write_text('{"endpoint": "reservation.pay", "status": 500}\n')
    args = ["check_invariants", "--since", since.isoformat(),
            "--supplier-state-url", f"{fake_supplier.base_url}/_state", "--faults", str(tmp_path / "faults.jsonl"),
            "--operations", str(tmp_path / "operations.json")]

    call_command(*args)
    with pytest.raises(CommandError) as failed:
        call_command(*args, "--http-log", str(tmp_path / "http.jsonl"))

    out = capsys.readouterr().out
    assert failed.value.returncode == 1
    assert "redis restart" in out
    assert "pay requests" in out
    assert "every HTTP answer a documented status, no traceback" in out
    assert "! http_answers_documented: reservation.pay: 500" in out
