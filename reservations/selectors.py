from __future__ import annotations

import uuid

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from common.exceptions import NotFound
from reservations.models import Reservation, ReservationEvent


def reservation_list_for_user(*, user: AbstractBaseUser, status: str | None = None) -> QuerySet[Reservation]:
    qs = Reservation.objects.filter(user=user).select_related("product").order_by("-created_at", "-id")
    if status:
        qs = qs.filter(status=status)
    return qs


def reservation_get_for_user(*, user: AbstractBaseUser, reservation_id: uuid.UUID | str) -> Reservation:
    """Another customer's reservation is indistinguishable from a missing one (A3: 404)."""
    try:
        return Reservation.objects.select_related("product").get(pk=reservation_id, user=user)
    except (Reservation.DoesNotExist, ValueError) as exc:
        raise NotFound("Reservation not found.") from exc


def reservation_timeline(*, reservation: Reservation) -> QuerySet[ReservationEvent]:
    return reservation.events.order_by("created_at", "id")
