"""POST /api/v1/reservations/{id}/pay/ (api.md "Pay")."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from common.idempotency import HEADER, idempotent
from payments.api.serializers import PayInputSerializer
from payments.services import reservation_pay
from reservations.api.serializers import ReservationOutputSerializer
from reservations.selectors import reservation_get_for_user


class ReservationPayApi(APIView):
    @extend_schema(
        request=PayInputSerializer,
        parameters=[OpenApiParameter(HEADER, str, OpenApiParameter.HEADER, required=True,
                                     description="1-255 characters; a retry must reuse it.")],
        responses={200: ReservationOutputSerializer, 202: ReservationOutputSerializer,
                   402: OpenApiResponse(description="card_declined or Stripe's decline code"),
                   409: OpenApiResponse(description="invalid_state, payment_in_progress, idempotency_key_*"),
                   503: OpenApiResponse(description="payment_provider_unavailable (Retry-After)")},
    )
    @idempotent(required=True)
    def post(self, request: Request, reservation_id: str) -> Response:
        data = PayInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        reservation = reservation_get_for_user(user=request.user, reservation_id=reservation_id)
        outcome = reservation_pay(reservation_id=reservation.id, payment_method=data.validated_data["payment_method"],
                                  attempt_key=request.headers[HEADER])
        return Response(ReservationOutputSerializer(outcome.reservation).data, status=outcome.http_status)
