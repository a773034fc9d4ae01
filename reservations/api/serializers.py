from __future__ import annotations

import datetime as dt

from django.utils import timezone
from rest_framework import serializers

from payments.models import Payment, PaymentStatus
from reservations.models import Reservation, ReservationEvent
from suppliers.models import Product


class ReservationCreateInputSerializer(serializers.Serializer):
    product = serializers.PrimaryKeyRelatedField(queryset=Product.objects.select_related("supplier"))
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


class ReservationOutputSerializer(serializers.ModelSerializer):
    product = serializers.PrimaryKeyRelatedField(read_only=True)
    payment = serializers.SerializerMethodField()

    class Meta:
        model = Reservation
        fields = ["id", "code", "status", "supplier_status", "product", "date", "quantity", "amount", "currency",
                  "guest_name", "guest_email", "supplier_reference", "expires_at", "version", "created_at",
                  "updated_at", "payment"]

    def get_payment(self, reservation: Reservation) -> dict | None:
        payment = reservation.payments.order_by("-created_at").first()
        return PaymentOutputSerializer(payment).data if payment else None


class ReservationEventOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = ReservationEvent
        fields = ["id", "from_status", "to_status", "actor", "reason", "data", "created_at"]
