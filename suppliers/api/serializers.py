from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers
from rest_framework.validators import UniqueTogetherValidator

from outbox.policy import call_budget_error
from suppliers.models import Product, Supplier


class SupplierSerializer(serializers.ModelSerializer):
    api_key = serializers.CharField(write_only=True, required=False, allow_blank=True, max_length=500,
                                    style={"input_type": "password"})

    class Meta:
        model = Supplier
        fields = ["id", "name", "slug", "base_url", "api_key", "connect_timeout_seconds", "timeout_seconds",
                  "active", "version", "created_at", "updated_at"]
        read_only_fields = ["id", "version", "created_at", "updated_at"]
        extra_kwargs = {"timeout_seconds": {"max_value": 120}, "connect_timeout_seconds": {"max_value": 30}}

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # A PATCH may change one timeout only: the call budget applies to the pair.
        def current(name: str) -> float:
            if name in attrs:
                return attrs[name]
            if self.instance is not None:
                return getattr(self.instance, name)
            return Supplier._meta.get_field(name).get_default()

        connect, read = current("connect_timeout_seconds"), current("timeout_seconds")
        error = call_budget_error(connect_seconds=connect, read_seconds=read)
        if error:
            raise serializers.ValidationError({"timeout_seconds": error}, code="timeout_exceeds_lease")
        return attrs


class ProductSerializer(serializers.ModelSerializer):
    supplier = serializers.PrimaryKeyRelatedField(queryset=Supplier.objects.all())
    currency = serializers.RegexField(r"^[a-z]{3}$", max_length=3,
                                      error_messages={"invalid": "Lower-case ISO-4217 code, e.g. eur."})

    class Meta:
        model = Product
        fields = ["id", "supplier", "code", "name", "unit_amount", "currency", "daily_capacity",
                  "cancellation_cutoff_hours", "booking_horizon_days", "active", "version", "created_at", "updated_at"]
        read_only_fields = ["id", "version", "created_at", "updated_at"]
        extra_kwargs = {"unit_amount": {"min_value": 1, "max_value": 100_000_000},
                        "daily_capacity": {"max_value": 1_000_000},
                        "cancellation_cutoff_hours": {"max_value": 24 * 365}}
        validators = [UniqueTogetherValidator(queryset=Product.objects.all(), fields=["supplier", "code"])]


class VersionSerializer(serializers.Serializer):
    version = serializers.IntegerField(required=False, min_value=1)


_VERSION_HELP = "The version you have seen: the change applies only if it is still current (else 409)."


@extend_schema_serializer(component_name="Supplier")  # shown as PatchedSupplierRequest
class SupplierPatchSchemaSerializer(SupplierSerializer):
    """The PATCH body as the schema shows it: the fields, and the optional `version` precondition
    the view reads apart (VersionSerializer). Only for the schema: never validates a request."""

    version = serializers.IntegerField(required=False, min_value=1, help_text=_VERSION_HELP)


@extend_schema_serializer(component_name="Product")  # shown as PatchedProductRequest
class ProductPatchSchemaSerializer(ProductSerializer):
    """As SupplierPatchSchemaSerializer, for products."""

    version = serializers.IntegerField(required=False, min_value=1, help_text=_VERSION_HELP)
