"""The schema can be distributed by tenant (Citus) as it stands: the catalog itself is read.

Every table is a tenant table (distributed by `tenant_id`) or a reference table; a tenant table
holds `tenant_id` in its primary key, in every unique constraint and unique index, and on both
sides of every foreign key to another tenant table; no reference table points at a tenant
table. The same keys make PostgreSQL refuse a row of one team that points at another team's.
tenants/keys.py installs them after every migrate.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import ForeignKey
from django.test.utils import CaptureQueriesContext

from tenants.keys import (
    REFERENCE_TABLES,
    UNCONSTRAINED,
    citus_commands,
    fk_name,
    keys_install,
    keys_uninstall,
    tenant_links,
    tenant_models,
    tenant_tables,
)

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="keys with the tenant in them are installed on PostgreSQL only (Citus is PostgreSQL)",
)

TENANT = "tenant_id"


def _rows(sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return cursor.fetchall()


def _tables() -> dict[str, set[str]]:
    """{table: its columns} for this schema's tables; partitions are their parent's."""
    rows = _rows(
        "SELECT c.relname, a.attname FROM pg_class c"
        " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped"
        " WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition"
        " AND c.relnamespace = to_regnamespace(current_schema())"
    )
    tables: dict[str, set[str]] = {}
    for table, column in rows:
        tables.setdefault(table, set()).add(column)
    return tables


def _columns(keys: str, rel: str) -> str:
    return (
        f"ARRAY(SELECT a.attname FROM unnest({keys}) WITH ORDINALITY AS u(n, i)"
        f" JOIN pg_attribute a ON a.attrelid = {rel} AND a.attnum = u.n ORDER BY u.i)"
    )


def _constraints(kind: str) -> list[tuple[str, str, list[str], str, list[str]]]:
    """(name, table, columns, referenced table, referenced columns) of kind 'p', 'u' or 'f',
    on this schema's tables (partitions left out: theirs are their parent's)."""
    return _rows(
        f"SELECT k.conname, c.relname, {_columns('k.conkey', 'k.conrelid')},"
        f" COALESCE(f.relname, ''), {_columns('k.confkey', 'k.confrelid')}"
        " FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid"
        " LEFT JOIN pg_class f ON f.oid = k.confrelid"
        " WHERE k.contype = %s AND NOT c.relispartition"
        " AND c.relnamespace = to_regnamespace(current_schema()) ORDER BY 2, 1",
        [kind],
    )


def _snapshot() -> list[tuple[str, str, str]]:
    """Every key of the schema as PostgreSQL prints it."""
    return _rows(
        "SELECT c.relname, k.conname, pg_get_constraintdef(k.oid) FROM pg_constraint k"
        " JOIN pg_class c ON c.oid = k.conrelid WHERE k.contype IN ('p', 'u', 'f')"
        " AND c.relnamespace = to_regnamespace(current_schema()) ORDER BY 1, 2"
    )


def test_it_names_every_table_a_tenant_table_or_a_reference_table(db: None) -> None:
    tables = _tables()
    tenant, reference = set(tenant_tables()), set(REFERENCE_TABLES)
    assert not tenant & reference
    assert sorted(set(tables) - tenant - reference) == []
    # No stale names: every table either list names exists.
    assert sorted((tenant | reference) - set(tables)) == []
    for table in tenant:
        assert TENANT in tables[table], table
    # A table with a tenant column is distributed unless it is declared a reference table.
    assert sorted(t for t, columns in tables.items() if TENANT in columns) == sorted(
        tenant | {t for t in reference if TENANT in tables[t]}
    )


def test_it_holds_tenant_id_in_every_primary_key_of_a_tenant_table(db: None) -> None:
    tables = _tables()
    keys = {table: columns for _, table, columns, _, _ in _constraints("p")}
    for table in tenant_tables():
        assert TENANT in keys[table], (table, keys[table])
        if "id" in tables[table]:
            # Django finds rows by id alone: the key must still lead with it (or hold it).
            assert "id" in keys[table], (table, keys[table])


def test_it_holds_tenant_id_in_every_unique_constraint_and_index_of_a_tenant_table(
    db: None,
) -> None:
    rows = _rows(
        "SELECT t.relname, i.relname, pg_get_indexdef(x.indexrelid),"
        " EXISTS (SELECT 1 FROM unnest(x.indkey) AS k(n) JOIN pg_attribute a"
        "   ON a.attrelid = x.indrelid AND a.attnum = k.n WHERE a.attname = %s)"
        " FROM pg_index x JOIN pg_class t ON t.oid = x.indrelid"
        " JOIN pg_class i ON i.oid = x.indexrelid"
        " WHERE x.indisunique AND t.relname = ANY(%s)",
        [TENANT, tenant_tables()],
    )
    assert rows  # the primary keys at least
    lacking = [(table, index, definition) for table, index, definition, has in rows if not has]
    assert lacking == []
    for _, table, columns, _, _ in _constraints("u"):
        if table in tenant_tables():
            assert TENANT in columns, (table, columns)


def test_it_holds_tenant_id_on_both_sides_of_every_key_between_tenant_tables(db: None) -> None:
    tenant = set(tenant_tables())
    between = [fk for fk in _constraints("f") if fk[1] in tenant and fk[3] in tenant]
    assert between
    for name, table, columns, target, target_columns in between:
        assert TENANT in columns, (name, table, columns)
        # tenant_id points at tenant_id, not at some other column of the target.
        assert target_columns[columns.index(TENANT)] == TENANT, (name, target_columns)
        # And the target's side is a unique key (PostgreSQL demands it; Citus colocates on it).
        assert set(target_columns) == {TENANT, "id"}, (name, target, target_columns)


def test_it_lets_no_reference_table_point_at_a_tenant_table(db: None) -> None:
    tenant = set(tenant_tables())
    into_tenant = [
        (name, table, target)
        for name, table, _, target, _ in _constraints("f")
        if table in REFERENCE_TABLES and target in tenant
    ]
    assert into_tenant == []
    # Keys from tenant tables to reference tables are allowed (every one to tenants_tenant).
    assert any(
        table in tenant and target == "tenants_tenant"
        for _, table, _, target, _ in _constraints("f")
    )


def test_it_checks_every_relation_between_tenant_models_but_the_unconstrained_ones(
    db: None,
) -> None:
    """Every ForeignKey between two tenant models is either enforced by a composite key in the
    database or deliberately left without one (UNCONSTRAINED); none keeps Django's own
    single-column constraint, which would need a unique index on id alone."""
    owned = set(tenant_models())
    keys = {(table, tuple(columns), target) for _, table, columns, target, _ in _constraints("f")}
    labels = set()
    for model in owned:
        for field in model._meta.concrete_fields:
            if not isinstance(field, ForeignKey) or field.related_model not in owned:
                continue
            label = f"{model._meta.app_label}.{model.__name__}.{field.name}"
            labels.add(label)
            declared = field.db_constraint  # type: ignore[attr-defined]
            assert declared is False, f"{label}: declare it db_constraint=False"
            composite = (
                model._meta.db_table,
                (TENANT, field.column),
                field.related_model._meta.db_table,
            )
            assert (composite in keys) == (label not in UNCONSTRAINED), label
    assert sorted(UNCONSTRAINED - labels) == []  # no stale names
    assert len(tenant_links()) == len(labels) - len(UNCONSTRAINED)


def test_it_lists_tenant_tables_after_the_tables_they_point_at(db: None) -> None:
    order = {table: n for n, table in enumerate(tenant_tables())}
    for name, table, _, target, _ in _constraints("f"):
        if table in order and target in order and target != table:
            assert order[target] < order[table], (name, table, target)


def test_it_writes_the_commands_that_distribute_every_table_once_in_an_order_citus_takes(
    db: None,
) -> None:
    commands = citus_commands()
    made = [c.split("'")[1] for c in commands]
    assert sorted(made) == sorted(_tables())
    reference = [c for c in commands if "create_reference_table" in c]
    assert {c.split("'")[1] for c in reference} == set(REFERENCE_TABLES)
    distributed = commands[len(reference) :]
    anchor = distributed[0].split("'")[1]
    for command in distributed:
        assert "create_distributed_table(" in command and "'tenant_id'" in command, command
        assert command == distributed[0] or f"colocate_with => '{anchor}'" in command, command
    position = {table: n for n, table in enumerate(made)}
    for name, table, _, target, _ in _constraints("f"):
        if target != table:
            assert position[target] < position[table], (name, table, target)


def test_django_groups_a_tenant_tables_rows_by_all_their_columns(world: Any) -> None:
    """With (id, tenant_id) as the primary key, grouping by id alone no longer lets PostgreSQL
    select a row's other columns beside an aggregate (tenants/postgresql/base.py)."""
    from django.db.models import Count

    from segments.models import Segment

    Segment.objects.create(tenant=world.acme, name="All", rules={})
    rows = Segment.objects.filter(tenant=world.acme).annotate(members=Count("memberships"))
    assert [(s.name, s.members) for s in rows] == [("All", 0)]


