"""Events partitioned by month on PostgreSQL, the message id's uniqueness in a key table of its
own (EventKey), and the order ledger and daily rollups that outlive event retention.

PostgreSQL: the existing `audience_event` becomes a table PARTITION BY RANGE (occurred_at) with a
partition per month (`audience_event_pYYYY_MM`) from the oldest month holding data (rows more
than MONTHS_KEPT months back aside: they wait in the default partition for retention) to three
months ahead, and a DEFAULT partition for the rest. Every row keeps its id; ids continue from
the old table's sequence. The primary key becomes (tenant_id, id, occurred_at): a partitioned table's
unique keys must hold the partition key. The indexes are recreated as partitioned indexes, and the
row-level security of the old table is carried over (to every partition too). audience/partitions.py
keeps partitions ahead of the clock afterwards; this migration stays frozen with its own copy of
the few statements it needs.

The conversion copies every event (minutes for tens of millions): run it in a maintenance window.
Backwards, the table becomes one plain table again (ids kept), and the unique constraint on
(tenant, message_id) returns; the contact's single-column foreign keys return only where the
tenant keys (tenants/keys.py) have not replaced them (ForeignKeyUnconstrained).

SQLite: plain tables; the keys are filled from the events.
"""

from datetime import UTC, datetime

import django.db.models.deletion
from django.db import migrations, models

EVENTS = "audience_event"
DEFAULT = "audience_event_default"
OLD = "audience_event_unpartitioned"
AHEAD = 3  # months of partitions created ahead of the current one
MONTHS_KEPT = 120  # the longest retention a team may choose: no partitions for older months


def _month(moment, shift=0):
    index = moment.year * 12 + moment.month - 1 + shift
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def _partition_name(start):
    return f"audience_event_p{start:%Y_%m}"


def _columns(cursor, table):
    cursor.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0"
        " AND NOT attisdropped ORDER BY attnum",
        [table],
    )
    return ", ".join(f'"{name}"' for (name,) in cursor.fetchall())


def _indexes(cursor, table):
    """(name, definition) of `table`'s indexes that back no constraint."""
    cursor.execute(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i"
        " JOIN pg_class c ON c.oid = i.indexrelid"
        " WHERE i.indrelid = %s::regclass"
        " AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)"
        " ORDER BY c.relname",
        [table],
    )
    return cursor.fetchall()


def _security(cursor, table):
    """`table`'s row-level security: (enabled, forced, [(policy, using, with check)])."""
    cursor.execute(
        "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = %s::regclass",
        [table],
    )
    enabled, forced = cursor.fetchone()
    cursor.execute(
        "SELECT polname, pg_get_expr(polqual, polrelid), pg_get_expr(polwithcheck, polrelid)"
        " FROM pg_policy WHERE polrelid = %s::regclass ORDER BY polname",
        [table],
    )
    return enabled, forced, cursor.fetchall()


def _security_apply(cursor, table, security):
    enabled, forced, policies = security
    if enabled:
        cursor.execute(f'ALTER TABLE "{table}" ENABLE ROW LEVEL SECURITY')
    if forced:
        cursor.execute(f'ALTER TABLE "{table}" FORCE ROW LEVEL SECURITY')
    for name, using, check in policies:
        cursor.execute(
            f'CREATE POLICY "{name}" ON "{table}"'
            + (f" USING ({using})" if using else "")
            + (f" WITH CHECK ({check})" if check else "")
        )


def _index_sql(definition, table):
    # "CREATE INDEX name ON [ONLY] public.audience_event_… USING …" for `table`.
    head, _, tail = definition.partition(" ON ")
    tail = tail.removeprefix("ONLY ")
    tail = tail.split(" USING ", 1)[1]
    return f'{head} ON "{table}" USING {tail}'


def _sequence_next(cursor, table):
    """The next id `table`'s id column would hand out, and no less than max(id) + 1."""
    cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
    (sequence,) = cursor.fetchone()
    cursor.execute(f"SELECT last_value, is_called FROM {sequence}")
    last, called = cursor.fetchone()
    cursor.execute(f'SELECT max(id) FROM "{table}"')
    (highest,) = cursor.fetchone()
    return max(last + 1 if called else last, (highest or 0) + 1)


def _foreign_keys(cursor, table):
    """(name, definition) of `table`'s foreign keys and checks (LIKE copies neither)."""
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = %s::regclass AND contype IN ('f', 'c') ORDER BY conname",
        [table],
    )
    return cursor.fetchall()


def _partitions(cursor, table):
    cursor.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = %s::regclass ORDER BY c.relname",
        [table],
    )
    return [name for (name,) in cursor.fetchall()]


