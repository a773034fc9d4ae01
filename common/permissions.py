"""The admin's permission rule, for the staff API (issue "security", api.md "Catalog").

The admin lets an active staff member view a model with its view or change permission, add
with add, change with change. DRF's DjangoModelPermissions checks the model permissions but
not staff status, and lets any authenticated user read. This is the admin's rule exactly,
so a group can do through the API what it can do in the admin, and nothing more."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Model
from rest_framework.permissions import SAFE_METHODS, DjangoModelPermissions
from rest_framework.request import Request
from rest_framework.views import APIView


def staff_actor(user: AbstractBaseUser) -> str:
    """The `actor` of a staff member on timelines and audits (api.md)."""
    return f"staff:{user.get_username()}"


def _perm(model: type[Model], action: str) -> str:
    return f"{model._meta.app_label}.{action}_{model._meta.model_name}"


def may_view(user: AbstractBaseUser, model: type[Model]) -> bool:
    """ModelAdmin.has_view_permission: staff with view or change."""
    return bool(user and user.is_active and user.is_staff
                and (user.has_perm(_perm(model, "view")) or user.has_perm(_perm(model, "change"))))


class AdminModelPermissions(DjangoModelPermissions):
    perms_map: dict[str, list[str]] = {
        **DjangoModelPermissions.perms_map,
        "OPTIONS": [],
        "HEAD": [],
        "GET": [],  # reads: may_view (view or change), below
    }

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        if not (user and user.is_authenticated and user.is_active and user.is_staff):
            return False
        if request.method in SAFE_METHODS:
            return may_view(user, self._queryset(view).model)
        return super().has_permission(request, view)


class CatalogReadOrAdminModelPermissions(AdminModelPermissions):
    """Products: any customer may read (the view shows them active products only); writing
    takes the admin's permissions."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.method in SAFE_METHODS:
            return bool(request.user and request.user.is_authenticated)
        return super().has_permission(request, view)
