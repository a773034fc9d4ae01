from __future__ import annotations

from django.core.validators import URLValidator
from rest_framework import serializers


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
