# The (tenant, name, occurred_at) index of events, replaced by one that also carries contact_id
# and id (INCLUDE), so segment conditions on events are index-only scans. Built CONCURRENTLY on
# PostgreSQL: the events table is the biggest one and ingestion keeps writing to it meanwhile.

from django.db import migrations, models

import audience.models

OLD = models.Index(fields=["tenant", "name", "occurred_at"], name="event_name_time_idx")
NEW = audience.models.CoveringIndex(
    fields=["tenant", "name", "occurred_at"],
    include=["contact", "id"],
    name="event_name_time_cover_idx",
)


def _swap(schema_editor, model, add, remove):
    concurrently = {"concurrently": True} if schema_editor.connection.vendor == "postgresql" else {}
    schema_editor.add_index(model, add, **concurrently)  # the new one first: queries keep an index
    schema_editor.remove_index(model, remove, **concurrently)


def forwards(apps, schema_editor):
    _swap(schema_editor, apps.get_model("audience", "Event"), NEW, OLD)


def backwards(apps, schema_editor):
    _swap(schema_editor, apps.get_model("audience", "Event"), OLD, NEW)


class Migration(migrations.Migration):
    atomic = False  # CREATE / DROP INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("audience", "0006_lean_indexes"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveIndex(model_name="event", name="event_name_time_idx"),
                migrations.AddIndex(model_name="event", index=NEW),
            ],
            database_operations=[migrations.RunPython(forwards, backwards)],
        ),
    ]
