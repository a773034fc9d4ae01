"""Catalog writes (A1), for the API, the admin and the seed commands alike.

Every create and update is audited (CatalogChange, same transaction). PATCH is conditional
on the version the client read when it sends one. A supplier's base_url is where the worker
sends the API key and guests' names: it must pass the endpoint policy
(suppliers.clients.endpoint), and changing it needs the API key in the same change, so that
whoever redirects a supplier's traffic must know (or replace) its secret."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction

from common.db import version_check, versioned_update
from suppliers.clients.endpoint import base_url_problem
from suppliers.models import CatalogChange, Product, Supplier

API_KEY_REQUIRED = "api_key_required"
API_KEY_REQUIRED_MESSAGE = "Changing base_url requires re-entering the supplier's API key."
SECRET_FIELDS = frozenset({"api_key"})
REDACTED_SET, REDACTED_EMPTY = "[redacted]", ""


def _audit_value(name: str, value: Any) -> Any:
    if name in SECRET_FIELDS:
        return REDACTED_SET if value else REDACTED_EMPTY
    if isinstance(value, Supplier | Product):
        return str(value.pk)
    if isinstance(value, uuid.UUID | decimal.Decimal | dt.date):
        return str(value)
    return value


def _audit(*, instance: Supplier | Product, action: str, actor: str, user: AbstractBaseUser | None,
           before: dict[str, Any], after: dict[str, Any]) -> None:
    CatalogChange.objects.create(
        actor=actor[:200], user=user if user is not None and user.is_authenticated else None,
        model=instance._meta.model_name, object_id=instance.pk, object_repr=str(instance)[:200], action=action,
        before={k: _audit_value(k, v) for k, v in before.items()},
        after={k: _audit_value(k, v) for k, v in after.items()})


def _check_base_url(url: str) -> None:
    problem = base_url_problem(url)
    if problem:
        raise ValidationError({"base_url": [ValidationError(problem, code="base_url_refused")]})


def _supplier_change_allowed(current: Supplier, data: dict[str, Any], changed: dict[str, Any]) -> None:
    if "base_url" in changed:
        _check_base_url(changed["base_url"])
        if not data.get("api_key"):
            raise ValidationError({"api_key": [ValidationError(API_KEY_REQUIRED_MESSAGE, code=API_KEY_REQUIRED)]})


def _update(instance: Supplier | Product, *, data: dict[str, Any], expected_version: int | None, actor: str,
            user: AbstractBaseUser | None, check: Any = None) -> None:
    # Not durable: the admin saves inside its own transaction (a savepoint then), the API in none.
    with transaction.atomic():
        current = type(instance).objects.select_for_update().get(pk=instance.pk)
        version_check(current, expected_version)
        changed = {name: value for name, value in data.items() if getattr(current, name) != value}
        if check is not None:
            check(current, data, changed)  # against the locked row: no stale read decides
        if "api_key" in data and "base_url" in changed:
            changed["api_key"] = data["api_key"]  # re-entered with the new URL: recorded as part of it
        if not changed:
            instance.version = current.version
            return
        before = {name: getattr(current, name) for name in changed}
        versioned_update(instance, fields=changed, expected_version=current.version)
        _audit(instance=instance, action=CatalogChange.Action.UPDATE, actor=actor, user=user, before=before,
               after=changed)


def _create(model: type[Supplier] | type[Product], *, data: dict[str, Any], actor: str,
            user: AbstractBaseUser | None) -> Any:
    with transaction.atomic():
        instance = model.objects.create(**data)
        _audit(instance=instance, action=CatalogChange.Action.CREATE, actor=actor, user=user, before={}, after=data)
    return instance


def supplier_create(*, actor: str, user: AbstractBaseUser | None = None, **data: Any) -> Supplier:
    _check_base_url(data["base_url"])
    return _create(Supplier, data=data, actor=actor, user=user)


def supplier_update(*, supplier: Supplier, data: dict[str, Any], actor: str, user: AbstractBaseUser | None = None,
                    expected_version: int | None = None) -> Supplier:
    _update(supplier, data=data, expected_version=expected_version, actor=actor, user=user,
            check=_supplier_change_allowed)
    return supplier


def product_create(*, actor: str, user: AbstractBaseUser | None = None, **data: Any) -> Product:
    return _create(Product, data=data, actor=actor, user=user)


def product_update(*, product: Product, data: dict[str, Any], actor: str, user: AbstractBaseUser | None = None,
                   expected_version: int | None = None) -> Product:
    _update(product, data=data, expected_version=expected_version, actor=actor, user=user)
    return product
