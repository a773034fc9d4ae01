"""Guest e-mails (C8): rendered from templates/emails/ in the reservation's language (English
or Spanish, from Accept-Language when it was made), text and HTML, sent through the outbox at
most once per reservation and kind, when the booking is confirmed (by the supplier or by
staff), when it goes to staff (ON_REQUEST), and when it is cancelled or rejected with a refund."""

from __future__ import annotations

import datetime as dt
import subprocess

import pytest
from django.db import transaction
from django.utils import translation

from outbox.delivery import outbox_drain_once
from outbox.models import OutboxEvent, OutboxStatus
from outbox.services import outbox_enqueue
from reservations.models import ReservationStatus, SupplierStatus
from reservations.notifications import TOPIC, GuestEmail, guest_email_enqueue, guest_email_render, money_display
from suppliers.staff import reservation_confirm_manually
from tests.factories import ReservationFactory
from tests.support.outbox import drain_all, paid_reservation
from tests.support.servers import ROOT

pytestmark = pytest.mark.django_db

GUEST = '<b>Ada</b> & "Co"'
FACTS = {"guest_name": GUEST, "code": "R-7KQ2M9", "product": "Sunset kayak trip", "date": "2026-06-05",
         "quantity": 2, "amount": 125000, "currency": "eur", "supplier_reference": "ACME-4411",
         "refund_amount": 99950}

# What each kind must tell, per language: its subject, and words only that kind's text has.
EXPECTED = {
    (GuestEmail.BOOKING_CONFIRMED, "en"): ("Your booking R-7KQ2M9 is confirmed",
                                           ["confirmed by the provider", "Supplier confirmation code: ACME-4411"]),
    (GuestEmail.BOOKING_CONFIRMED, "es"): ("Tu reserva R-7KQ2M9 está confirmada",
                                           ["el proveedor ha confirmado", "Código de confirmación del proveedor: "
                                                                          "ACME-4411"]),
    (GuestEmail.AWAITING_CONFIRMATION, "en"): ("We are confirming your booking R-7KQ2M9",
                                               ["What happens next:", "refund 1,250.00 EUR in full"]),
    (GuestEmail.AWAITING_CONFIRMATION, "es"): ("Estamos confirmando tu reserva R-7KQ2M9",
                                               ["Qué pasa ahora:", "devolveremos 1\xa0250,00 EUR íntegramente"]),
    (GuestEmail.CANCELLED_REFUND, "en"): ("Your reservation R-7KQ2M9 is cancelled",
                                          ["Refund: 999.50 EUR", "within 5 to 10 business days"]),
    (GuestEmail.CANCELLED_REFUND, "es"): ("Tu reserva R-7KQ2M9 está cancelada",
                                          ["Reembolso: 999,50 EUR", "de 5 a 10 días hábiles"]),
    (GuestEmail.REJECTED_REFUND, "en"): ("Your reservation R-7KQ2M9 could not be confirmed",
                                         ["no availability for Sunset kayak trip on June 5, 2026",
                                          "Your payment of 999.50 EUR has been refunded in full"]),
    (GuestEmail.REJECTED_REFUND, "es"): ("No hemos podido confirmar tu reserva R-7KQ2M9",
                                         ["no tiene disponibilidad para Sunset kayak trip el 5 de junio de 2026",
                                          "Te hemos reembolsado íntegramente tu pago de 999,50 EUR"]),
}


# The shared layout (emails/base.*): greeting, the booking's details, the closing line.
LAYOUT = {
    "en": ("Hello", ["Reservation: R-7KQ2M9", "Date: June 5, 2026", "Quantity: 2", "Amount paid: 1,250.00 EUR",
                     "Thank you for booking with us."]),
    "es": ("Hola,", ["Reserva: R-7KQ2M9", "Fecha: 5 de junio de 2026", "Cantidad: 2", "Importe pagado: 1\xa0250,00 EUR",
                     "Gracias por reservar con nosotros."]),
}


