"""One view per operation; views parse, call a service or selector, serialize."""

from __future__ import annotations

from django.utils import translation
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from common.idempotency import idempotency_store_with_effect, idempotent
from common.throttling import ReservationCreateThrottle
from reservations import selectors, services
from reservations.api.serializers import (
    ReservationCreateInputSerializer,
    ReservationEventOutputSerializer,
    ReservationOutputSerializer,
    reservation_body,
)
from reservations.models import ReservationStatus


class ReservationListCreateApi(ListAPIView):
    serializer_class = ReservationOutputSerializer

    def get_throttles(self) -> list:
        throttles = super().get_throttles()
        if self.request.method == "POST":
            throttles.append(ReservationCreateThrottle())
        return throttles

    def get_queryset(self):
        status_filter = self.request.query_params.get("status")
        if status_filter and status_filter not in ReservationStatus.values:
            raise ValidationError({"status": [f"Must be one of {', '.join(ReservationStatus.values)}."]})
        return selectors.reservation_list_for_user(user=self.request.user, status=status_filter)

    @extend_schema(parameters=[OpenApiParameter("status", str, enum=ReservationStatus.values)])
    def get(self, request: Request, *args, **kwargs) -> Response:
        # ListAPIView.list, with the bodies written by reservation_body (the serializer_class
        # above describes them in the schema).
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response([reservation_body(reservation) for reservation in page])

    @extend_schema(request=ReservationCreateInputSerializer, responses={201: ReservationOutputSerializer},
                   parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)])
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
    @extend_schema(responses=ReservationOutputSerializer)
    def get(self, request: Request, reservation_id: str) -> Response:
        reservation = selectors.reservation_get_for_user(user=request.user, reservation_id=reservation_id)
        return Response(reservation_body(reservation))


class ReservationEventsApi(APIView):
    @extend_schema(responses=ReservationEventOutputSerializer(many=True))
    def get(self, request: Request, reservation_id: str) -> Response:
        reservation = selectors.reservation_get_for_user(user=request.user, reservation_id=reservation_id)
        events = selectors.reservation_timeline(reservation=reservation)
        return Response(ReservationEventOutputSerializer(events, many=True).data)
