from __future__ import annotations

from django.db.models import QuerySet

from payments.models import Payment, StripeEvent, StripeEventStatus
from reservations.models import Reservation


def payment_latest_for_reservation(*, reservation: Reservation) -> Payment | None:
    return reservation.payments.order_by("-created_at").first()


def stripe_events_failed() -> QuerySet[StripeEvent]:
    return StripeEvent.objects.filter(status=StripeEventStatus.FAILED).order_by("received_at")
