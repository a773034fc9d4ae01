"""Idempotency keys compare byte for byte (B1): `AbC-1` is not `abc-1`, `café-1` is not
`cafe-1`. MariaDB's default utf8mb4 collations fold case and accents, so a key would replay
another key's stored answer; the key column gets the binary collation. (SQLite, the demo's
database, already compares text byte for byte.)"""

from django.db import migrations

TABLE, COLUMN = "idempotency_keys", "key"


def to_binary(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor == "mysql":
        # A NO PAD binary collation: trailing spaces count too (utf8mb4_bin ignores them).
        collation = "utf8mb4_nopad_bin" if connection.mysql_is_mariadb else "utf8mb4_0900_bin"
        schema_editor.execute(f"ALTER TABLE `{TABLE}` MODIFY `{COLUMN}` VARCHAR(255) "
                              f"CHARACTER SET utf8mb4 COLLATE {collation} NOT NULL")


def to_table_default(apps, schema_editor):
    if schema_editor.connection.vendor == "mysql":
        schema_editor.execute(f"ALTER TABLE `{TABLE}` MODIFY `{COLUMN}` VARCHAR(255) CHARACTER SET utf8mb4 NOT NULL")


class Migration(migrations.Migration):
    atomic = False  # DDL: MariaDB commits it on its own anyway

    dependencies = [
        ("common", "0002_idempotency_key_scope_by_endpoint"),
    ]

    operations = [
        migrations.RunPython(to_binary, to_table_default),
    ]
