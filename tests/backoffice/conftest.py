from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Group
from django.db import transaction
from django.test import Client
from django.utils import timezone

from backoffice.staff_group import GROUP_NAME as STAFF_GROUP_NAME
from outbox.models import DeadLetter, OutboxEvent, OutboxStatus
from payments.models import Payment, PaymentStatus, StripeEvent, StripeEventStatus
from reservations.models import Reservation, ReservationStatus, SupplierStatus
from reservations.services import reservation_transition
from suppliers.models import SupplierRequest
from tests.factories import ReservationFactory, StaffUserFactory


def make_staff_member(username: str | None = None):
    """A staff user (may log in to the admin) whose only rights come from the group."""
    kwargs = {"username": username} if username else {}
    user = StaffUserFactory(**kwargs)
    user.groups.add(Group.objects.get(name=STAFF_GROUP_NAME))
    return user


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def make_on_request(*, product, payment_status: str = PaymentStatus.SUCCEEDED, with_dead_letter: bool = True,
                    **kwargs) -> Reservation:
    """A reservation as the supplier flow leaves it after giving up: paid, CONFIRMED_INTERNAL +
    ON_REQUEST, one failed supplier request in the audit, its supplier.book event dead-lettered."""
    reservation = ReservationFactory(product=product, **kwargs)
    with transaction.atomic():
        Payment.objects.create(reservation=reservation, amount=reservation.amount, currency=reservation.currency,
                               status=payment_status, stripe_payment_intent_id=f"pi_test_{reservation.pk.hex}")
        reservation_transition(reservation=reservation, to_status=ReservationStatus.PAID, actor="stripe",
                               reason="payment succeeded", fields={"supplier_status": SupplierStatus.PENDING})
        # The PAID transition queued the booking event (suppliers' hook); it then died.
        OutboxEvent.objects.filter(dedup_key=f"supplier.book:{reservation.id}").update(
            status=OutboxStatus.DEAD, attempts=5,
            available_at=timezone.now() - dt.timedelta(minutes=10), last_error="HTTP 503 from supplier",
            errors=[{"attempt": n, "at": timezone.now().isoformat(), "error": "HTTP 503 from supplier"}
                    for n in range(1, 6)],
        )
        event = OutboxEvent.objects.get(dedup_key=f"supplier.book:{reservation.id}")
        SupplierRequest.objects.create(
            reservation=reservation, supplier=product.supplier, outbox_event_id=event.id, operation="book",
            attempt=5, idempotency_key=f"reservation:{reservation.id}:book",
            request_payload={"reference": reservation.code, "product_code": product.code},
            response_payload={"error": "upstream unavailable"}, http_status=503, outcome="retryable",
            error_code="http_503", duration_ms=120,
        )
        reservation_transition(reservation=reservation, to_status=ReservationStatus.CONFIRMED_INTERNAL,
                               actor="system", reason="supplier booking failed: HTTP 503 from supplier",
                               fields={"supplier_status": SupplierStatus.ON_REQUEST})
        if with_dead_letter:
            DeadLetter.objects.create(event=event, topic=event.topic, reservation=reservation, payload=event.payload,
                                      error_history=event.errors, last_error=event.last_error,
                                      attempts=event.attempts)
    reservation.refresh_from_db()
    return reservation


def make_dead_letter(*, reservation: Reservation | None = None, topic: str = "alert.slack") -> DeadLetter:
    event = OutboxEvent.objects.create(
        topic=topic, dedup_key=f"{topic}:{timezone.now().timestamp()}:{OutboxEvent.objects.count()}",
        reservation=reservation, payload={"subject": "test alert"}, status=OutboxStatus.DEAD, attempts=5,
        available_at=timezone.now(), last_error="ConnectTimeout: slack",
        errors=[{"attempt": 1, "at": timezone.now().isoformat(), "error": "ConnectTimeout: slack"}],
    )
    return DeadLetter.objects.create(event=event, topic=topic, reservation=reservation, payload=event.payload,
                                     error_history=event.errors, last_error=event.last_error, attempts=5)


def make_failed_stripe_event(*, event_id: str = "evt_test_failed", event_type: str = "customer.created"):
    payload = {"id": event_id, "object": "event", "type": event_type, "data": {"object": {"id": "cus_1"}}}
    return StripeEvent.objects.create(stripe_event_id=event_id, type=event_type, payload=payload,
                                      status=StripeEventStatus.FAILED, attempts=1, error="KeyError: 'boom'")


def timeline(reservation: Reservation) -> list[tuple[str, str, str]]:
    return [(e.to_status, e.actor, e.reason) for e in reservation.events.order_by("id")]


@pytest.fixture
def member(db):
    return make_staff_member("alice")


@pytest.fixture
def member_client(member) -> Client:
    return logged_in(member)


@pytest.fixture
def on_request(product) -> Reservation:
    return make_on_request(product=product)

