"""A mail server that is down delays the guest's e-mail, never the booking (C8, E5): against a
real SMTP port that refuses connections or accepts them and never answers, the booking is
confirmed, the e-mail's outbox event is retried with backoff, and it is delivered, once, when
the server answers again."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from outbox.delivery import outbox_drain_once
from outbox.models import OutboxEvent, OutboxStatus
from reservations.models import ReservationStatus
from reservations.notifications import TOPIC
from tests.support.outbox import make_due, paid_reservation
from tests.support.servers import closed_port
from tests.support.smtp_server import SmtpServer

pytestmark = pytest.mark.django_db


@pytest.fixture
def smtp_settings(settings):
    def point_at(port: int) -> None:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
        settings.EMAIL_TIMEOUT = 1  # E5: a hanging server costs one attempt this long

    return point_at


def _deliver_booking_and_first_email_attempt() -> None:
    outbox_drain_once()  # the booking: CONFIRMED, and the guest e-mail enqueued with it
    outbox_drain_once()  # the e-mail's first attempt


def _assert_confirmed_with_email_waiting(reservation, error: str) -> OutboxEvent:
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.CONFIRMED
    assert OutboxEvent.objects.get(topic="supplier.book").status == OutboxStatus.DELIVERED
    email = OutboxEvent.objects.get(topic=TOPIC)
    assert (email.status, email.attempts) == (OutboxStatus.PENDING, 1)
    assert error in email.last_error
    assert email.available_at > timezone.now() + dt.timedelta(seconds=10)  # backed off (15 s), not spinning
    return email


def _assert_delivered_once(email: OutboxEvent, server: SmtpServer, reservation) -> None:
    make_due(topic=TOPIC)
    outbox_drain_once()
    outbox_drain_once()  # nothing left to send twice

    email.refresh_from_db()
    assert (email.status, email.attempts) == (OutboxStatus.DELIVERED, 2)
    [mail] = server.received
    assert mail.recipients == [reservation.guest_email]
    assert mail.message["Subject"] == f"Your booking {reservation.code} is confirmed"
    assert mail.message.get_body(("html",)) is not None
    assert reservation.supplier_reference in mail.message.get_body(("plain",)).get_content()


def test_a_refusing_mail_server_delays_the_email_never_the_booking(fake_supplier, product, smtp_settings):
    port = closed_port()
    smtp_settings(port)
    reservation = paid_reservation(product)

    _deliver_booking_and_first_email_attempt()

    email = _assert_confirmed_with_email_waiting(reservation, "ConnectionRefusedError")
    with SmtpServer(port) as server:  # the mail server is back, where it was
        _assert_delivered_once(email, server, reservation)


def test_a_hanging_mail_server_delays_the_email_never_the_booking(fake_supplier, product, smtp_settings):
    with SmtpServer() as server:
        server.hang()
        smtp_settings(server.port)
        reservation = paid_reservation(product)

        _deliver_booking_and_first_email_attempt()

        email = _assert_confirmed_with_email_waiting(reservation, "timed out")
        assert server.received == []
        server.answer()
        _assert_delivered_once(email, server, reservation)
