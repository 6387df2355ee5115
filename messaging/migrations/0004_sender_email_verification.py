from django.db import migrations, models


class Migration(migrations.Migration):
    # Existing From addresses stay in use: they were set before confirmation was asked
    # (docs/operations.md, "Upgrading").
    dependencies = [
        ("messaging", "0003_sender_identity"),
    ]

    operations = [
        migrations.AddField(
            model_name="senderidentity",
            name="pending_sender_email",
            field=models.EmailField(blank=True, max_length=254),
        ),
        migrations.AddField(
            model_name="senderidentity",
            name="pending_sender_requested_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
