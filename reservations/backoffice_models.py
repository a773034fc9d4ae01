"""Back-office-only models (D1, D5). Proxies: no table of their own; they give the admin a
list of their own and carry the custom permissions the staff actions check.

Imported by reservations.admin (admin autodiscovery runs at every django.setup()), so the
proxy is registered whenever migrations or the admin run."""

from __future__ import annotations

from reservations.models import Reservation


class OnRequestReservation(Reservation):
    """The ON_REQUEST work queue: paid, booked internally, supplier not confirmed."""

    class Meta:
        proxy = True
        app_label = "reservations"
        verbose_name = "on-request reservation"
        verbose_name_plural = "on-request queue"
        permissions = [
            ("resolve_on_request", "Can confirm manually and retry the supplier booking"),
            ("cancel_refund_reservation", "Can cancel and refund a reservation"),
        ]
