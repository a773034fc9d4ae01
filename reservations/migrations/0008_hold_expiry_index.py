from django.db import migrations, models


class Migration(migrations.Migration):
    """The expiry reads the unpaid holds past their time, oldest first, every minute: on
    (status, expires_at) it reads those rows in order, instead of sorting all the due holds or
    walking expires_at through every reservation ever made."""

    dependencies = [
        ('reservations', '0007_list_index_newest_first'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='reservation',
            index=models.Index(fields=['status', 'expires_at'], name='reservation_hold_expiry'),
        ),
    ]
