from __future__ import annotations

from rest_framework import serializers


class PayInputSerializer(serializers.Serializer):
    payment_method = serializers.RegexField(r"^(pm|card|src)_[A-Za-z0-9_]+$", max_length=255,
                                            help_text="A Stripe PaymentMethod id, e.g. pm_card_visa.")
