"""rest_framework.authtoken kept API tokens in plain text and forever; knox keeps a digest and
an expiry. Each legacy token becomes a hashed one with the standard lifetime, so clients keep
working until it expires, then log in again; the plain-text rows are deleted (the empty table
stays until `manage.py api_tokens_convert_legacy --drop-table`, see the README)."""

from django.db import migrations

from common.tokens import legacy_tokens_convert


def convert(apps, schema_editor):
    legacy_tokens_convert(token_model=apps.get_model("knox", "AuthToken"), using=schema_editor.connection.alias)


class Migration(migrations.Migration):

    dependencies = [
        ("common", "0003_idempotency_key_binary_collation"),
        ("knox", "0009_extend_authtoken_field"),
    ]

    operations = [
        migrations.RunPython(convert, migrations.RunPython.noop),
    ]