def _security_off(cursor, table):
    # Read every row whatever the session's tenant scope: the table is about to go.
    cursor.execute(f'ALTER TABLE "{table}" NO FORCE ROW LEVEL SECURITY')
    cursor.execute(f'ALTER TABLE "{table}" DISABLE ROW LEVEL SECURITY')


def _aside(cursor):
    """Rename the events table out of the way, with its sequence, and drop its indexes (their
    names are wanted); returns what the new table needs of it."""
    kept = {
        "indexes": _indexes(cursor, EVENTS),
        "constraints": _foreign_keys(cursor, EVENTS),
        "security": _security(cursor, EVENTS),
        "next_id": _sequence_next(cursor, EVENTS),
    }
    cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [EVENTS])
    (sequence,) = cursor.fetchone()
    cursor.execute(f'ALTER SEQUENCE {sequence} RENAME TO "{OLD}_id_seq"')
    cursor.execute(f'ALTER TABLE "{EVENTS}" RENAME TO "{OLD}"')
    for name, _ in kept["indexes"]:
        cursor.execute(f'DROP INDEX "{name}"')
    _security_off(cursor, OLD)
    for partition in _partitions(cursor, OLD):
        _security_off(cursor, partition)
    return kept


def _finish(cursor, kept, primary_key):
    """The primary key, indexes, constraints and row security of the new events table, built
    after the copy (faster than keeping them current row by row)."""
    cursor.execute(
        f'ALTER TABLE "{EVENTS}" ADD CONSTRAINT "{EVENTS}_pkey" PRIMARY KEY ({primary_key})'
    )
    for _, definition in kept["indexes"]:
        cursor.execute(_index_sql(definition, EVENTS))
    for name, definition in kept["constraints"]:
        cursor.execute(f'ALTER TABLE "{EVENTS}" ADD CONSTRAINT "{name}" {definition}')
    for partition in _partitions(cursor, EVENTS):
        _security_apply(cursor, partition, kept["security"])
    _security_apply(cursor, EVENTS, kept["security"])
    cursor.execute(f'ANALYZE "{EVENTS}"')


def _copy_checked(cursor, target):
    columns = _columns(cursor, OLD)
    cursor.execute(f'INSERT INTO "{target}" ({columns}) SELECT {columns} FROM "{OLD}"')
    copied = cursor.rowcount
    cursor.execute(f'SELECT count(*) FROM "{OLD}"')
    (rows,) = cursor.fetchone()
    if copied != rows:  # never expected; a half-converted table must not commit
        raise RuntimeError(f"copied {copied} of {rows} events")
    cursor.execute(f'DROP TABLE "{OLD}"')


def events_partition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    now = datetime.now(UTC)
    with schema_editor.connection.cursor() as cursor:
        kept = _aside(cursor)
        cursor.execute(
            "INSERT INTO audience_eventkey (tenant_id, message_id, occurred_at)"
            f' SELECT tenant_id, message_id, occurred_at FROM "{OLD}"'
        )
        # The oldest month to partition: the oldest holding data, leaving out rows older than
        # any team keeps (one stray date must not make a hundred empty partitions).
        floor = _month(now, -MONTHS_KEPT)
        cursor.execute(f'SELECT min(occurred_at) FROM "{OLD}" WHERE occurred_at >= %s', [floor])
        (earliest,) = cursor.fetchone()
        first = _month(now) if earliest is None else min(_month(earliest), _month(now))
        # The same columns (types, NOT NULL, defaults); ids from a sequence of its own, since
        # PostgreSQL 15 refuses identity columns on partitioned tables.
        cursor.execute(
            f'CREATE TABLE "{EVENTS}" (LIKE "{OLD}" INCLUDING DEFAULTS INCLUDING STORAGE)'
            " PARTITION BY RANGE (occurred_at)"
        )
        cursor.execute(f'CREATE SEQUENCE "{EVENTS}_id_seq" OWNED BY "{EVENTS}".id')
        cursor.execute(f"SELECT setval('\"{EVENTS}_id_seq\"', %s, false)", [kept["next_id"]])
        cursor.execute(
            f'ALTER TABLE "{EVENTS}" ALTER COLUMN id SET DEFAULT'
            f" nextval('\"{EVENTS}_id_seq\"'::regclass)"
        )
        start, last = first, _month(now, AHEAD)
        while start <= last:
            cursor.execute(
                f'CREATE TABLE "{_partition_name(start)}" PARTITION OF "{EVENTS}"'
                " FOR VALUES FROM (%s) TO (%s)",
                [start, _month(start, 1)],
            )
            start = _month(start, 1)
        cursor.execute(f'CREATE TABLE "{DEFAULT}" PARTITION OF "{EVENTS}" DEFAULT')
        _copy_checked(cursor, EVENTS)
        _finish(cursor, kept, "tenant_id, id, occurred_at")