@pytest.mark.parametrize(("kind", "locale"), list(EXPECTED))
def test_every_kind_renders_subject_text_and_html_in_both_languages(kind, locale):
    subject, phrases = EXPECTED[(kind, locale)]

    email = guest_email_render(kind=kind, locale=locale, facts=FACTS)

    assert email.subject == subject
    greeting, details = LAYOUT[locale]
    for phrase in [*phrases, *details]:
        assert phrase in email.text
    assert email.text.startswith(f"{greeting} {GUEST}")  # plain text: the name as typed
    assert "\n\n\n" not in email.text
    # HTML: the same words on the shared layout, the guest's name escaped, the language declared.
    assert email.html.startswith("<!DOCTYPE html>")
    assert f'<html lang="{locale}">' in email.html
    assert "&lt;b&gt;Ada&lt;/b&gt; &amp; &quot;Co&quot;" in email.html
    assert "<b>Ada</b>" not in email.html
    for phrase in phrases:
        assert phrase.split(": ")[-1] in email.html
    assert subject in email.html  # <title>


def test_a_confirmation_without_a_supplier_code_leaves_that_line_out():
    facts = {**FACTS, "supplier_reference": ""}

    email = guest_email_render(kind=GuestEmail.BOOKING_CONFIRMED, locale="en", facts=facts)

    assert "Supplier confirmation code" not in email.text
    assert "Supplier confirmation code" not in email.html


def test_every_string_is_translated_and_the_compiled_catalog_is_the_po_file(tmp_path):
    """An untranslated or fuzzy string would show English inside a Spanish e-mail; a stale .mo
    (a .po edited without `make messages`) would render yesterday's text."""
    po = ROOT / "locale" / "es" / "LC_MESSAGES" / "django.po"
    compiled = tmp_path / "django.mo"

    result = subprocess.run(["msgfmt", "--check", "--statistics", "-o", str(compiled), str(po)],
                            capture_output=True, text=True, check=True)

    assert "untranslated" not in result.stderr, result.stderr
    assert "fuzzy" not in result.stderr, result.stderr
    assert po.with_suffix(".mo").read_bytes() == compiled.read_bytes(), "run make messages"


def test_amounts_follow_the_currency_and_the_language():
    with translation.override("en"):
        assert money_display(123456789, "eur") == "1,234,567.89 EUR"
        assert money_display(5, "usd") == "0.05 USD"
        assert money_display(5000, "jpy") == "5,000 JPY"  # zero-decimal: minor unit = the unit
    with translation.override("es"):
        assert money_display(123456789, "eur") == "1\xa0234\xa0567,89 EUR"


@pytest.mark.parametrize(("accept_language", "locale"), [
    ("es-ES,es;q=0.9,en;q=0.8", "es"),
    ("es-MX", "es"),
    ("fr-FR, es;q=0.5", "es"),
    ("en-GB,en;q=0.9,es;q=0.8", "en"),
    ("de-DE", "en"),
    (None, "en"),
])
def test_the_reservation_keeps_the_language_its_accept_language_asked_for(api, product, accept_language, locale):
    headers = {"HTTP_ACCEPT_LANGUAGE": accept_language} if accept_language else {}
    body = {"product": str(product.id), "date": (dt.date.today() + dt.timedelta(days=3)).isoformat(),
            "quantity": 1, "guest_name": "Ada", "guest_email": "ada@example.test"}

    response = api.post("/api/v1/reservations/", body, format="json", **headers)

    assert response.status_code == 201, response.content
    assert response.json()["locale"] == locale
    assert api.get(f"/api/v1/reservations/{response.json()['id']}/").json()["locale"] == locale


def guest_mail(mailoutbox, reservation):
    return [mail for mail in mailoutbox if mail.to == [reservation.guest_email]]


def test_a_supplier_confirmation_emails_the_guest_in_their_language(fake_supplier, product, mailoutbox):
    reservation = paid_reservation(product, locale="es", guest_email="ana@example.test")

    drain_all()

    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.CONFIRMED
    [mail] = guest_mail(mailoutbox, reservation)
    assert mail.subject == f"Tu reserva {reservation.code} está confirmada"
    assert f"Código de confirmación del proveedor: {reservation.supplier_reference}" in mail.body
    assert product.name in mail.body
    [(html, mimetype)] = mail.alternatives
    assert mimetype == "text/html"
    assert reservation.supplier_reference in html


