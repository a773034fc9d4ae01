from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, extend_schema_serializer
from rest_framework import serializers

from common.compiled import CompiledQuery
from common.text_columns import utc_datetime_text, utc_iso_text, uuid_text, values_with_text
from reservations.models import Reservation, ReservationEvent
from reservations.selectors import OwnPages

if TYPE_CHECKING:
    from suppliers.models import Product

# The catalog's product model, reached through the reservation's foreign key (the catalog is
# in an app above this one: it is never imported here).
_PRODUCT = Reservation._meta.get_field("product").related_model

# Fields that apps above this one add to the reservation body (payments adds "payment"),
# registered from their AppConfig.ready(): name -> factory of the serializer field (the schema),
# name -> the function that renders it for one reservation (the answers, reservation_body), and
# name -> the function that renders it for a page of the list at once (reservation_list_bodies).
_extra_output_fields: dict[str, Callable[[], serializers.Field]] = {}
_extra_renderers: dict[str, Callable[[Reservation], Any]] = {}
_extra_list_renderers: dict[str, Callable[[list[str]], list[Any]]] = {}


def register_reservation_output_field(name: str, factory: Callable[[], serializers.Field],
                                      render: Callable[[Reservation], Any],
                                      render_listed: Callable[[list[str]], list[Any]]) -> None:
    """`render_listed(ids)`: the field's value for each of the listed reservations whose ids
    (as the bodies write them) are given, in their order; in one query whatever their number."""
    _extra_output_fields[name] = factory
    _extra_renderers[name] = render
    _extra_list_renderers[name] = render_listed


# Every create reads its product with the supplier (both must be active): compiled once.
_PRODUCT_WITH_SUPPLIER = CompiledQuery(lambda pk: _PRODUCT.objects.select_related("supplier").filter(pk=pk),
                                       pk=_PRODUCT._meta.pk)


class _ProductField(serializers.PrimaryKeyRelatedField):
    """DRF's PrimaryKeyRelatedField (its errors, its schema), the lookup compiled once."""

    def to_internal_value(self, data: Any) -> Product:
        if isinstance(data, bool):
            self.fail("incorrect_type", data_type=type(data).__name__)
        try:
            found = _PRODUCT_WITH_SUPPLIER.execute(pk=data)  # not a UUID: Django's ValidationError, as .get()
        except (TypeError, ValueError):
            self.fail("incorrect_type", data_type=type(data).__name__)
        if not found:
            self.fail("does_not_exist", pk_value=data)
        return found[0]


class ReservationCreateInputSerializer(serializers.Serializer):
    product = _ProductField(queryset=_PRODUCT.objects.select_related("supplier"))
    date = serializers.DateField()
    quantity = serializers.IntegerField(min_value=1, max_value=20)
    guest_name = serializers.CharField(min_length=1, max_length=200)
    guest_email = serializers.EmailField(max_length=254)

    def validate_date(self, value: dt.date) -> dt.date:
        if value < timezone.localdate():
            raise serializers.ValidationError("The date must be today or later.")
        return value

    def validate_product(self, value: Product) -> Product:
        if not value.active:
            raise serializers.ValidationError("This product is not available.")
        return value


@extend_schema_serializer(examples=[OpenApiExample("Paid, being booked", response_only=True, value={
    "id": "7d1f5a0e-8c2b-4b7e-9f3a-2e6d4c1b0a99", "code": "R-7KQ2M9", "status": "PAID", "supplier_status": "PENDING",
    "product": "0b8e2a3c-5d4f-4e6a-9b7c-1d2e3f4a5b6c", "date": "2026-12-24", "quantity": 2, "amount": 25000,
    "currency": "eur", "guest_name": "Ada Lovelace", "guest_email": "ada@example.com", "locale": "en",
    "supplier_reference": "", "expires_at": None, "version": 3, "created_at": "2026-11-29T17:00:00Z",
    "updated_at": "2026-11-29T17:01:02Z",
    "payment": {"id": "4c2e9b7a-1f3d-4a6b-8e5c-0d9f2a7b6c31", "status": "SUCCEEDED", "amount": 25000,
                "currency": "eur", "stripe_payment_intent_id": "pi_3QexampleA1b2C3d4", "client_secret": None,
                "next_action": None, "refunded_amount": 0, "failure_code": "", "failure_message": ""}})])
