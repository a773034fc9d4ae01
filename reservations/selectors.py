from __future__ import annotations

import uuid

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from common.exceptions import NotFound
from reservations.models import Reservation, ReservationEvent, ReservationStatus, SupplierStatus


def reservation_list_for_user(*, user: AbstractBaseUser, status: str | None = None) -> QuerySet[Reservation]:
    # The newest payment of each row comes from one prefetch query, whatever the page size.
    qs = Reservation.objects.filter(user=user).prefetch_related("payments").order_by("-created_at", "-id")
    if status:
        qs = qs.filter(status=status)
    return qs


def reservation_get_for_user(*, user: AbstractBaseUser, reservation_id: uuid.UUID | str) -> Reservation:
    """Another customer's reservation is indistinguishable from a missing one (A3: 404)."""
    try:
        # Its payments are read when the body asks (latest_payment): one plain query, cheaper
        # than prefetch_related's machinery for a single row, and none for the timeline.
        return Reservation.objects.get(pk=reservation_id, user=user)
    except (Reservation.DoesNotExist, ValueError) as exc:
        raise NotFound("Reservation not found.") from exc


def reservation_timeline(*, reservation: Reservation) -> QuerySet[ReservationEvent]:
    return reservation.events.order_by("created_at", "id")


def reservations_on_request(queryset: QuerySet[Reservation] | None = None) -> QuerySet[Reservation]:
    """The ON_REQUEST work queue (D1): paid, booked internally, the supplier has not confirmed."""
    base = Reservation.objects.all() if queryset is None else queryset
    return base.filter(status=ReservationStatus.CONFIRMED_INTERNAL, supplier_status=SupplierStatus.ON_REQUEST)


def reservation_on_request_count() -> int:
    return reservations_on_request().count()
