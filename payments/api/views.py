"""POST /api/v1/reservations/{id}/pay/ and …/cancel/ (api.md "Pay", "Reservations")."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from common.errors import exception_to_problem
from common.exceptions import InvalidState, VersionConflict
from common.idempotency import HEADER, idempotency_store_with_effect, idempotent
from payments.api.serializers import CancelInputSerializer, PayInputSerializer
from payments.exceptions import (
    CancellationClosed,
    PaymentDeclined,
    PaymentInProgress,
    PaymentMethodRejected,
    PaymentProviderUnavailable,
)
from payments.services import PayOutcome, reservation_cancel, reservation_pay
from reservations.api.serializers import ReservationOutputSerializer, reservation_body
from reservations.selectors import reservation_get_for_user


class ReservationPayApi(APIView):
    error_responses = {"POST": (PaymentMethodRejected, PaymentDeclined, InvalidState, PaymentInProgress,
                                PaymentProviderUnavailable)}

    @extend_schema(
        summary="Pay for a reservation",
        description="Charges the reservation's amount to a Stripe PaymentMethod: one PaymentIntent per attempt, "
                    "created and confirmed at once. A reservation is charged at most once, whatever is retried. "
                    "Without `return_url` only methods that need no redirect are offered. A declined card (402) "
                    "leaves the reservation payable: pay again with a new Idempotency-Key. On 503, retry with the "
                    "same key; the answer, 503 included, comes within four times the Stripe timeout.",
        request=PayInputSerializer,
        responses={200: OpenApiResponse(ReservationOutputSerializer, description="Paid: `status` PAID, "
                                        "`payment.status` SUCCEEDED; the supplier booking follows."),
                   202: OpenApiResponse(ReservationOutputSerializer, description="Stripe has not finished: "
                                        "`payment.status` PROCESSING, or REQUIRES_ACTION with `client_secret` and "
                                        "`next_action` (e.g. a redirect); Stripe's webhook completes it.")},
        examples=[OpenApiExample("Card", value={"payment_method": "pm_card_visa"}, request_only=True),
                  OpenApiExample("Redirect-based method", request_only=True,
                                 value={"payment_method": "pm_card_visa",
                                        "return_url": "https://shop.example/back"})],
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
    error_responses = {"POST": (InvalidState, CancellationClosed, VersionConflict)}

    @extend_schema(
        summary="Cancel a reservation",
        description="Unpaid: the hold is released at once (200, CANCELLED). Paid: the cancellation is recorded and "
                    "the refund and the supplier cancellation follow: 200 once refunded, 202 while Stripe is "
                    "unavailable (it always completes). After the product's cancellation cutoff: 409 "
                    "`cancellation_closed`. Send `version` to cancel only the version you have seen.",
        request=CancelInputSerializer,
        responses={200: OpenApiResponse(ReservationOutputSerializer, description="Cancelled (and refunded, if paid)."),
                   202: OpenApiResponse(ReservationOutputSerializer, description="Cancelled; the refund is "
                                        "still on its way.")},
        examples=[OpenApiExample("Cancel version 1", value={"version": 1, "reason": "plans changed"},
                                 request_only=True)],
    )
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
