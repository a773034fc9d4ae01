"""Catalog writes (A1). PATCH is conditional on the version the client read when it sends one."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from common.db import version_check, versioned_update
from suppliers.models import Product, Supplier


def _update(instance: Supplier | Product, *, data: dict[str, Any], expected_version: int | None) -> None:
    # Not durable: the admin saves inside its own transaction (a savepoint then), the API in none.
    with transaction.atomic():
        current = type(instance).objects.select_for_update().get(pk=instance.pk)
        version_check(current, expected_version)
        versioned_update(instance, fields=data, expected_version=current.version)


def supplier_create(**data: Any) -> Supplier:
    return Supplier.objects.create(**data)


def supplier_update(*, supplier: Supplier, data: dict[str, Any], expected_version: int | None = None) -> Supplier:
    _update(supplier, data=data, expected_version=expected_version)
    return supplier


def product_create(**data: Any) -> Product:
    return Product.objects.create(**data)


def product_update(*, product: Product, data: dict[str, Any], expected_version: int | None = None) -> Product:
    _update(product, data=data, expected_version=expected_version)
    return product