def test_it_names_keys_predictably_within_postgresqls_63_bytes() -> None:
    assert fk_name("messaging_delivery", "contact_id") == "messaging_delivery_contact_id_tfk"
    long = fk_name("campaigns_a_table_with_a_rather_long_name_indeed", "another_long_column_id")
    assert len(long.encode()) <= 63 and long.endswith("_tfk")
    assert long == fk_name(
        "campaigns_a_table_with_a_rather_long_name_indeed", "another_long_column_id"
    )
    assert long != fk_name(
        "campaigns_a_table_with_a_rather_long_name_indeed", "another_long_col_id"
    )


def test_installing_the_keys_again_changes_nothing(db: None) -> None:
    before = _snapshot()
    with CaptureQueriesContext(connection) as queries:
        keys_install()
        keys_install()
    assert all(q["sql"].lstrip().upper().startswith("SELECT") for q in queries.captured_queries)
    assert _snapshot() == before


def _delivery(tenant: Any, email: str) -> Any:
    from audience.models import Contact
    from messaging.models import Channel, Delivery

    contact = Contact.objects.create(tenant=tenant, email=email)
    return Delivery.objects.create(
        tenant=tenant,
        contact=contact,
        channel=Channel.EMAIL,
        content={},
        source="test",
        idempotency_key=email,
    )


