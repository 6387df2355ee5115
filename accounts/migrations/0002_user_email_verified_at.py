from django.db import migrations, models
from django.db.models import F


def mark_existing_users_verified(apps, schema_editor):
    # Accounts made before sign-up asked for a confirmed address keep sending as they did.
    User = apps.get_model("accounts", "User")
    User.objects.filter(email_verified_at__isnull=True).update(email_verified_at=F("date_joined"))


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="user",
            name="email_verified_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="email verified"),
        ),
        migrations.RunPython(mark_existing_users_verified, migrations.RunPython.noop),
    ]
