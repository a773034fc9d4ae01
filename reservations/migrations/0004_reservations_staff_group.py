"""Formerly created the "Reservations staff" group. The group's one definition now lives in
backoffice.staff_group and is applied after every migrate by a post_migrate receiver, which
creates it on a fresh database too; this migration is kept so the history stays linear."""

from django.db import migrations


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

    operations = []
