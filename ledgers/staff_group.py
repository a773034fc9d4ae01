"""The discrepancy queue for the "Reservations staff" group (D5): view it, and mark a
discrepancy resolved. Added by this app, so that the group's base definition (reservations)
needs to know nothing of the apps above it."""

from __future__ import annotations

from typing import Any

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission

from reservations.staff_group import GROUP_NAME

PERMISSIONS = ["view_discrepancy", "resolve_discrepancy", "view_ledgerreconcilerun"]


def staff_group_add_ledger_permissions(sender: Any, using: str = "default", **kwargs: Any) -> None:
    create_permissions(global_apps.get_app_config("ledgers"), verbosity=0, using=using)
    group, _ = Group.objects.using(using).get_or_create(name=GROUP_NAME)
    group.permissions.add(*Permission.objects.using(using).filter(content_type__app_label="ledgers",
                                                                  codename__in=PERMISSIONS))
