"""Foreign keys between tenant tables give up Django's single-column constraint: tenants/keys.py
replaces each with a composite (tenant_id, …) one after migrate, and every unique
constraint holds the tenant (Citus-ready keys)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('audience', '0011_contact_search_upper_columns'),
        ('campaigns', '0004_recipient_contact_unconstrained'),
        ('django_celery_beat', '0019_alter_periodictasks_options'),
        ('messaging', '0007_tenant_keys'),
        ('segments', '0003_tenant_keys'),
        ('tenants', '0002_remove_sender_identity_fields'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='campaignsegment',
            name='campaign_segment_once',
        ),
        migrations.RemoveConstraint(
            model_name='occurrence',
            name='occurrence_campaign_key',
        ),
        migrations.RemoveConstraint(
            model_name='recipient',
            name='recipient_occurrence_contact',
        ),
        migrations.RemoveConstraint(
            model_name='variant',
            name='variant_campaign_key',
        ),
        migrations.AlterField(
            model_name='campaign',
            name='periodic_task',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='django_celery_beat.periodictask'),
        ),
        migrations.AlterField(
            model_name='campaignsegment',
            name='campaign',
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.CASCADE, related_name='segments', to='campaigns.campaign'),
        ),
        migrations.AlterField(
            model_name='campaignsegment',
            name='segment',
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='segments.segment'),
        ),
        migrations.AlterField(
            model_name='occurrence',
            name='campaign',
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.CASCADE, related_name='occurrences', to='campaigns.campaign'),
        ),
        migrations.AlterField(
            model_name='occurrence',
            name='winner',
            field=models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='campaigns.variant'),
        ),
        migrations.AlterField(
            model_name='variant',
            name='campaign',
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.CASCADE, related_name='variants', to='campaigns.campaign'),
        ),
        migrations.AlterField(
            model_name='variant',
            name='template',
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='messaging.template'),
        ),
        migrations.AddConstraint(
            model_name='campaign',
            constraint=models.UniqueConstraint(fields=('tenant', 'periodic_task'), name='campaign_tenant_periodic_task'),
        ),
        migrations.AddConstraint(
            model_name='campaignsegment',
            constraint=models.UniqueConstraint(fields=('tenant', 'campaign', 'segment'), name='campaign_segment_tenant_once'),
        ),
        migrations.AddConstraint(
            model_name='occurrence',
            constraint=models.UniqueConstraint(fields=('tenant', 'campaign', 'key'), name='occurrence_tenant_campaign_key'),
        ),
        migrations.AddConstraint(
            model_name='recipient',
            constraint=models.UniqueConstraint(fields=('tenant', 'occurrence', 'contact'), name='recipient_tenant_occurrence_contact'),
        ),
        migrations.AddConstraint(
            model_name='variant',
            constraint=models.UniqueConstraint(fields=('tenant', 'campaign', 'key'), name='variant_tenant_campaign_key'),
        ),
    ]
