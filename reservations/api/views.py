"""One view per operation; views parse, call a service or selector, serialize."""

from __future__ import annotations

from django.utils import translation
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from common.exceptions import ProductUnavailable, SoldOut, TooManyUnpaidHolds
from common.idempotency import idempotency_store_with_effect, idempotent
from common.throttling import ReservationCreateThrottle
from reservations import selectors, services
from reservations.api.serializers import (
    LISTED_BODIES,
    ReservationCreateInputSerializer,
    ReservationEventOutputSerializer,
    ReservationOutputSerializer,
    reservation_body,
)
from reservations.models import ReservationStatus


class ReservationListCreateApi(ListAPIView):
    serializer_class = ReservationOutputSerializer
    error_responses = {"POST": (SoldOut, TooManyUnpaidHolds, ProductUnavailable)}

    def get_throttles(self) -> list:
        throttles = super().get_throttles()
        if self.request.method == "POST":
            throttles.append(ReservationCreateThrottle())
        return throttles

    def get_queryset(self):
        status_filter = self.request.query_params.get("status")
        if status_filter and status_filter not in ReservationStatus.values:
            raise ValidationError({"status": [f"Must be one of {', '.join(ReservationStatus.values)}."]})
        return selectors.reservation_list_for_user(user=self.request.user, status=status_filter, pages=LISTED_BODIES)

    @extend_schema(summary="List your reservations",
                   description="Your own reservations, newest first, 20 a page.",
                   parameters=[OpenApiParameter("status", str, enum=ReservationStatus.values,
                                                description="Only reservations in this status.")])
    def get(self, request: Request, *args, **kwargs) -> Response:
        # ListAPIView.list, its page read as the bodies reservation_body writes (LISTED_BODIES;
        # the serializer_class above describes them in the schema).
        return self.get_paginated_response(self.paginate_queryset(self.get_queryset()))

    @extend_schema(
        summary="Reserve",
        description="Holds `quantity` places of a product on a date (today or later, within the product's "
                    "`booking_horizon_days`) for `expires_at`; pay before then. The server computes the amount. "
                    "A customer holds a limited number of unpaid reservations at once (409 "
                    "`too_many_unpaid_holds`: pay or cancel one). The guest's e-mails are in the language "
                    "`Accept-Language` asks for (English or Spanish).",
        request=ReservationCreateInputSerializer, responses={201: ReservationOutputSerializer},
        examples=[OpenApiExample("Two places", request_only=True, value={
            "product": "0b8e2a3c-5d4f-4e6a-9b7c-1d2e3f4a5b6c", "date": "2026-12-24", "quantity": 2,
            "guest_name": "Ada Lovelace", "guest_email": "ada@example.com"})])
    @idempotent(required=False)
    def post(self, request: Request) -> Response:
        data = ReservationCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        reservation = services.reservation_create(
            user=request.user, **data.validated_data,
            # The guest's language for their e-mails: en or es (settings.LANGUAGES), else en.
            locale=translation.get_language_from_request(request),
            # B11: a keyed request's answer is stored in the transaction that creates the reservation.
            on_committing=lambda created: idempotency_store_with_effect(
                Response(reservation_body(created), status=status.HTTP_201_CREATED)))
        return Response(reservation_body(reservation), status=status.HTTP_201_CREATED)


class ReservationDetailApi(APIView):
    @extend_schema(summary="Get a reservation", description="One of your reservations, with its latest payment.",
                   responses=ReservationOutputSerializer)
    def get(self, request: Request, reservation_id: str) -> Response:
        reservation = selectors.reservation_get_for_user(user=request.user, reservation_id=reservation_id,
                                                         with_payments=True)
        return Response(reservation_body(reservation))


class ReservationEventsApi(APIView):
    @extend_schema(summary="A reservation's timeline",
                   description="Every change of the reservation, oldest first: who (`actor`: customer, system, "
                               "stripe, supplier or staff:<username>), from and to which status, and why.",
                   responses=ReservationEventOutputSerializer(many=True))
    def get(self, request: Request, reservation_id: str) -> Response:
        reservation = selectors.reservation_get_for_user(user=request.user, reservation_id=reservation_id)
        events = selectors.reservation_timeline(reservation=reservation)
        return Response(ReservationEventOutputSerializer(events, many=True).data)
