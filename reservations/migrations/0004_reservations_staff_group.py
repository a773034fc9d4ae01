"""The "Reservations staff" group (D5): the least privileges the daily back-office work needs.

Viewing reservations, their payments, timeline and supplier request audit, the outbox, dead
letters and Stripe events; acting through the admin actions only (custom permissions, and
`change` on dead letters and Stripe events, whose admins are otherwise read-only). No add,
change or delete of reservations, payments, refunds or the catalog; nothing on users or groups.

Permissions are normally created after all migrations (post_migrate); they are created here
first, for the apps involved, so the group can be filled in a fresh database. Doing it again
after migrate is a no-op."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

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
    ("payments", "view_stripeevent"),
    ("payments", "change_stripeevent"),  # re-process FAILED events (the admin is read-only)
    ("outbox", "view_outboxevent"),
    ("outbox", "view_deadletter"),
    ("outbox", "change_deadletter"),  # replay / discard (the admin is read-only)
]


def create_group(apps, schema_editor):
    using = schema_editor.connection.alias
    for label in sorted({app_label for app_label, _ in PERMISSIONS}):
        app_config = apps.get_app_config(label)
        # create_permissions skips app configs without a models module; historical ones have none.
        app_config.models_module = True
        try:
            create_permissions(app_config, apps=apps, verbosity=0, using=using)
        finally:
            app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.using(using).get_or_create(name=GROUP_NAME)
    wanted = []
    for app_label, codename in PERMISSIONS:
        wanted.append(Permission.objects.using(using).get(content_type__app_label=app_label, codename=codename))
    group.permissions.add(*wanted)


def remove_group(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Group.objects.using(schema_editor.connection.alias).filter(name=GROUP_NAME).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("reservations", "0003_onrequestreservation"),
        ("suppliers", "0001_initial"),
        ("payments", "0003_stripeevent_payment_attempt_key_and_more"),
        ("outbox", "0003_dead_letters"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.RunPython(create_group, remove_group),
    ]
