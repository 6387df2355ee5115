"""Contact search on upper-cased copies of email and names (stored generated columns) instead of
indexes on UPPER(field): under row-level security PostgreSQL holds back conditions on functions
that are not leakproof (UPPER, LIKE) until the policy has filtered the rows, so those indexes went
unused. audience.models.UpperPrefixIndex says more."""

import audience.models
import django.db.models.functions.text
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('audience', '0010_repair_unreadable_times'),
        ('tenants', '0002_remove_sender_identity_fields'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='contact',
            name='contact_tenant_email_like_idx',
        ),
        migrations.RemoveIndex(
            model_name='contact',
            name='contact_tenant_first_like_idx',
        ),
        migrations.RemoveIndex(
            model_name='contact',
            name='contact_tenant_last_like_idx',
        ),
        migrations.AddField(
            model_name='contact',
            name='email_upper',
            field=models.GeneratedField(db_persist=True, expression=django.db.models.functions.text.Upper('email'), output_field=models.TextField()),
        ),
        migrations.AddField(
            model_name='contact',
            name='first_name_upper',
            field=models.GeneratedField(db_persist=True, expression=django.db.models.functions.text.Upper('first_name'), output_field=models.TextField()),
        ),
        migrations.AddField(
            model_name='contact',
            name='last_name_upper',
            field=models.GeneratedField(db_persist=True, expression=django.db.models.functions.text.Upper('last_name'), output_field=models.TextField()),
        ),
        migrations.AddIndex(
            model_name='contact',
            index=audience.models.UpperPrefixIndex('email', name='contact_tenant_email_pfx_idx'),
        ),
        migrations.AddIndex(
            model_name='contact',
            index=audience.models.UpperPrefixIndex('first_name', name='contact_tenant_first_pfx_idx'),
        ),
        migrations.AddIndex(
            model_name='contact',
            index=audience.models.UpperPrefixIndex('last_name', name='contact_tenant_last_pfx_idx'),
        ),
    ]
