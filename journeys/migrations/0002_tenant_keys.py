"""Foreign keys between tenant tables give up Django's single-column constraint: tenants/keys.py
replaces each with a composite (tenant_id, …) one after migrate (Citus-ready keys)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('audience', '0011_contact_search_upper_columns'),
        ('journeys', '0001_initial'),
    ]

    operations = [
        migrations.AlterField(
            model_name='edge',
            name='version',
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.CASCADE, related_name='edges', to='journeys.journeyversion'),
        ),
        migrations.AlterField(
            model_name='enrollment',
            name='contact',
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='audience.contact'),
        ),
        migrations.AlterField(
            model_name='enrollment',
            name='journey',
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.CASCADE, related_name='enrollments', to='journeys.journey'),
        ),
        migrations.AlterField(
            model_name='enrollment',
            name='version',
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='journeys.journeyversion'),
        ),
        migrations.AlterField(
            model_name='journeyversion',
            name='journey',
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.CASCADE, related_name='versions', to='journeys.journey'),
        ),
        migrations.AlterField(
            model_name='node',
            name='version',
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.CASCADE, related_name='nodes', to='journeys.journeyversion'),
        ),
        migrations.AlterField(
            model_name='step',
            name='enrollment',
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.CASCADE, related_name='steps', to='journeys.enrollment'),
        ),
        migrations.AlterField(
            model_name='step',
            name='version',
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='journeys.journeyversion'),
        ),
    ]
