"""POST /api/v1/reservations/{id}/pay/ and …/cancel/ (api.md "Pay", "Reservations")."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from common.errors import exception_to_problem
from common.idempotency import HEADER, idempotency_store_with_effect, idempotent
from payments.api.serializers import CancelInputSerializer, PayInputSerializer
from payments.exceptions import PaymentDeclined
from payments.services import PayOutcome, reservation_cancel, reservation_pay
from reservations.api.serializers import ReservationOutputSerializer, reservation_body
from reservations.selectors import reservation_get_for_user


class ReservationPayApi(APIView):
    @extend_schema(
        request=PayInputSerializer,
        parameters=[OpenApiParameter(HEADER, str, OpenApiParameter.HEADER, required=True,
                                     description="1-255 characters; a retry must reuse it.")],
        responses={200: ReservationOutputSerializer, 202: ReservationOutputSerializer,
                   400: OpenApiResponse(description="validation_error (e.g. an unusable payment_method)"),
                   402: OpenApiResponse(description="card_declined or Stripe's decline code"),
                   409: OpenApiResponse(description="invalid_state, payment_in_progress, idempotency_key_*"),
                   503: OpenApiResponse(description="payment_provider_unavailable (Retry-After)")},
    )
    @idempotent(required=True)
    def post(self, request: Request, reservation_id: str) -> Response:
        data = PayInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        written: list = [None, None]  # (reservation, its body)

        def body(outcome: PayOutcome) -> dict:
            # Written once: stored as the idempotent answer, then returned (again if a deadlock
            # retry applied the outcome to another copy of the reservation).
            if written[0] is not outcome.reservation:
                written[:] = [outcome.reservation, reservation_body(outcome.reservation)]
            return written[1]

        def store_answer(outcome: PayOutcome) -> None:
            # B11: the answer is stored in the transaction that commits the outcome.
            if outcome.http_status == 402:
                payment = outcome.payment
                idempotency_store_with_effect(exception_to_problem(
                    PaymentDeclined(payment.failure_message or None, code=payment.failure_code or "card_declined"),
                    request))
            else:
                idempotency_store_with_effect(Response(body(outcome), status=outcome.http_status))

        # The reservation is looked up (and its owner checked: 404 for anyone else's) under its
        # row lock in the pay's first transaction.
        outcome = reservation_pay(reservation_id=reservation_id, payer=request.user,
                                  payment_method=data.validated_data["payment_method"],
                                  return_url=data.validated_data.get("return_url", ""),
                                  attempt_key=request.headers[HEADER], respond=store_answer)
        return Response(body(outcome), status=outcome.http_status)


class ReservationCancelApi(APIView):
    @extend_schema(request=CancelInputSerializer,
                   responses={200: ReservationOutputSerializer, 202: ReservationOutputSerializer,
                              409: OpenApiResponse(description="invalid_state, cancellation_closed, "
                                                               "version_conflict")})
    def post(self, request: Request, reservation_id: str) -> Response:
        data = CancelInputSerializer(data=request.data or {})
        data.is_valid(raise_exception=True)
        reservation = reservation_get_for_user(user=request.user, reservation_id=reservation_id)
        outcome = reservation_cancel(
            reservation_id=reservation.id, actor="customer",
            reason=data.validated_data.get("reason") or "cancelled by customer",
            expected_version=data.validated_data.get("version"),
        )
        return Response(reservation_body(outcome.reservation), status=200 if outcome.done else 202)
