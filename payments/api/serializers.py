from __future__ import annotations

from django.core.validators import URLValidator
from rest_framework import serializers

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


class PaymentOutputSerializer(serializers.ModelSerializer):
    client_secret = serializers.SerializerMethodField()
    next_action = serializers.SerializerMethodField()

    class Meta:
        model = Payment
        fields = ["id", "status", "amount", "currency", "stripe_payment_intent_id", "client_secret", "next_action",
                  "refunded_amount", "failure_code", "failure_message"]

    def get_client_secret(self, payment: Payment) -> str | None:
        # Only useful (and only shown) while the customer must act, e.g. 3-D Secure.
        return payment.client_secret or None if payment.status == PaymentStatus.REQUIRES_ACTION else None

    def get_next_action(self, payment: Payment) -> dict | None:
        # Stripe's next action (e.g. a redirect to the bank with the customer's return_url).
        return payment.next_action if payment.status == PaymentStatus.REQUIRES_ACTION else None
