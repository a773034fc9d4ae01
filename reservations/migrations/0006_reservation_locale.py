from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('reservations', '0005_delete_onrequestreservation'),
    ]

    operations = [
        migrations.AddField(
            model_name='reservation',
            name='locale',
            field=models.CharField(default='en', max_length=8),
        ),
    ]