@pytest.mark.parametrize("mode", ["on_request", "fail"])  # the supplier's answer; booking attempts exhausted
def test_a_booking_going_to_staff_tells_the_guest_what_happens_next(fake_supplier, product, settings, mailoutbox,
                                                                     mode):
    settings.OUTBOX_MAX_ATTEMPTS = 2
    settings.SUPPLIER_BREAKER_FAIL_MAX = 100
    fake_supplier.set_mode(product.code, mode)
    reservation = paid_reservation(product)

    drain_all()

    reservation.refresh_from_db()
    assert (reservation.status, reservation.supplier_status) == ("CONFIRMED_INTERNAL", "ON_REQUEST")
    [mail] = guest_mail(mailoutbox, reservation)
    assert mail.subject == f"We are confirming your booking {reservation.code}"
    assert "What happens next:" in mail.body


def test_staff_confirming_by_hand_emails_the_confirmation_once(fake_supplier, product, mailoutbox):
    fake_supplier.set_mode(product.code, "on_request")
    reservation = paid_reservation(product)
    drain_all()
    reservation.refresh_from_db()

    reservation_confirm_manually(reservation_id=reservation.id, supplier_reference="PHONE-77", actor="staff:bob",
                                 expected_version=reservation.version)
    drain_all()

    subjects = [mail.subject for mail in guest_mail(mailoutbox, reservation)]
    assert subjects == [f"We are confirming your booking {reservation.code}",
                        f"Your booking {reservation.code} is confirmed"]
    assert "Supplier confirmation code: PHONE-77" in guest_mail(mailoutbox, reservation)[-1].body


def test_each_kind_is_sent_at_most_once_per_reservation(product, mailoutbox):
    reservation = ReservationFactory(product=product, status=ReservationStatus.CONFIRMED)
    with transaction.atomic():
        first = guest_email_enqueue(reservation=reservation, kind=GuestEmail.BOOKING_CONFIRMED)
        again = guest_email_enqueue(reservation=reservation, kind=GuestEmail.BOOKING_CONFIRMED)
        other = guest_email_enqueue(reservation=reservation, kind=GuestEmail.CANCELLED_REFUND)
    drain_all()
    with transaction.atomic():  # e.g. a transition replayed after the first e-mail went out
        later = guest_email_enqueue(reservation=reservation, kind=GuestEmail.BOOKING_CONFIRMED)
    drain_all()

    assert first.pk == again.pk == later.pk != other.pk
    assert len(mailoutbox) == 2


def test_an_awaiting_email_not_sent_before_the_booking_was_confirmed_is_dropped(product, mailoutbox):
    """Confirmed (or cancelled) while the "we are confirming" e-mail waited for a mail server:
    the confirmation says what matters; the stale news is not sent after it."""
    reservation = ReservationFactory(product=product, status=ReservationStatus.CONFIRMED_INTERNAL,
                                     supplier_status=SupplierStatus.ON_REQUEST)
    with transaction.atomic():
        event = guest_email_enqueue(reservation=reservation, kind=GuestEmail.AWAITING_CONFIRMATION)
    reservation.status = ReservationStatus.CONFIRMED
    reservation.save(update_fields=["status"])

    drain_all()

    event.refresh_from_db()
    assert event.status == OutboxStatus.DELIVERED
    assert mailoutbox == []


def test_an_email_rendered_by_an_earlier_release_is_still_sent(mailoutbox):
    """Events enqueued before the templates (subject and body in the payload) survive the upgrade."""
    with transaction.atomic():
        outbox_enqueue(topic=TOPIC, dedup_key=f"{TOPIC}:old", payload={
            "to": "old@example.test", "subject": "Your reservation R-OLD is cancelled", "body": "Refunded."})

    drain_all()

    [mail] = mailoutbox
    assert (mail.to, mail.subject, mail.body) == (["old@example.test"], "Your reservation R-OLD is cancelled",
                                                  "Refunded.")


def test_a_template_error_fails_the_email_not_the_booking(fake_supplier, product, mailoutbox, monkeypatch):
    """Rendered at send time: a broken template costs the e-mail an attempt (retried, then a
    dead letter to replay once fixed), while the booking it tells about is confirmed."""
    monkeypatch.setattr("reservations.notifications.render_to_string",
                        lambda *a, **k: (_ for _ in ()).throw(ValueError("template broken")))
    reservation = paid_reservation(product)

    outbox_drain_once()
    outbox_drain_once()

    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.CONFIRMED
    email = OutboxEvent.objects.get(topic=TOPIC)
    assert (email.status, email.attempts) == (OutboxStatus.PENDING, 1)
    assert "template broken" in email.last_error
    assert guest_mail(mailoutbox, reservation) == []
