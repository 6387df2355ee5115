"""Recommendations' precomputed tables (audience/recommendation_stats.py): trending products per
category and across the catalog, and co-purchase counts; the product index gains the price, so
that "similar" reads a category's price band as one range scan.

The tenant is in each CreateModel (not added afterwards), so that migrating back drops each
table whole, with the row-level security policy and tenant keys installed on it after migrate."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('audience', '0015_lifecycle_stages'),
        ('tenants', '0003_event_retention_months'),
    ]

    operations = [
        migrations.CreateModel(
            name='ProductPair',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('tenant', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='tenants.tenant')),
                ('sku', models.CharField(max_length=100)),
                ('other_sku', models.CharField(max_length=100)),
                ('orders', models.PositiveIntegerField()),
                ('computed_at', models.DateTimeField()),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('tenant', 'sku', 'other_sku'), name='productpair_tenant_sku_other')],
            },
        ),
        migrations.CreateModel(
            name='TrendingProduct',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('tenant', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='tenants.tenant')),
                ('overall', models.BooleanField(default=False)),
                ('category', models.CharField(blank=True, max_length=200)),
                ('rank', models.PositiveSmallIntegerField()),
                ('sku', models.CharField(max_length=100)),
                ('score', models.PositiveIntegerField()),
                ('computed_at', models.DateTimeField()),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('tenant', 'overall', 'category', 'rank'), name='trending_tenant_cat_rank')],
            },
        ),
        migrations.RemoveIndex(
            model_name='product',
            name='product_tenant_category_idx',
        ),
        migrations.AddIndex(
            model_name='product',
            index=models.Index(fields=['tenant', 'category', 'price'], name='product_tenant_cat_price_idx'),
        ),
    ]