def events_unpartition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        kept = _aside(cursor)
        # No nextval default: the id is an identity column again, as Django made it.
        cursor.execute(f'CREATE TABLE "{EVENTS}" (LIKE "{OLD}" INCLUDING STORAGE)')
        cursor.execute(
            f'ALTER TABLE "{EVENTS}" ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY'
            f" (START WITH {int(kept['next_id'])})"
        )
        _copy_checked(cursor, EVENTS)  # drops the partitions and their sequence too
        _finish(cursor, kept, "id")


def keys_fill(apps, schema_editor):
    """SQLite: every stored event's message id into the key table (PostgreSQL's conversion
    fills it from the rows it copies)."""
    if schema_editor.connection.vendor == "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO audience_eventkey (tenant_id, message_id, occurred_at)"
            f' SELECT tenant_id, message_id, occurred_at FROM "{EVENTS}"'
        )


def _id_unique(schema_editor, table):
    """Whether `table` has a unique index on its id column alone."""
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_index i JOIN pg_attribute a"
            " ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]"
            " WHERE i.indrelid = %s::regclass AND i.indisunique AND i.indnatts = 1"
            " AND a.attname = 'id'",
            [table],
        )
        return cursor.fetchone() is not None


class ForeignKeyUnconstrained(migrations.AlterField):
    """An AlterField to `db_constraint=False` whose reverse restores the single-column foreign
    key only where it can: once tenants/keys.py made the contact's primary key (id, tenant_id),
    no unique index on id alone is left to point at, and the composite key it installed,
    (tenant_id, contact_id), is the one that holds the rows."""

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        postgresql = schema_editor.connection.vendor == "postgresql"
        if postgresql and not _id_unique(schema_editor, "audience_contact"):
            return
        super().database_backwards(app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):

    dependencies = [
        ("audience", "0011_contact_search_upper_columns"),
        ("tenants", "0002_remove_sender_identity_fields"),
    ]

    operations = [
        migrations.CreateModel(
            name="EventKey",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "tenant_id",
                        "message_id",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                (
                    "tenant",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="tenants.tenant",
                    ),
                ),
                ("message_id", models.CharField(max_length=100)),
                ("occurred_at", models.DateTimeField()),
            ],
            options={
                "indexes": [
                    models.Index(
                        fields=["tenant", "occurred_at"], name="eventkey_tenant_time_idx"
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="Order",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "tenant",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="tenants.tenant",
                    ),
                ),
                (
                    "contact",
                    models.ForeignKey(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="orders",
                        to="audience.contact",
                    ),
                ),
                ("message_id", models.CharField(max_length=100)),
                ("occurred_at", models.DateTimeField()),
                ("value", models.DecimalField(decimal_places=6, max_digits=20, null=True)),
                ("currency", models.CharField(blank=True, max_length=3)),
                ("properties", models.JSONField(default=dict)),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("tenant", "message_id"), name="order_tenant_message_id"
                    )
                ],
                "indexes": [
                    models.Index(
                        fields=["tenant", "contact", "occurred_at"],
                        name="order_tenant_contact_time_idx",
                    ),
                    models.Index(fields=["tenant", "occurred_at"], name="order_tenant_time_idx"),
                ],
            },
        ),
        migrations.CreateModel(
            name="EventRollup",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "tenant",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="tenants.tenant",
                    ),
                ),
                ("day", models.DateField()),
                ("name", models.CharField(max_length=200)),
                ("events", models.PositiveBigIntegerField()),
                ("contacts", models.PositiveIntegerField()),
                ("revenue", models.DecimalField(decimal_places=6, default=0, max_digits=20)),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("tenant", "day", "name"), name="eventrollup_tenant_day_name"
                    )
                ],
            },
        ),
        ForeignKeyUnconstrained(
            model_name="identity",
            name="contact",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="identities",
                to="audience.contact",
            ),
        ),
        migrations.RunPython(keys_fill, migrations.RunPython.noop),
        migrations.RemoveConstraint(model_name="event", name="event_tenant_message_id"),
        ForeignKeyUnconstrained(
            model_name="event",
            name="contact",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="events",
                to="audience.contact",
            ),
        ),
        migrations.RunPython(events_partition, events_unpartition),
    ]
