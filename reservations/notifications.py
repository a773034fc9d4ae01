"""E-mails to the guest (C5, C8), sent through the outbox: retried, dead-lettered, and at most
once per reservation and kind (the dedup key is the kind and the reservation)."""

from __future__ import annotations

import enum
from typing import Any

from outbox.services import outbox_enqueue
from reservations.models import Reservation

TOPIC = "email.customer"


class GuestEmail(enum.StrEnum):
    CANCELLED_REFUND = "cancelled_refund"
    REJECTED_REFUND = "rejected_refund"


def _money(amount: int, currency: str) -> str:
    return f"{amount / 100:,.2f} {currency.upper()}"


def _message(reservation: Reservation, kind: GuestEmail, context: dict[str, Any]) -> tuple[str, str]:
    product = reservation.product.name
    refund = _money(context.get("refund_amount", reservation.amount), reservation.currency)
    if kind is GuestEmail.REJECTED_REFUND:
        return (f"Your reservation {reservation.code} could not be confirmed",
                f"Hello {reservation.guest_name},\n\nThe provider has no availability for {product} on "
                f"{reservation.date}. Your payment of {refund} has been refunded in full; it usually reaches "
                "your account within 5-10 business days.\n")
    return (f"Your reservation {reservation.code} is cancelled",
            f"Hello {reservation.guest_name},\n\nYour reservation {reservation.code} for {product} on "
            f"{reservation.date} is cancelled. We are refunding {refund}; it usually reaches your account "
            "within 5-10 business days.\n")


def guest_email_enqueue(*, reservation: Reservation, kind: GuestEmail, **context: Any) -> None:
    """Inside the transaction of the change the e-mail tells about."""
    subject, body = _message(reservation, kind, context)
    outbox_enqueue(topic=TOPIC, dedup_key=f"{TOPIC}:{kind}:{reservation.id}",
                   payload={"to": reservation.guest_email, "reservation_id": str(reservation.id), "kind": str(kind),
                            "subject": subject, "body": body})
