"""Tenant's sender fields and VAPID keys now live in messaging.SenderIdentity: removed once
messaging 0003 has copied them there."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0001_initial"),
        ("messaging", "0003_sender_identity"),
    ]

    operations = [
        # A default first, so that a rollback can add the key columns back to existing rows
        # (messaging 0003's rollback then copies the keys into them).
        migrations.AlterField(
            model_name="tenant",
            name="vapid_public_key",
            field=models.CharField(default="", editable=False, max_length=100),
        ),
        migrations.AlterField(
            model_name="tenant",
            name="vapid_private_key",
            field=models.CharField(default="", editable=False, max_length=100),
        ),
        migrations.RemoveField(model_name="tenant", name="reply_to_email"),
        migrations.RemoveField(model_name="tenant", name="sender_email"),
        migrations.RemoveField(model_name="tenant", name="sender_name"),
        migrations.RemoveField(model_name="tenant", name="vapid_private_key"),
        migrations.RemoveField(model_name="tenant", name="vapid_public_key"),
    ]
