"""A2 expiry, the schedules command, and the readiness checks."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_q.models import Schedule

from outbox.health import outbox_ready_check, queue_ready_check
from reservations.expiry import in_flight_grace, reservations_expire_due
from reservations.models import DailyInventory, ReservationStatus
from reservations.services import reservation_create
from tests.support.outbox import drain_all, paid_reservation

pytestmark = pytest.mark.django_db


def test_an_unpaid_hold_expires_and_releases_its_capacity(customer, limited_product):
    date = timezone.localdate() + dt.timedelta(days=3)
    due = reservation_create(user=customer, product=limited_product, date=date, quantity=3, guest_name="A",
                             guest_email="a@example.test")
    fresh = reservation_create(user=customer, product=limited_product, date=date, quantity=1, guest_name="B",
                               guest_email="b@example.test")
    type(due).objects.filter(pk=due.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))

    assert reservations_expire_due() == 1
    assert reservations_expire_due() == 0

    due.refresh_from_db()
    fresh.refresh_from_db()
    assert (due.status, due.holds_capacity) == (ReservationStatus.EXPIRED, False)
    assert fresh.status == ReservationStatus.PENDING_PAYMENT
    assert DailyInventory.objects.get(product=limited_product, date=date).reserved == 1
    assert due.events.filter(to_status="EXPIRED", actor="system").exists()


def test_setup_schedules_is_idempotent():
    call_command("setup_schedules")
    call_command("setup_schedules")

    assert dict(Schedule.objects.values_list("name", "func")) == {
        "outbox drain": "outbox.tasks.outbox_drain_task",
        "reservation expiry": "reservations.expiry.reservations_expire_due",
        "payments reconcile": "payments.services.payments_reconcile",
        "idempotency keys purge": "common.idempotency.idempotency_keys_purge",
        "api tokens purge": "common.tokens.api_tokens_purge_expired",
        "ledgers reconcile": "ledgers.services.ledgers_reconcile_scheduled",
    }
    assert set(Schedule.objects.values_list("repeats", flat=True)) == {-1}


def test_scheduled_functions_import():
    from django.utils.module_loading import import_string

    from outbox.schedules import periodic_tasks

    for task in periodic_tasks():
        assert callable(import_string(task.func))


def test_outbox_readiness_reports_backlog_and_dead_letters(fake_supplier, product):
    fake_supplier.set_mode(product.code, "permanent")
    paid_reservation(product)
    ok, details = outbox_ready_check()
    assert ok
    assert details["pending"] == 1
    assert details["dead_letters"] == 0

    drain_all()

    ok, details = outbox_ready_check()
    assert (details["pending"], details["oldest_age_s"], details["dead_letters"]) == (0, 0, 1)


def test_queue_readiness_without_a_cluster_says_so_but_stays_ready():
    ok, details = queue_ready_check()

    assert ok
    assert details["status"] == "no_cluster"


def test_health_ready_includes_outbox_and_queue(client):
    body = client.get("/health/ready").json()

    assert {"pending", "oldest_age_s", "dead_letters"} <= set(body["checks"]["outbox"])
    assert "status" in body["checks"]["queue"]


def test_expiry_cancels_the_open_payment_intent(api, customer, product, stripe_local):
    from payments.models import Payment, PaymentStatus
    from tests.factories import ReservationFactory
    from tests.payments.conftest import REQUIRES_3DS, create_payment_method, intents_for, new_key, pay

    reservation = ReservationFactory(user=customer, product=product)
    response = pay(api, reservation, key=new_key(), payment_method=create_payment_method(stripe_local, REQUIRES_3DS))
    assert response.status_code == 202, response.content
    type(reservation).objects.filter(pk=reservation.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    # While the customer is in 3-D Secure the hold is kept; an abandoned challenge is not.
    assert reservations_expire_due() == 0
    Payment.objects.filter(reservation=reservation).update(
        updated_at=timezone.now() - in_flight_grace() - dt.timedelta(seconds=1))

    assert reservations_expire_due() == 1
    drain_all()  # the intent's cancellation was queued with the expiry

    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.EXPIRED
    assert Payment.objects.get(reservation=reservation).status == PaymentStatus.CANCELED
    [intent] = intents_for(stripe_local, reservation.id)
    assert intent.status == "canceled"
