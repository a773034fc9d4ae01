"""The "Reservations staff" group (D5): the least privileges the daily back-office work needs.

Viewing reservations, their payments, timeline and supplier request audit, the outbox, dead
letters and Stripe events; acting through the admin actions only (custom permissions, and
`change` on dead letters and Stripe events, whose admins are otherwise read-only). No add,
change or delete of reservations, payments, refunds or the catalog; nothing on users or groups.

One definition, applied after every `migrate`/flush by a post_migrate receiver (so the group
follows this list, and a test flush or a manual deletion cannot leave staff without it)."""

from __future__ import annotations

from typing import Any

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission

GROUP_NAME = "Reservations staff"

PERMISSIONS = [
    ("reservations", "view_reservation"),
    ("reservations", "view_reservationevent"),
    ("backoffice", "view_onrequestreservation"),
    ("backoffice", "resolve_on_request"),
    ("backoffice", "cancel_refund_reservation"),
    ("suppliers", "view_supplier"),
    ("suppliers", "view_product"),
    ("suppliers", "view_supplierrequest"),
    ("suppliers", "view_catalogchange"),
    ("payments", "view_payment"),
    ("payments", "view_refund"),
    ("backoffice", "view_refundneedingattention"),
    ("backoffice", "resolve_refund"),  # retry a failed refund, record one made outside Stripe
    ("payments", "view_stripeevent"),
    ("payments", "change_stripeevent"),  # re-process FAILED events (the admin is read-only)
    ("outbox", "view_outboxevent"),
    ("outbox", "view_deadletter"),
    ("outbox", "change_deadletter"),  # replay / discard (the admin is read-only)
    ("ledgers", "view_discrepancy"),  # what reconciliation found (H1)
    ("ledgers", "resolve_discrepancy"),  # "Mark resolved" with a note, audited
    ("ledgers", "view_ledgerreconcilerun"),
]


def staff_group_sync(*, using: str = "default") -> None:
    """Create the group (idempotent) and set exactly PERMISSIONS on it."""
    for label in sorted({app_label for app_label, _ in PERMISSIONS}):
        # The permissions of an app are created by its own post_migrate; this runs in any order.
        create_permissions(global_apps.get_app_config(label), verbosity=0, using=using)
    group, _ = Group.objects.using(using).get_or_create(name=GROUP_NAME)
    wanted = [Permission.objects.using(using).get(content_type__app_label=app_label, codename=codename)
              for app_label, codename in PERMISSIONS]
    group.permissions.set(wanted)


def staff_group_after_migrate(sender: Any, using: str = "default", **kwargs: Any) -> None:
    staff_group_sync(using=using)
