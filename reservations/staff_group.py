"""The "Reservations staff" group (D5): the least privileges the daily back-office work needs.

Viewing reservations, their payments, timeline and supplier request audit, the outbox, dead
letters and Stripe events; acting through the admin actions only (custom permissions, and
`change` on dead letters and Stripe events, whose admins are otherwise read-only). No add,
change or delete of reservations, payments, refunds or the catalog; nothing on users or groups.

One definition, applied by the data migration (a fresh database) and again after every
`migrate`/flush by a post_migrate receiver (so the group follows this list, and a test flush
or a manual deletion cannot leave staff without it)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.management import create_permissions

GROUP_NAME = "Reservations staff"

PERMISSIONS = [
    ("reservations", "view_reservation"),
    ("reservations", "view_reservationevent"),
    ("reservations", "view_onrequestreservation"),
    ("reservations", "resolve_on_request"),
    ("reservations", "cancel_refund_reservation"),
    ("suppliers", "view_supplier"),
    ("suppliers", "view_product"),
    ("suppliers", "view_supplierrequest"),
    ("payments", "view_payment"),
    ("payments", "view_refund"),
    ("payments", "view_refundneedingattention"),
    ("payments", "resolve_refund"),  # retry a failed refund, record one made outside Stripe
    ("payments", "view_stripeevent"),
    ("payments", "change_stripeevent"),  # re-process FAILED events (the admin is read-only)
    ("outbox", "view_outboxevent"),
    ("outbox", "view_deadletter"),
    ("outbox", "change_deadletter"),  # replay / discard (the admin is read-only)
]


def staff_group_sync(*, apps: Any, using: str, historical: bool) -> None:
    """Create the group (idempotent) and set exactly PERMISSIONS on it."""
    for label in sorted({app_label for app_label, _ in PERMISSIONS}):
        app_config = apps.get_app_config(label)
        if historical:
            # create_permissions skips app configs without a models module; historical ones have none.
            app_config.models_module = True
        try:
            create_permissions(app_config, apps=apps, verbosity=0, using=using)
        finally:
            if historical:
                app_config.models_module = None
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    group, _ = group_model.objects.using(using).get_or_create(name=GROUP_NAME)
    wanted = [permission_model.objects.using(using).get(content_type__app_label=app_label, codename=codename)
              for app_label, codename in PERMISSIONS]
    group.permissions.set(wanted)


def _after_migrate(sender: Any, using: str = "default", apps: Any = None, **kwargs: Any) -> None:
    from django.apps import apps as global_apps

    staff_group_sync(apps=global_apps, using=using, historical=False)
