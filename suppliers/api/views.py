from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics
from rest_framework.request import Request

from common.exceptions import VersionConflict
from common.permissions import AdminModelPermissions, CatalogReadOrAdminModelPermissions, may_view, staff_actor
from suppliers import services
from suppliers.api.serializers import (
    ProductPatchSchemaSerializer,
    ProductSerializer,
    SupplierPatchSchemaSerializer,
    SupplierSerializer,
    VersionSerializer,
)
from suppliers.models import Product, Supplier


class _ProductQuerysetMixin:
    """Who may view products as the admin does sees all of them; everyone else, like a
    customer, the ones on sale."""

    request: Request

    def get_queryset(self) -> QuerySet[Product]:
        qs = Product.objects.select_related("supplier").order_by("name", "id")
        return qs if may_view(self.request.user, Product) else qs.filter(active=True, supplier__active=True)


def _actor(request: Request) -> dict:
    return {"actor": staff_actor(request.user), "user": request.user}


class _VersionedUpdateMixin:
    """PATCH goes through the catalog service: conditional on `version` when the client sends it."""

    http_method_names = ["get", "patch", "head", "options"]
    error_responses = {"PATCH": (VersionConflict,)}
    update_service = staticmethod(services.supplier_update)
    instance_kwarg = "supplier"

    def perform_update(self, serializer) -> None:
        version = VersionSerializer(data={k: v for k, v in self.request.data.items() if k == "version"})
        version.is_valid(raise_exception=True)
        self.update_service(**{self.instance_kwarg: serializer.instance}, data=serializer.validated_data,
                            expected_version=version.validated_data.get("version"), **_actor(self.request))


_VERSIONED = ("Send `version` to change only the version you have seen (409 `version_conflict` if it moved on). "
              "Every change is audited.")


@extend_schema_view(
    get=extend_schema(summary="List suppliers", description="Staff with the view or change permission on "
                      "suppliers, as in the admin. `api_key` is never shown."),
    post=extend_schema(summary="Add a supplier", description="Staff with the add permission on suppliers. "
                       "`base_url` must be https and resolve to a public address (unless the host is allowed "
                       "for local use); `api_key` is write-only. Audited."),
)
class SupplierListApi(generics.ListCreateAPIView):
    permission_classes = [AdminModelPermissions]
    serializer_class = SupplierSerializer
    queryset = Supplier.objects.order_by("name", "id")

    def perform_create(self, serializer: SupplierSerializer) -> None:
        serializer.instance = services.supplier_create(**serializer.validated_data, **_actor(self.request))


@extend_schema_view(
    get=extend_schema(summary="Get a supplier", description="Staff with the view or change permission on suppliers."),
    patch=extend_schema(summary="Change a supplier", description="Staff with the change permission on suppliers. "
                        "A new `base_url` must come with the `api_key` re-entered. " + _VERSIONED,
                        request=SupplierPatchSchemaSerializer, responses=SupplierSerializer),
)
class SupplierDetailApi(_VersionedUpdateMixin, generics.RetrieveUpdateAPIView):
    permission_classes = [AdminModelPermissions]
    serializer_class = SupplierSerializer
    queryset = Supplier.objects.all()


@extend_schema_view(
    get=extend_schema(summary="List products", description="Customers see the products on sale; staff who may "
                      "view products (as in the admin) see all of them."),
    post=extend_schema(summary="Add a product", description="Staff with the add permission on products. Money is "
                       "in minor units with a lower-case ISO-4217 currency. Audited."),
)
class ProductListApi(_ProductQuerysetMixin, generics.ListCreateAPIView):
    permission_classes = [CatalogReadOrAdminModelPermissions]
    serializer_class = ProductSerializer

    def perform_create(self, serializer: ProductSerializer) -> None:
        serializer.instance = services.product_create(**serializer.validated_data, **_actor(self.request))


@extend_schema_view(
    get=extend_schema(summary="Get a product", description="Customers may get a product on sale; staff who may "
                      "view products, any product."),
    patch=extend_schema(summary="Change a product", description="Staff with the change permission on products. "
                        + _VERSIONED, request=ProductPatchSchemaSerializer, responses=ProductSerializer),
)
class ProductDetailApi(_ProductQuerysetMixin, _VersionedUpdateMixin, generics.RetrieveUpdateAPIView):
    permission_classes = [CatalogReadOrAdminModelPermissions]
    serializer_class = ProductSerializer
    update_service = staticmethod(services.product_update)
    instance_kwarg = "product"
