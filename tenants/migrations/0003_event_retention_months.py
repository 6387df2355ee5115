"""A team's own retention of raw events (audience/retention.py); empty keeps the default."""

import django.core.validators
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0002_remove_sender_identity_fields"),
    ]

    operations = [
        migrations.AddField(
            model_name="tenant",
            name="event_retention_months",
            field=models.PositiveSmallIntegerField(
                blank=True,
                null=True,
                validators=[
                    django.core.validators.MinValueValidator(
                        1, "Keep events for at least %(limit_value)s month."
                    ),
                    django.core.validators.MaxValueValidator(
                        120, "Keep events for at most %(limit_value)s months."
                    ),
                ],
                verbose_name="Keep raw events for (months)",
            ),
        ),
        migrations.AddConstraint(
            model_name="tenant",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(
                        ("event_retention_months__gte", 1), ("event_retention_months__lte", 120)
                    ),
                    ("event_retention_months__isnull", True),
                    _connector="OR",
                ),
                name="tenant_event_retention_months_range",
            ),
        ),
    ]
