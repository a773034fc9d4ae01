from __future__ import annotations

from django.db.models import QuerySet
from rest_framework import generics
from rest_framework.request import Request

from common.permissions import AdminModelPermissions, CatalogReadOrAdminModelPermissions, may_view, staff_actor
from suppliers import services
from suppliers.api.serializers import ProductSerializer, SupplierSerializer, VersionSerializer
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
    update_service = staticmethod(services.supplier_update)
    instance_kwarg = "supplier"

    def perform_update(self, serializer) -> None:
        version = VersionSerializer(data={k: v for k, v in self.request.data.items() if k == "version"})
        version.is_valid(raise_exception=True)
        self.update_service(**{self.instance_kwarg: serializer.instance}, data=serializer.validated_data,
                            expected_version=version.validated_data.get("version"), **_actor(self.request))


class SupplierListApi(generics.ListCreateAPIView):
    permission_classes = [AdminModelPermissions]
    serializer_class = SupplierSerializer
    queryset = Supplier.objects.order_by("name", "id")

    def perform_create(self, serializer: SupplierSerializer) -> None:
        serializer.instance = services.supplier_create(**serializer.validated_data, **_actor(self.request))


class SupplierDetailApi(_VersionedUpdateMixin, generics.RetrieveUpdateAPIView):
    permission_classes = [AdminModelPermissions]
    serializer_class = SupplierSerializer
    queryset = Supplier.objects.all()


class ProductListApi(_ProductQuerysetMixin, generics.ListCreateAPIView):
    permission_classes = [CatalogReadOrAdminModelPermissions]
    serializer_class = ProductSerializer

    def perform_create(self, serializer: ProductSerializer) -> None:
        serializer.instance = services.product_create(**serializer.validated_data, **_actor(self.request))


class ProductDetailApi(_ProductQuerysetMixin, _VersionedUpdateMixin, generics.RetrieveUpdateAPIView):
    permission_classes = [CatalogReadOrAdminModelPermissions]
    serializer_class = ProductSerializer
    update_service = staticmethod(services.product_update)
    instance_kwarg = "product"
