from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command

from ledgers.staff_group import PERMISSIONS as LEDGER_PERMISSIONS
from reservations.staff_group import GROUP_NAME, PERMISSIONS

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_staff_group_is_restored_with_exactly_its_permissions_after_migrate():
    """A flush (as transactional tests do) or a manual deletion must not leave staff without
    their group: every migrate re-applies the one definition, extra permissions included."""
    Group.objects.filter(name=GROUP_NAME).delete()
    stray = Group.objects.create(name=GROUP_NAME)
    extra = Permission.objects.exclude(codename__in=[codename for _, codename in PERMISSIONS]).first()
    stray.permissions.add(extra)

    call_command("migrate", verbosity=0)

    group = Group.objects.get(name=GROUP_NAME)
    ledgers = {("ledgers", codename) for codename in LEDGER_PERMISSIONS}  # added by the ledgers app
    assert {(p.content_type.app_label, p.codename) for p in group.permissions.all()} == set(PERMISSIONS) | ledgers
