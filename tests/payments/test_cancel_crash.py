"""B10: a real process is SIGKILLed between every pair of steps of a paid cancellation — before
the decision commits, after it, after each outbox claim and after each external call (the
refund at Stripe, the DELETE at the supplier) — and the reservation still ends CANCELLED,
refunded exactly once at Stripe, with its supplier booking cancelled and never a second one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from django.db import connection
from django.utils import timezone

from outbox.models import OutboxEvent, OutboxStatus
from payments.models import Payment, PaymentStatus, RefundStatus
from payments.services import reservation_cancel
from reservations.models import ReservationStatus, SupplierStatus
from tests.payments.conftest import new_key, pay, stripe_admin
from tests.support.outbox import drain_all, wait_until
from tests.support.servers import ROOT

pytestmark = pytest.mark.django_db(transaction=True)

LEASE_SECONDS = 2
STEPS = [
    "cancel.deciding",  # inside the decision's transaction: nothing was decided
    "cancel.decided",  # committed, the refund not sent yet
    "outbox.claimed:payment.refund",
    "outbox.performed:payment.refund",  # Stripe refunded, we never recorded it
    "outbox.claimed:supplier.cancel",
    "outbox.performed:supplier.cancel",  # the supplier cancelled, we never recorded it
]


def _run_until_killed(reservation_id, kill_at: str, stripe_url: str) -> subprocess.CompletedProcess:
    db = connection.settings_dict
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "TEST_QUIET_LOGS": "1",
           "DATABASE_URL": f"mysql://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 3306}/{db['NAME']}",
           "STRIPE_API_BASE": stripe_url, "OUTBOX_LEASE_SECONDS": str(LEASE_SECONDS), "REDIS_URL": ""}
    return subprocess.run([sys.executable, "-m", "tests.support.crash_runner", str(reservation_id), kill_at],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("kill_at", STEPS)
def test_a_cancel_killed_at_any_step_ends_cancelled_refunded_once_and_supplier_cancelled_once(
        kill_at, api, reservation, visa, fake_supplier, stripe_local, settings):
    settings.OUTBOX_LEASE_SECONDS = LEASE_SECONDS
    assert pay(api, reservation, key=new_key(), payment_method=visa).status_code == 200
    drain_all()
    reservation.refresh_from_db()
    assert (reservation.status, reservation.supplier_status) == (ReservationStatus.CONFIRMED, "CONFIRMED")

    died = _run_until_killed(reservation.id, kill_at, stripe_local)

    assert died.returncode == -signal.SIGKILL, f"{kill_at} was never reached:\n{died.stderr[-3000:]}"
    # Recovery, as production does it: the customer (who got no answer) may retry the cancel;
    # the outbox takes over the dead process's leases once they end.
    reservation.refresh_from_db()
    if reservation.status != ReservationStatus.CANCELLED:
        reservation_cancel(reservation_id=reservation.id, actor="customer", reason="retried after no answer")
    wait_until(lambda: not OutboxEvent.objects.filter(status=OutboxStatus.IN_FLIGHT,
                                                      locked_until__gt=timezone.now()).exists(),
               timeout=LEASE_SECONDS * 5, message="the dead process's leases to end")
    drain_all()

    reservation.refresh_from_db()
    payment = Payment.objects.get(reservation=reservation)
    assert (reservation.status, reservation.supplier_status) == (ReservationStatus.CANCELLED,
                                                                 SupplierStatus.CANCELLED)
    assert (payment.status, payment.refunded_amount) == (PaymentStatus.REFUNDED, payment.amount)
    assert list(payment.refunds.values_list("status", flat=True)) == [RefundStatus.SUCCEEDED]
    at_stripe = stripe_admin(stripe_local).v1.refunds.list(params={"payment_intent": payment.stripe_payment_intent_id})
    assert [r.amount for r in at_stripe.data] == [payment.amount]  # refunded once
    [booking] = fake_supplier.bookings(reference=reservation.code)  # booked once
    assert booking["status"] == "CANCELLED"
    assert reservation.events.filter(to_status=ReservationStatus.CANCELLED,
                                     from_status=ReservationStatus.CONFIRMED).count() == 1
