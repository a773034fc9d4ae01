"""Back-office-only models (D1, D5, B9). Proxies: no table of their own; they give the admin a
list of their own (the work queues) and carry the custom permissions the staff actions check."""

from __future__ import annotations

from payments.models import Refund
from reservations.models import Reservation


class OnRequestReservation(Reservation):
    """The ON_REQUEST work queue: paid, booked internally, supplier not confirmed."""

    class Meta:
        proxy = True
        verbose_name = "on-request reservation"
        verbose_name_plural = "on-request queue"
        permissions = [
            ("resolve_on_request", "Can confirm manually and retry the supplier booking"),
            ("cancel_refund_reservation", "Can cancel and refund a reservation"),
        ]


class RefundNeedingAttention(Refund):
    """The queue of refunds that failed or were canceled and wait for staff (B9)."""

    class Meta:
        proxy = True
        verbose_name = "refund needing attention"
        verbose_name_plural = "refunds needing attention"
        permissions = [("resolve_refund", "Can retry a failed refund or record one made outside Stripe")]