def test_it_installs_the_keys_inside_a_transaction_too(db: None) -> None:
    """No CONCURRENTLY there (PostgreSQL refuses it in a transaction): plain ALTERs."""
    before = _snapshot()
    keys_uninstall()
    assert not any(name.endswith("_tfk") for _, name, _ in _snapshot())
    keys_install()
    assert _snapshot() == before


@pytest.fixture
def keys_restored(transactional_db: None) -> Any:
    """The test may take the keys away; they are back afterwards, whatever happened."""
    try:
        yield
    finally:
        keys_install()


def test_it_converts_an_existing_database_keeping_its_rows_and_refuses_crossed_rows(
    keys_restored: None, world: Any
) -> None:
    """What the first migrate after upgrading does to a database made before the keys: the
    primary keys are rebuilt beside the old ones (CONCURRENTLY: outside a transaction), the
    foreign keys are added and validated against the rows already there. A row that points
    at another team's row stops it, naming the key, until the row is put right."""
    before = _snapshot()
    mine = _delivery(world.acme, "ann@example.com")
    theirs = _delivery(world.globex, "bea@example.com")
    keys_uninstall()
    assert ("messaging_delivery", "messaging_delivery_pkey", "PRIMARY KEY (id)") in _snapshot()
    # Made while nothing checked it: acme's message to globex's contact.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE messaging_delivery SET contact_id = %s WHERE id = %s",
            [theirs.contact_id, mine.pk],
        )

    with pytest.raises(RuntimeError, match="messaging_delivery_contact_id_tfk"):
        keys_install()

    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE messaging_delivery SET contact_id = %s WHERE id = %s",
            [mine.contact_id, mine.pk],
        )
    keys_install()
    assert _snapshot() == before
    assert not _rows(
        "SELECT conname FROM pg_constraint WHERE NOT convalidated AND conname LIKE %s", ["%_tfk"]
    )
    from messaging.models import Delivery

    assert Delivery.objects.filter(pk__in=[mine.pk, theirs.pk]).count() == 2


def _crossed(world: Any) -> list[tuple[str, Any]]:
    """Rows of acme that point at a row of globex, one per kind of reference, unsaved."""
    from audience.models import Contact
    from campaigns.models import Campaign, Variant
    from journeys.models import Journey, JourneyVersion
    from messaging.models import Channel, Delivery, Template
    from segments.models import Segment, SegmentMembership

    acme, globex = world.acme, world.globex
    contact = Contact.objects.create(tenant=globex, email="bea@example.com")
    segment = Segment.objects.create(tenant=globex, name="All", rules={})
    template = Template.objects.create(
        tenant=globex, name="Hi", channel=Channel.EMAIL, subject="Hi", html="<p>Hi</p>"
    )
    journey = Journey.objects.create(tenant=globex, name="Welcome")
    campaign = Campaign.objects.create(tenant=acme, name="Spring")
    return [
        (
            "messaging_delivery_contact_id_tfk",
            Delivery(
                tenant=acme,
                contact=contact,
                channel=Channel.EMAIL,
                content={},
                source="test",
                idempotency_key="x",
            ),
        ),
        (
            "segments_segmentmembership_segment_id_tfk",
            SegmentMembership(
                tenant=acme,
                segment=segment,
                contact=Contact.objects.create(tenant=acme, email="ann@example.com"),
            ),
        ),
        (
            "campaigns_variant_template_id_tfk",
            Variant(tenant=acme, campaign=campaign, key="A", template=template),
        ),
        (
            "journeys_journeyversion_journey_id_tfk",
            JourneyVersion(tenant=acme, journey=journey, number=1),
        ),
    ]


def test_the_database_refuses_a_row_that_points_at_another_teams_row(
    transactional_db: None, world: Any
) -> None:
    for key, row in _crossed(world):
        with pytest.raises(IntegrityError, match=key), transaction.atomic():
            row.save()  # refused when the transaction commits (the keys are deferred)
        assert type(row).objects.filter(tenant=world.acme).count() == 0, key
    # Within one team the same row is fine.
    with transaction.atomic():
        _delivery(world.acme, "cy@example.com")
