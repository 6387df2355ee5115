"""The six lifecycle stages (docs/lifecycle.md) replace visitor / lead / customer / repeat: the
column widens, old values map to the new stages, an index (tenant, stage) answers the journey
map's counts, and a team's stage rules get a table.

The mapping is a rename, not a recomputation (no `Lifecycle Stage Changed` events): visitor →
awareness, lead → acquisition, customer → onboarding when the contact's first order is under 30
days old, else engagement, repeat → engagement. The next computation (on ingest, or the daily
run, audience/stages.py) moves contacts on by the rules, recording each change."""

from datetime import timedelta

import audience.models
import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models
from django.db.models import Case, Exists, OuterRef, Value, When

RENAMED = {"visitor": "awareness", "lead": "acquisition", "repeat": "engagement"}
OLD = {v: k for k, v in RENAMED.items()}


def stages_forward(apps, schema_editor):
    Contact = apps.get_model("audience", "Contact")
    Order = apps.get_model("audience", "Order")
    for old, new in RENAMED.items():
        Contact.objects.filter(lifecycle_stage=old).update(lifecycle_stage=new)
    cutoff = django.utils.timezone.now() - timedelta(days=30)
    orders = Order.objects.filter(tenant_id=OuterRef("tenant_id"), contact_id=OuterRef("pk"))
    Contact.objects.filter(lifecycle_stage="customer").update(
        lifecycle_stage=Case(
            When(
                Exists(orders.filter(occurred_at__gte=cutoff))
                & ~Exists(orders.filter(occurred_at__lt=cutoff)),
                then=Value("onboarding"),
            ),
            default=Value("engagement"),
        )
    )


def stages_backward(apps, schema_editor):
    Contact = apps.get_model("audience", "Contact")
    for new, old in OLD.items():
        Contact.objects.filter(lifecycle_stage=new).update(lifecycle_stage=old)
    Contact.objects.filter(lifecycle_stage="onboarding").update(lifecycle_stage="customer")
    Contact.objects.filter(lifecycle_stage__in=["retention", "advocacy"]).update(
        lifecycle_stage="repeat"
    )


class Migration(migrations.Migration):

    dependencies = [
        ('audience', '0014_order_time_cover_index'),
        ('tenants', '0003_event_retention_months'),
    ]

    operations = [
        migrations.CreateModel(
            name='StageRules',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('onboarding_days', models.PositiveSmallIntegerField(default=30, help_text='A first order or sign-up this recent puts a contact in onboarding.')),
                ('active_days', models.PositiveSmallIntegerField(default=90, help_text='A customer who ordered this recently is an active buyer.')),
                ('drifting_days', models.PositiveSmallIntegerField(default=60, help_text='A customer not seen for this long is a retention risk.')),
                ('advocacy_days', models.PositiveSmallIntegerField(default=180, help_text='How long a promoter score, review or referral counts.')),
                ('promoter_min_score', models.PositiveSmallIntegerField(default=9, help_text='The lowest NPS score (0-10) that makes a promoter.')),
                ('nps_events', models.JSONField(default=audience.models._nps_events_default)),
                ('advocacy_events', models.JSONField(default=audience.models._advocacy_events_default)),
                ('updated_at', models.DateTimeField(default=django.utils.timezone.now)),
                # Inside the table's creation, not a later AddField: migrating backwards then
                # drops the table with its row-level-security policy, which names tenant_id.
                ('tenant', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='tenants.tenant')),
            ],
            options={
                'verbose_name': 'lifecycle stage rules',
                'verbose_name_plural': 'lifecycle stage rules',
            },
        ),
        migrations.AlterField(
            model_name='contact',
            name='lifecycle_stage',
            field=models.CharField(choices=[('awareness', 'Awareness'), ('acquisition', 'Acquisition'), ('onboarding', 'Onboarding'), ('engagement', 'Engagement'), ('retention', 'Retention risk'), ('advocacy', 'Advocacy')], default='awareness', max_length=16),
        ),
        migrations.RunPython(stages_forward, stages_backward, elidable=False),
        migrations.AddIndex(
            model_name='contact',
            index=models.Index(fields=['tenant', 'lifecycle_stage'], name='contact_tenant_stage_idx'),
        ),
        migrations.AddConstraint(
            model_name='stagerules',
            constraint=models.CheckConstraint(condition=models.Q(('active_days__gte', 1), ('active_days__lte', 3650), ('advocacy_days__gte', 1), ('advocacy_days__lte', 3650), ('drifting_days__gte', 1), ('drifting_days__lte', 3650), ('onboarding_days__gte', 1), ('onboarding_days__lte', 3650)), name='tenant_stagerules_days_range'),
        ),
        migrations.AddConstraint(
            model_name='stagerules',
            constraint=models.CheckConstraint(condition=models.Q(('promoter_min_score__gte', 0), ('promoter_min_score__lte', 10)), name='tenant_stagerules_score_range'),
        ),
    ]
