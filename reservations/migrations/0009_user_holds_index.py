from django.db import migrations, models


class Migration(migrations.Migration):
    """Every create counts the customer's unpaid, unexpired holds under the customer's row lock.
    On (user, -created_at, -id) that count read every reservation the customer ever made; on
    (user, status, expires_at) it reads the holds alone, from the index. Adding an index is
    online on MariaDB (ALGORITHM=INPLACE, LOCK=NONE) and expand-only: the release before it
    runs against it unchanged (README "Upgrade")."""

    dependencies = [
        ('reservations', '0008_hold_expiry_index'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='reservation',
            index=models.Index(fields=['user', 'status', 'expires_at'], name='reservation_user_holds'),
        ),
    ]
