"""B1: idempotency keys are unique per (user, endpoint, key), not per (user, key).

Existing keys (kept 24 h) get their endpoint from the stored method and path, so a retry that
spans the deploy still finds its key."""

from django.db import migrations, models
from django.urls import Resolver404, resolve


def fill_endpoint(apps, schema_editor):
    IdempotencyKey = apps.get_model("common", "IdempotencyKey")
    for record in IdempotencyKey.objects.filter(endpoint="").iterator():
        try:
            route = resolve(record.request_path).route
        except Resolver404:
            route = record.request_path
        IdempotencyKey.objects.filter(pk=record.pk).update(
            endpoint=f"{record.request_method.upper()} {route}"[:255])


class Migration(migrations.Migration):

    dependencies = [
        ("common", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="idempotencykey",
            name="endpoint",
            field=models.CharField(default="", max_length=255),
        ),
        migrations.RunPython(fill_endpoint, migrations.RunPython.noop),
        migrations.RemoveConstraint(
            model_name="idempotencykey",
            name="idempotency_key_unique_per_user",
        ),
        migrations.AddConstraint(
            model_name="idempotencykey",
            constraint=models.UniqueConstraint(fields=("user", "endpoint", "key"),
                                               name="idempotency_key_unique_per_user_endpoint"),
        ),
    ]
