"""Creates the "Reservations staff" group (D5); the definition lives in reservations.staff_group,
which a post_migrate receiver also applies after every migrate."""

from django.db import migrations

from reservations.staff_group import GROUP_NAME, staff_group_sync


def create_group(apps, schema_editor):
    staff_group_sync(apps=apps, using=schema_editor.connection.alias, historical=True)


def remove_group(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Group.objects.using(schema_editor.connection.alias).filter(name=GROUP_NAME).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("reservations", "0003_onrequestreservation"),
        ("suppliers", "0001_initial"),
        # staff_group.PERMISSIONS names the refunds-needing-attention permissions, which
        # payments 0004 creates: without this, a plan that runs this migration first fails.
        ("payments", "0004_refund_lifecycle_and_payment_lookup"),
        ("outbox", "0003_dead_letters"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.RunPython(create_group, remove_group),
    ]
