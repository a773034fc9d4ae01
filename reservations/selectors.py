from __future__ import annotations

import functools
import uuid
from collections.abc import Callable

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from common.compiled import CompiledCount, CompiledQuery
from common.exceptions import NotFound
from reservations.models import Reservation, ReservationEvent, ReservationStatus, SupplierStatus

# The reads of the customer's own answers (GET one, the list) are the hottest of the API: they
# run as queries the ORM compiled once (common.compiled, issue "performance").
_PK = Reservation._meta.pk
_USER = Reservation._meta.get_field("user")
_STATUS = Reservation._meta.get_field("status")
_NEWEST_FIRST = ("-created_at", "-id")
_OWN = CompiledQuery(lambda pk, user: Reservation.objects.filter(pk=pk, user_id=user), pk=_PK, user=_USER)


def _own(user: int, status: str | None = None) -> QuerySet[Reservation]:
    """The customer's list, newest first (the index reservation_user_newest reads it in order)."""
    own = Reservation.objects.filter(user_id=user)
    return (own if status is None else own.filter(status=status)).order_by(*_NEWEST_FIRST)


_OWN_COUNT = CompiledCount(_own, group_by="user_id", user=_USER)
_OWN_COUNT_IN_STATUS = CompiledCount(_own, group_by="user_id", user=_USER, status=_STATUS)


@functools.cache
def _own_payments_with_reservation() -> CompiledQuery:
    """The payments of one of the customer's reservations, each with the reservation (a join):
    the reservation and its payments in one query when it has some."""
    reservation_fk = Reservation._meta.get_field("payments").field
    return CompiledQuery(
        lambda pk, user: reservation_fk.model._default_manager.filter(
            **{reservation_fk.attname: pk, f"{reservation_fk.name}__user_id": user}).select_related(
            reservation_fk.name),
        pk=reservation_fk, user=_USER)


def _own_with_payments(*, pk: uuid.UUID | str, user: int) -> Reservation | None:
    """The customer's reservation with its payments recorded (payments_loaded): one query when
    it has payments (a client polling GET after paying, the hottest read), two when it has none
    (the join finds nothing; the reservation alone tells whether it exists)."""
    reservation_fk = Reservation._meta.get_field("payments").field
    payments = _own_payments_with_reservation().execute(pk=pk, user=user)
    if not payments:
        found = _OWN.execute(pk=pk, user=user)
        if found:
            found[0].payments_loaded([])
        return found[0] if found else None
    reservation = reservation_fk.get_cached_value(payments[0])  # the join built one per row: keep the first
    for payment in payments:
        reservation_fk.set_cached_value(payment, reservation)
    reservation.payments_loaded(payments)
    return reservation


class OwnPages:
    """How a page of the customer's list is read: `shape` turns the list's queryset into the one
    to read (a `values_list` of what the answer needs: reservations.api.serializers), `finish`
    turns its rows into the page. Compiled once for the list and once for the list in one
    status; the filter and the order stay here, with the count's."""

    def __init__(self, *, shape: Callable[[QuerySet], QuerySet], finish: Callable[[list], list]) -> None:
        self._all = CompiledQuery(lambda user: shape(_own(user)), user=_USER)
        self._in_status = CompiledQuery(lambda user, status: shape(_own(user, status)), user=_USER, status=_STATUS)
        self._finish = finish

    def read(self, window: slice, *, user: int, status: str | None) -> list:
        if status is None:
            return self._finish(self._all.execute(window=window, user=user))
        return self._finish(self._in_status.execute(window=window, user=user, status=status))


class OwnReservations:
    """A customer's reservations, newest first, perhaps in one status, as Django's Paginator
    reads them (`count()` and a slice), each page read as `pages` says."""

    def __init__(self, *, user: AbstractBaseUser, status: str | None, pages: OwnPages) -> None:
        self._user, self._status, self._pages = user.pk, status, pages

    def count(self) -> int:
        if self._status is None:
            return _OWN_COUNT.execute(user=self._user)
        return _OWN_COUNT_IN_STATUS.execute(user=self._user, status=self._status)

    def __getitem__(self, window: slice) -> list:
        if window.stop <= window.start:
            return []
        return self._pages.read(window, user=self._user, status=self._status)


def reservation_list_for_user(*, user: AbstractBaseUser, pages: OwnPages, status: str | None = None
                              ) -> OwnReservations:
    return OwnReservations(user=user, status=status, pages=pages)


def reservation_get_for_user(*, user: AbstractBaseUser, reservation_id: uuid.UUID | str,
                             with_payments: bool = False) -> Reservation:
    """Another customer's reservation is indistinguishable from a missing one (A3: 404).
    `with_payments`: for an answer with its body (the latest payment), read in the same call."""
    try:
        if with_payments:
            found = _own_with_payments(pk=reservation_id, user=user.pk)
        else:
            found = next(iter(_OWN.execute(pk=reservation_id, user=user.pk)), None)
    except (ValidationError, ValueError) as exc:  # not a UUID
        raise NotFound("Reservation not found.") from exc
    if found is None:
        raise NotFound("Reservation not found.")
    return found


def reservation_timeline(*, reservation: Reservation) -> QuerySet[ReservationEvent]:
    return reservation.events.order_by("created_at", "id")


def reservations_on_request(queryset: QuerySet[Reservation] | None = None) -> QuerySet[Reservation]:
    """The ON_REQUEST work queue (D1): paid, booked internally, the supplier has not confirmed."""
    base = Reservation.objects.all() if queryset is None else queryset
    return base.filter(status=ReservationStatus.CONFIRMED_INTERNAL, supplier_status=SupplierStatus.ON_REQUEST)


def reservation_on_request_count() -> int:
    return reservations_on_request().count()
