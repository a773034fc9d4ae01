from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    """The customer's list index ends in "-id", the list's tie-break, so that a page is read in
    index order instead of sorting all of the customer's reservations. The new index is built
    before the old one goes: the foreign key on user_id always has an index to use (MariaDB
    refuses to drop the only one), and the list never goes without."""

    dependencies = [
        ('reservations', '0006_reservation_locale'),
        ('suppliers', '0003_catalog_audit_and_booking_horizon'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddIndex(
            model_name='reservation',
            index=models.Index(fields=['user', '-created_at', '-id'], name='reservation_user_newest'),
        ),
        migrations.RemoveIndex(
            model_name='reservation',
            name='reservation_user_recent',
        ),
    ]
