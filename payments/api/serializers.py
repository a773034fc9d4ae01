from __future__ import annotations

import json
from collections.abc import Callable

from django.core.validators import URLValidator
from rest_framework import serializers

from common.compiled import CompiledQuery, Many
from common.text_columns import uuid_text, values_with_text
from payments.models import Payment, PaymentStatus


class PayInputSerializer(serializers.Serializer):
    payment_method = serializers.RegexField(r"^(pm|card|src)_[A-Za-z0-9_]+$", max_length=255,
                                            help_text="A Stripe PaymentMethod id, e.g. pm_card_visa.")
    return_url = serializers.URLField(
        required=False, allow_blank=False, max_length=2000, validators=[URLValidator(schemes=["https", "http"])],
        help_text="An https (or http) URL where the customer comes back after a redirect-based payment method. "
                  "Without it, only methods that need no redirect are offered.")


class CancelInputSerializer(serializers.Serializer):
    version = serializers.IntegerField(required=False, min_value=1,
                                       help_text="If given, the cancel applies only to this version.")
    reason = serializers.CharField(required=False, max_length=500, allow_blank=True)


def _shown_while_action_required(payment: Payment) -> tuple[str | None, dict | None]:
    return _while_action_required(payment.status, payment.client_secret, lambda: payment.next_action)


def _while_action_required(status: str, client_secret: str, next_action: Callable[[], dict | None]
                           ) -> tuple[str | None, dict | None]:
    # Only useful (and only shown) while the customer must act, e.g. 3-D Secure: the client
    # secret, and Stripe's next action (e.g. a redirect to the bank with the return_url).
    if status != PaymentStatus.REQUIRES_ACTION:
        return None, None
    return client_secret or None, next_action()


class PaymentOutputSerializer(serializers.ModelSerializer):
    client_secret = serializers.SerializerMethodField()
    next_action = serializers.SerializerMethodField()

    class Meta:
        model = Payment
        fields = ["id", "status", "amount", "currency", "stripe_payment_intent_id", "client_secret", "next_action",
                  "refunded_amount", "failure_code", "failure_message"]

    def get_client_secret(self, payment: Payment) -> str | None:
        return _shown_while_action_required(payment)[0]

    def get_next_action(self, payment: Payment) -> dict | None:
        return _shown_while_action_required(payment)[1]


def payment_body(payment: Payment | None) -> dict | None:
    """`PaymentOutputSerializer(payment).data`, written out (see reservations.api.serializers
    .reservation_body: the same reason, and the same equality test)."""
    if payment is None:
        return None
    client_secret, next_action = _shown_while_action_required(payment)
    return {"id": str(payment.id), "status": payment.status, "amount": payment.amount, "currency": payment.currency,
            "stripe_payment_intent_id": payment.stripe_payment_intent_id, "client_secret": client_secret,
            "next_action": next_action, "refunded_amount": payment.refunded_amount,
            "failure_code": payment.failure_code, "failure_message": payment.failure_message}


# The payments of a list page's reservations, read as the body's columns (ids, next_action and
# the creation time as the database's text: common.text_columns).
_LISTED_COLUMNS = ("id", "status", "amount", "currency", "stripe_payment_intent_id", "client_secret", "next_action",
                   "refunded_amount", "failure_code", "failure_message")
_LISTED_AS_TEXT = {"reservation": "reservation_id", "created": "created_at", "id": "id", "next_action": "next_action"}
_LISTED = CompiledQuery(
    lambda reservations: values_with_text(Payment.objects.filter(reservation_id__in=reservations).order_by(),
                                          ("reservation", "created", *_LISTED_COLUMNS), _LISTED_AS_TEXT),
    reservations=Many(Payment._meta.get_field("reservation")))


def listed_payment_bodies(reservation_ids: list[str]) -> list[dict | None]:
    """`payment_body(reservation.latest_payment)` for each of the listed reservations (ids as the
    bodies write them), in one query. The newest is chosen as latest_payment chooses it: the
    latest creation time, then the greatest id (the text of both orders as their values do:
    fixed-width digits, and SQLite's whole seconds sort before their fractions)."""
    newest: dict[str, tuple[tuple[str, str], list]] = {}
    for reservation_text, created, *columns in _LISTED.execute(reservations=reservation_ids):
        key, reservation = (created, uuid_text(columns[0])), uuid_text(reservation_text)
        if reservation not in newest or key > newest[reservation][0]:
            newest[reservation] = (key, columns)
    return [_listed_body(newest[reservation][1] if reservation in newest else None)
            for reservation in reservation_ids]


def _listed_body(columns: list | None) -> dict | None:
    if columns is None:
        return None
    body = dict(zip(_LISTED_COLUMNS, columns, strict=True))
    body["id"] = uuid_text(body["id"])
    text = body["next_action"]
    body["client_secret"], body["next_action"] = _while_action_required(
        body["status"], body["client_secret"], lambda: None if text is None else json.loads(text))
    return body
