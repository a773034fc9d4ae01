from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.generics import get_object_or_404
from rest_framework.permissions import SAFE_METHODS, BasePermission, IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from suppliers import services
from suppliers.api.serializers import ProductSerializer, SupplierSerializer, VersionSerializer
from suppliers.models import Product, Supplier


class StaffOrReadActiveProducts(BasePermission):
    """Staff manage the catalog; customers may only read (and only see active products)."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and (user.is_staff or request.method in SAFE_METHODS))


def _product_queryset(request: Request):
    qs = Product.objects.select_related("supplier").order_by("name", "id")
    return qs if request.user.is_staff else qs.filter(active=True, supplier__active=True)


class _CatalogListApi(APIView):
    serializer_class: type = SupplierSerializer
    create_service = staticmethod(services.supplier_create)

    def get_queryset(self, request: Request):
        raise NotImplementedError

    def get(self, request: Request) -> Response:
        from rest_framework.pagination import PageNumberPagination

        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(self.get_queryset(request), request, view=self)
        return paginator.get_paginated_response(self.serializer_class(page, many=True).data)

    def post(self, request: Request) -> Response:
        serializer = self.serializer_class(data=request.data)
        serializer.is_valid(raise_exception=True)
        instance = self.create_service(**serializer.validated_data)
        return Response(self.serializer_class(instance).data, status=status.HTTP_201_CREATED)


class _CatalogDetailApi(APIView):
    serializer_class: type = SupplierSerializer
    update_service = staticmethod(services.supplier_update)
    instance_kwarg = "supplier"

    def get_queryset(self, request: Request):
        raise NotImplementedError

    def get(self, request: Request, pk: str) -> Response:
        return Response(self.serializer_class(get_object_or_404(self.get_queryset(request), pk=pk)).data)

    def patch(self, request: Request, pk: str) -> Response:
        instance = get_object_or_404(self.get_queryset(request), pk=pk)
        serializer = self.serializer_class(instance, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        version = VersionSerializer(data={k: v for k, v in request.data.items() if k == "version"})
        version.is_valid(raise_exception=True)
        self.update_service(**{self.instance_kwarg: instance}, data=serializer.validated_data,
                            expected_version=version.validated_data.get("version"))
        return Response(self.serializer_class(instance).data)


@extend_schema(tags=["catalog"])
class SupplierListApi(_CatalogListApi):
    permission_classes = [IsAdminUser]
    serializer_class = SupplierSerializer
    create_service = staticmethod(services.supplier_create)

    def get_queryset(self, request: Request):
        return Supplier.objects.order_by("name", "id")


@extend_schema(tags=["catalog"])
class SupplierDetailApi(_CatalogDetailApi):
    permission_classes = [IsAdminUser]
    serializer_class = SupplierSerializer
    update_service = staticmethod(services.supplier_update)
    instance_kwarg = "supplier"

    def get_queryset(self, request: Request):
        return Supplier.objects.all()


@extend_schema(tags=["catalog"])
class ProductListApi(_CatalogListApi):
    permission_classes = [StaffOrReadActiveProducts]
    serializer_class = ProductSerializer
    create_service = staticmethod(services.product_create)

    def get_queryset(self, request: Request):
        return _product_queryset(request)


@extend_schema(tags=["catalog"])
class ProductDetailApi(_CatalogDetailApi):
    permission_classes = [StaffOrReadActiveProducts]
    serializer_class = ProductSerializer
    update_service = staticmethod(services.product_update)
    instance_kwarg = "product"

    def get_queryset(self, request: Request):
        return _product_queryset(request)
