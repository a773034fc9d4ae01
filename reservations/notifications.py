"""E-mails to the guest (C5, C8), sent through the outbox: retried, dead-lettered, and at most
once per reservation and kind (the dedup key is the kind and the reservation).

What an e-mail says is fixed when it is enqueued, inside the transaction of the change it tells
about: the facts (code, product, date, amounts, the supplier's code) and the guest's language
are copied into the event. It is rendered from templates/emails/ when it is sent, in that
language. So a template or catalog error fails only the e-mail's own attempt (retried, then a
dead letter staff can replay once it is fixed) and never the booking or the cancellation; no
template is rendered while the reservation row is locked; and a retry hours later still tells
what happened then, not what the reservation has become since."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.template.loader import render_to_string
from django.utils import translation
from django.utils.dateparse import parse_date
from django.utils.formats import number_format
from django.utils.translation import gettext, gettext_noop

from common.compiled import CompiledQuery
from outbox.alerts import EmailContent, EmailMessageHandler
from outbox.models import OutboxEvent
from outbox.services import outbox_enqueue
from reservations.models import Reservation, ReservationStatus, SupplierStatus

TOPIC = "email.customer"


class GuestEmail(enum.StrEnum):
    BOOKING_CONFIRMED = "booking_confirmed"
    AWAITING_CONFIRMATION = "awaiting_confirmation"  # paid, ON_REQUEST: staff confirm it by hand
    CANCELLED_REFUND = "cancelled_refund"
    REJECTED_REFUND = "rejected_refund"


_SUBJECTS = {
    GuestEmail.BOOKING_CONFIRMED: gettext_noop("Your booking %(code)s is confirmed"),
    GuestEmail.AWAITING_CONFIRMATION: gettext_noop("We are confirming your booking %(code)s"),
    GuestEmail.CANCELLED_REFUND: gettext_noop("Your reservation %(code)s is cancelled"),
    GuestEmail.REJECTED_REFUND: gettext_noop("Your reservation %(code)s could not be confirmed"),
}

# Currencies whose minor unit is the unit itself (Stripe's list): 500 JPY is ¥500, not ¥5.00.
_ZERO_DECIMAL = frozenset({"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd",
                           "vuv", "xaf", "xof", "xpf"})


# The catalog's product (an app above this one: reached through the foreign key, never imported),
# its name read by a query compiled once: the e-mail follows every booking, inside its
# transaction, where the ORM's lazy `reservation.product` was the booking's costliest statement.
_PRODUCT = Reservation._meta.get_field("product")
_PRODUCT_NAME = CompiledQuery(lambda pk: _PRODUCT.related_model.objects.filter(pk=pk).values_list("name"),
                              pk=_PRODUCT.target_field)


def _product_name(reservation: Reservation) -> str:
    if _PRODUCT.is_cached(reservation):
        return reservation.product.name
    [(name,)] = _PRODUCT_NAME.execute(pk=reservation.product_id)
    return name


def guest_email_enqueue(*, reservation: Reservation, kind: GuestEmail, refund_amount: int | None = None
                        ) -> OutboxEvent:
    """Inside the transaction of the change the e-mail tells about; a second call for the same
    reservation and kind returns the first event (nothing is sent twice)."""
    facts = {"guest_name": reservation.guest_name, "code": reservation.code, "product": _product_name(reservation),
             "date": reservation.date.isoformat(), "quantity": reservation.quantity, "amount": reservation.amount,
             "currency": reservation.currency, "supplier_reference": reservation.supplier_reference,
             "refund_amount": reservation.amount if refund_amount is None else refund_amount}
    return outbox_enqueue(topic=TOPIC, dedup_key=f"{TOPIC}:{kind}:{reservation.id}",
                          payload={"to": reservation.guest_email, "reservation_id": str(reservation.id),
                                   "kind": str(kind), "locale": reservation.locale, "facts": facts})


# --- rendering -----------------------------------------------------------------------------------

def money_display(amount: int, currency: str) -> str:
    """Minor units as the active language writes them: 1,250.00 EUR / 1.250,00 EUR."""
    places = 0 if currency.lower() in _ZERO_DECIMAL else 2
    value = Decimal(amount).scaleb(-places)
    return f"{number_format(value, decimal_pos=places, force_grouping=True)} {currency.upper()}"


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def _tidy_text(text: str) -> str:
    """Template tags leave blank lines and trailing spaces behind; a plain-text mail shows them."""
    lines = [line.rstrip() for line in text.strip().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)) + "\n"


def guest_email_render(*, kind: GuestEmail, locale: str, facts: dict[str, Any]) -> RenderedEmail:
    """Subject, plain text and HTML of one guest e-mail, in `locale`."""
    with translation.override(locale):
        context = {**facts, "locale": translation.get_language(), "date": parse_date(facts["date"]),
                   "amount": money_display(facts["amount"], facts["currency"]),
                   "refund_amount": money_display(facts["refund_amount"], facts["currency"])}
        subject = gettext(_SUBJECTS[kind]) % {"code": facts["code"]}
        context["subject"] = subject
        text = render_to_string(f"emails/{kind}.txt", context)
        html = render_to_string(f"emails/{kind}.html", context)
    return RenderedEmail(subject=subject, text=_tidy_text(text), html=html)


class GuestEmailHandler(EmailMessageHandler):
    """Outbox topic `email.customer`: renders the e-mail from its facts, in its language, and
    sends it (retried on an SMTP failure like every notification)."""

    def content(self, event: OutboxEvent) -> EmailContent | None:
        payload = event.payload
        if "facts" not in payload:  # enqueued by an earlier release, rendered then
            return super().content(event)
        kind = GuestEmail(payload["kind"])
        if kind is GuestEmail.AWAITING_CONFIRMATION and not _still_awaiting(payload["reservation_id"]):
            return None  # confirmed or cancelled meanwhile: that e-mail says what matters now
        rendered = guest_email_render(kind=kind, locale=payload["locale"], facts=payload["facts"])
        return EmailContent(to=payload["to"], subject=rendered.subject, text=rendered.text, html=rendered.html)


def _still_awaiting(reservation_id: str) -> bool:
    return Reservation.objects.filter(pk=reservation_id, status=ReservationStatus.CONFIRMED_INTERNAL).exists()


# --- when the guest is told (hooks registered in ReservationsConfig.ready) -----------------------
# Wherever a booking is confirmed (the supplier's answer, a later answer, staff confirming by
# hand) or goes to staff (the supplier put it on request, or booking gave up), the reservation
# passes through these two points; the cancellation e-mails carry the refund, so the one home of
# "refund and cancel" (payments) sends them.

def guest_emails_on_transition(reservation: Reservation, from_status: str, to_status: str) -> None:
    if to_status == ReservationStatus.CONFIRMED:
        guest_email_enqueue(reservation=reservation, kind=GuestEmail.BOOKING_CONFIRMED)


def guest_emails_on_supplier_status_change(reservation: Reservation, from_status: str, to_status: str) -> None:
    if to_status == SupplierStatus.ON_REQUEST and reservation.status == ReservationStatus.CONFIRMED_INTERNAL:
        guest_email_enqueue(reservation=reservation, kind=GuestEmail.AWAITING_CONFIRMATION)
