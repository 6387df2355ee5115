"""Foreign keys between tenant tables give up Django's single-column constraint: tenants/keys.py
replaces each with a composite (tenant_id, …) one after migrate (Citus-ready keys)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('audience', '0011_contact_search_upper_columns'),
        ('messaging', '0006_delivery_bulk_references'),
    ]

    operations = [
        migrations.AlterField(
            model_name='delivery',
            name='contact',
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='audience.contact'),
        ),
        migrations.AlterField(
            model_name='pushsubscription',
            name='contact',
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='audience.contact'),
        ),
    ]
