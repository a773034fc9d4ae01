from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.auth import authenticate
from django.core.management import call_command

from outbox.models import DeadLetter
from payments.models import Payment
from reservations.selectors import reservations_on_request
from suppliers.models import SupplierRequest

pytestmark = pytest.mark.django_db


def test_seed_backoffice_demo_is_idempotent_and_pays_for_real(stripe_local):
    call_command("seed_backoffice_demo")
    call_command("seed_backoffice_demo")

    staff = authenticate(username="staff", password="staff-demo-pass")
    assert staff is not None
    assert staff.is_staff
    assert not staff.is_superuser
    assert [g.name for g in staff.groups.all()] == ["Reservations staff"]
    [reservation] = reservations_on_request()
    payment = Payment.objects.get(reservation=reservation)
    assert payment.stripe_payment_intent_id.startswith("pi_")
    assert not payment.stripe_payment_intent_id.startswith("pi_demo_")  # a real localstripe intent
    # Made through the services: every attempt really went to the offline supplier.
    assert SupplierRequest.objects.filter(reservation=reservation).count() == settings.OUTBOX_MAX_ATTEMPTS
    moves = [(e.from_status, e.to_status) for e in reservation.events.order_by("id") if e.from_status != e.to_status]
    assert moves == [("", "PENDING_PAYMENT"), ("PENDING_PAYMENT", "PAID"), ("PAID", "CONFIRMED_INTERNAL")]
    assert DeadLetter.objects.filter(status="OPEN", reservation=reservation).count() == 1