class ReservationOutputSerializer(serializers.ModelSerializer):
    """The reservation body (api.md), with the fields the apps above add (`payment`)."""

    product = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta:
        model = Reservation
        fields = ["id", "code", "status", "supplier_status", "product", "date", "quantity", "amount", "currency",
                  "guest_name", "guest_email", "locale", "supplier_reference", "expires_at", "version", "created_at",
                  "updated_at"]

    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        for name, factory in _extra_output_fields.items():
            fields[name] = factory()
        return fields


_DATETIME = serializers.DateTimeField()


def api_datetime(value: dt.datetime | None, zone: dt.tzinfo | None = None) -> str | None:
    """A datetime as every answer writes it: DRF's DateTimeField (ISO 8601 in the current time
    zone, UTC as "Z"), written out for the aware datetimes the models hold. DRF's goes through
    its settings and timezone checks for each value, three per body: a tenth of a list's time.
    `zone`: the current time zone, when the caller already has it."""
    if value is None:
        return None
    if timezone.is_naive(value):
        return _DATETIME.to_representation(value)
    text = value.astimezone(zone or timezone.get_current_timezone()).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def reservation_body(reservation: Reservation) -> dict[str, Any]:
    """`ReservationOutputSerializer(reservation).data`, written out: the reservation body is on
    every hot answer (GET, list, create, pay), and a ModelSerializer builds its fields anew for
    each instance, which cost about a third of a GET's Python time (bench/profile_api.py). The
    serializer stays the schema's source, and tests/api/test_reservation_body.py holds the two
    equal for every state a reservation and its payment can be in."""
    zone = timezone.get_current_timezone()
    body = {
        "id": str(reservation.id), "code": reservation.code, "status": reservation.status,
        "supplier_status": reservation.supplier_status, "product": str(reservation.product_id),
        "date": reservation.date.isoformat(), "quantity": reservation.quantity, "amount": reservation.amount,
        "currency": reservation.currency, "guest_name": reservation.guest_name,
        "guest_email": reservation.guest_email, "locale": reservation.locale,
        "supplier_reference": reservation.supplier_reference, "expires_at": api_datetime(reservation.expires_at, zone),
        "version": reservation.version, "created_at": api_datetime(reservation.created_at, zone),
        "updated_at": api_datetime(reservation.updated_at, zone),
    }
    for name, render in _extra_renderers.items():
        body[name] = render(reservation)
    return body


# The list's page, read as the body's columns in the database's own text (common.text_columns):
# no model instance, UUID or datetime object per row, which were a third of a 20-row list's
# Python time. The columns are the body's keys, in order; _LISTED_UUIDS and _LISTED_DATETIMES
# name those written out from text.
_LISTED_COLUMNS = ("id", "code", "status", "supplier_status", "product", "date", "quantity", "amount", "currency",
                   "guest_name", "guest_email", "locale", "supplier_reference", "expires_at", "version",
                   "created_at", "updated_at")
_LISTED_UUIDS = ("id", "product")
_LISTED_DATETIMES = ("expires_at", "created_at", "updated_at")
_LISTED_AS_TEXT = {"id": "id", "product": "product_id", "date": "date", "expires_at": "expires_at",
                   "created_at": "created_at", "updated_at": "updated_at"}
_UTC_ZONES = (dt.UTC, ZoneInfo("UTC"))


def _listed_page(own: QuerySet[Reservation]) -> QuerySet:
    return values_with_text(own, _LISTED_COLUMNS, _LISTED_AS_TEXT)


def _listed_bodies(rows: list[tuple]) -> list[dict[str, Any]]:
    zone = timezone.get_current_timezone()
    bodies = [dict(zip(_LISTED_COLUMNS, row, strict=True)) for row in rows]
    for body in bodies:
        for name in _LISTED_UUIDS:
            body[name] = uuid_text(body[name])
        for name in _LISTED_DATETIMES:
            # Stored in UTC: in UTC (the API's zone, settings.TIME_ZONE) the text is written out as
            # it is; in another zone it is converted as api_datetime does.
            body[name] = (utc_iso_text(body[name]) if zone in _UTC_ZONES
                          else api_datetime(utc_datetime_text(body[name]), zone))
    ids = [body["id"] for body in bodies]
    for name, render_listed in _extra_list_renderers.items():
        for body, value in zip(bodies, render_listed(ids), strict=True):
            body[name] = value
    return bodies


# A page of the list as its answer's bodies (the list view): `reservation_body` of each of
# them, equal to it (tests/reservations/test_reservation_body.py) and read in two queries.
LISTED_BODIES = OwnPages(shape=_listed_page, finish=_listed_bodies)


class ReservationEventOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = ReservationEvent
        fields = ["id", "from_status", "to_status", "actor", "reason", "data", "created_at"]
