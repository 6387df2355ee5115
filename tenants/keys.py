"""Tenant keys: a schema that Citus can distribute by tenant (PostgreSQL; a no-op on SQLite).

Citus shards a table by one column — ours is `tenant_id` — and asks three things of the schema:
- the column is in every primary key and every unique constraint or index (a shard can only
  check uniqueness among its own rows);
- a foreign key between two distributed tables holds it on both sides (both rows must live in
  the same shard);
- a table no tenant owns, or one looked up before the tenant is known, is a *reference table*
  (one copy on every node, `REFERENCE_TABLES`), and it may not point at a distributed table.

On a single PostgreSQL the same keys make the database itself refuse a row of one team that
points at another team's row, which Django's single-column constraints never checked.

Django cannot point a ForeignKey at a composite primary key, so the models keep `id` as their
pk and declare every ForeignKey between two tenant tables `db_constraint=False`. After every
`migrate` (post_migrate, like tenants/rls.py: a table any app adds later is covered without
anyone remembering to) `keys_install` gives the database the rest, in this order:

1. A single-column foreign key that still points at a tenant table's `id` (a field not yet
   declared `db_constraint=False`) is dropped: it hangs on the primary key about to change.
2. Each tenant table's primary key `(id)` becomes `(id, tenant_id)`. Id first: Django finds rows
   by pk alone (save, refresh, `get(pk=…)`, its cascades), and PostgreSQL before 18 cannot use an
   index led by tenant_id for `id = …` (measured: a sequential scan of the whole table). A key
   that already holds tenant_id is kept (the partitioned events table's (tenant_id, id,
   occurred_at), EventKey's (tenant_id, message_id)).
3. Each ForeignKey between two tenant tables gets
   `FOREIGN KEY (tenant_id, <x>_id) REFERENCES <t> (tenant_id, id) DEFERRABLE INITIALLY DEFERRED`
   named `<table>_<column>_tfk` (`fk_name`), except those in `UNCONSTRAINED`.

An existing database is converted without blocking writes for long: the new key's index is built
CONCURRENTLY and swapped in by one quick ALTER; a foreign key is added NOT VALID and validated
apart (a partitioned table cannot, and validates at once). When everything is in place nothing
is sent: a routine `migrate` costs two catalog queries. A foreign key that existing rows break
(a row pointing at another team's) stops `migrate` with the constraint's name; the rows are
found with the query in the error.

One thing changes for Django: PostgreSQL lets a query select columns it does not group by only
when it groups by the table's whole primary key, and Django, which knows only `id`, would group
a tenant table's rows by id alone (`GROUP BY t.id` with an aggregate beside t's columns: an
error now). The project's database backend (tenants/postgresql/base.py) makes it group by every
selected column of a tenant table, as it always does on SQLite (which is how every such query of
ours is already tested).

`tests/test_citus_ready.py` reads the catalog and proves all of it; the distribution commands
and the migration path to Citus are in docs/operations.md.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import ForeignKey, Model

from tenants.rls import tenant_owned_models

log = logging.getLogger(__name__)

TENANT_COLUMN = "tenant_id"

# Tables Citus keeps whole on every node. Each is small, or read without a tenant, or both; none
# points at a tenant table (tests/test_citus_ready.py checks it: Citus refuses such a key).
REFERENCE_TABLES = frozenset(
    {
        # The teams themselves: every tenant table points at one, and the edge finds a team by
        # its slug before it knows its id.
        "tenants_tenant",
        # Who belongs to which team: read by user ("my teams") before any tenant is chosen.
        "tenants_membership",
        # API keys are found by their prefix before the tenant is known (authentication).
        "tenants_apikey",
        # People who sign in, and Django's permissions: no tenant of their own.
        "accounts_user",
        "accounts_user_groups",
        "accounts_user_user_permissions",
        "auth_group",
        "auth_group_permissions",
        "auth_permission",
        # Django's bookkeeping: content types, migrations applied, sessions, the admin's log.
        "django_admin_log",
        "django_content_type",
        "django_migrations",
        "django_session",
        # Beat's schedules: a campaign points at its periodic task (a key from a tenant table to
        # a reference table, which Citus allows).
        "django_celery_beat_clockedschedule",
        "django_celery_beat_crontabschedule",
        "django_celery_beat_intervalschedule",
        "django_celery_beat_periodictask",
        "django_celery_beat_periodictasks",
        "django_celery_beat_solarschedule",
        # Login lockout (django-axes): by user name and address, before anyone signs in.
        "axes_accessattempt",
        "axes_accessattemptexpiration",
        "axes_accessfailurelog",
        "axes_accesslog",
        # Process heartbeats and the beat lease: not tenant data.
        "ops_heartbeat",
        "ops_schedulerlease",
    }
)

# ForeignKeys between tenant tables deliberately left with no database constraint at all
# ("app_label.Model.field"). All are written in bulk from rows the same statement has just read
# (a campaign's freeze and release): PostgreSQL checks a foreign key row by row at COMMIT,
# re-locking the same parent row per child, which cost more than the insert itself (9 s per
# 100,000 recipients, bench/campaign.py; docs/architecture.md, "Cost per row"). Django's
# cascades still delete the rows with their parents. Events likewise: only ingestion writes
# them, for contacts it has just resolved and locked in the same transaction, and the check per
# event (a deferred trigger into the partitioned table's parent) cost ~20 µs of PostgreSQL CPU
# each, about a quarter more per event recorded (measured with bench/ingest.py's drain).
UNCONSTRAINED = frozenset(
    {
        "audience.Event.contact",
        "campaigns.Recipient.occurrence",
        "campaigns.Recipient.contact",
        "campaigns.Recipient.variant",
        "campaigns.Recipient.delivery",
        "messaging.Delivery.template",
    }
)


@dataclass(frozen=True)
class Link:
    """A ForeignKey between two tenant tables, as the composite key that stands for it."""

    table: str
    column: str
    target: str
    target_column: str

    @property
    def name(self) -> str:
        return fk_name(self.table, self.column)


def fk_name(table: str, column: str) -> str:
    """`<table>_<column>_tfk`, within PostgreSQL's 63 bytes (`_fit`)."""
    return _fit(f"{table}_{column}", "_tfk")


def _fit(stem: str, suffix: str) -> str:
    """`stem + suffix`, or when that passes PostgreSQL's 63 bytes the stem cut short with a hash
    of the whole: the same name on every run, so the install finds what it made."""
    name = f"{stem}{suffix}"
    if len(name.encode()) <= 63:
        return name
    digest = hashlib.md5(name.encode(), usedforsecurity=False).hexdigest()[:8]
    room = 63 - len(suffix.encode()) - len(digest) - 1
    return f"{stem.encode()[:room].decode(errors='ignore')}_{digest}{suffix}"


def tenant_models() -> list[type[Model]]:
    """Models whose rows belong to one tenant and are distributed by it: a `tenant` relation
    (tenants.rls's rule) and not a reference table."""
    return [m for m in tenant_owned_models() if m._meta.db_table not in REFERENCE_TABLES]


def _label(model: type[Model], field: Any) -> str:
    return f"{model._meta.app_label}.{model.__name__}.{field.name}"


def tenant_links() -> list[Link]:
    """Every ForeignKey between two tenant tables that gets a composite key (not UNCONSTRAINED)."""
    owned = set(tenant_models())
    links = []
    for model in owned:
        for field in _foreign_keys(model):
            target = _target(field)
            if target not in owned or _label(model, field) in UNCONSTRAINED:
                continue
            links.append(
                Link(
                    table=model._meta.db_table,
                    column=str(field.column),
                    target=target._meta.db_table,
                    target_column=str(field.target_field.column),
                )
            )
    return sorted(links, key=lambda link: (link.table, link.column))


def _foreign_keys(model: type[Model]) -> list[ForeignKey[Any, Any]]:
    """The model's ForeignKeys and OneToOneFields (a OneToOneField is a ForeignKey)."""
    return [f for f in model._meta.concrete_fields if isinstance(f, ForeignKey)]


def _target(field: ForeignKey[Any, Any]) -> type[Model]:
    target = field.remote_field.model
    assert not isinstance(target, str), target  # the app registry is ready: a class by now
    return target


def tenant_tables() -> list[str]:
    """The tenant tables, every table after the ones it points at (the order Citus needs them
    distributed in), else by name."""
    tables = sorted({m._meta.db_table for m in tenant_models()})
    parents: dict[str, set[str]] = {t: set() for t in tables}
    for model in tenant_models():
        for field in _foreign_keys(model):
            target = _target(field)._meta.db_table
            if target in parents and target != model._meta.db_table:
                parents[model._meta.db_table].add(target)
    ordered: list[str] = []
    while len(ordered) < len(tables):
        ready = [t for t in tables if t not in ordered and parents[t] <= set(ordered)]
        ordered.extend(ready or [t for t in tables if t not in ordered])  # a cycle: by name
    return ordered


@cache
def tenant_table_set() -> frozenset[str]:
    return frozenset(tenant_tables())


# --- the catalog -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Constraint:
    name: str
    table: str
    columns: tuple[str, ...]
    target: str  # foreign keys: the referenced table
    target_columns: tuple[str, ...]
    validated: bool
    deferred: bool  # DEFERRABLE INITIALLY DEFERRED


_COLUMNS = (
    "ARRAY(SELECT a.attname FROM unnest({keys}) WITH ORDINALITY AS u(n, i)"
    " JOIN pg_attribute a ON a.attrelid = {rel} AND a.attnum = u.n ORDER BY u.i)"
)


def _catalog(
    connection: BaseDatabaseWrapper,
) -> tuple[dict[str, str], list[Constraint], list[Constraint]]:
    """({table: relkind}, primary keys, foreign keys) of this schema's tables, partitions left
    out (they inherit their parent's keys)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, relkind FROM pg_class WHERE relkind IN ('r', 'p')"
            " AND NOT relispartition AND relnamespace = to_regnamespace(current_schema())"
        )
        kinds = dict(cursor.fetchall())
        cursor.execute(
            "SELECT k.conname, c.relname, k.contype, "
            + _COLUMNS.format(keys="k.conkey", rel="k.conrelid")
            + ", COALESCE(f.relname, ''), "
            + _COLUMNS.format(keys="k.confkey", rel="k.confrelid")
            + ", k.convalidated, k.condeferrable AND k.condeferred"
            " FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid"
            " LEFT JOIN pg_class f ON f.oid = k.confrelid"
            " WHERE k.contype IN ('p', 'f') AND NOT c.relispartition"
            " AND c.relnamespace = to_regnamespace(current_schema())"
        )
        rows = cursor.fetchall()
    primary: list[Constraint] = []
    foreign: list[Constraint] = []
    for name, table, kind, columns, target, target_columns, validated, deferred in rows:
        constraint = Constraint(
            name, table, tuple(columns), target, tuple(target_columns), validated, deferred
        )
        (primary if kind == "p" else foreign).append(constraint)
    return kinds, primary, foreign


def _key_with_tenant(columns: tuple[str, ...]) -> tuple[str, ...]:
    """A primary key's columns with tenant_id added: right after id (see the module's 2.)."""
    if "id" in columns:
        at = columns.index("id") + 1
        return (*columns[:at], TENANT_COLUMN, *columns[at:])
    return (TENANT_COLUMN, *columns)


def _matches(constraint: Constraint, link: Link) -> bool:
    return (
        constraint.table == link.table
        and constraint.columns == (TENANT_COLUMN, link.column)
        and constraint.target == link.target
        and constraint.target_columns == (TENANT_COLUMN, link.target_column)
        and constraint.deferred
    )


# --- install ---------------------------------------------------------------------------------


def keys_install(using: str = DEFAULT_DB_ALIAS, **kwargs: Any) -> None:
    """post_migrate: give the tenant tables the keys they lack (see the module's docstring)."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return
    qn = connection.ops.quote_name
    kinds, primary, foreign = _catalog(connection)
    tables = [t for t in tenant_tables() if t in kinds]
    owned = set(tables)
    links = [link for link in tenant_links() if link.table in owned and link.target in owned]
    pkeys = {c.table: c for c in primary}

    def run(sql: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute(sql)

    # 1. Single-column keys into a tenant table's id: in the way of its new primary key.
    swaps = [t for t in tables if t in pkeys and TENANT_COLUMN not in pkeys[t].columns]
    for fk in foreign:
        if fk.target in swaps and TENANT_COLUMN not in fk.target_columns:
            if fk.table not in owned:
                raise RuntimeError(
                    f"{fk.table} (not a tenant table) has a foreign key {fk.name} into the "
                    f"tenant table {fk.target}: Citus refuses that; make it a tenant table "
                    "or drop the key (tenants/keys.py)."
                )
            log.warning("keys: dropping %s on %s (a tenant table's id alone)", fk.name, fk.table)
            run(f"ALTER TABLE {qn(fk.table)} DROP CONSTRAINT {qn(fk.name)}")

    # 2. The primary keys.
    for table in swaps:
        old = pkeys[table]
        columns = ", ".join(qn(c) for c in _key_with_tenant(old.columns))
        if kinds[table] == "r" and not connection.in_atomic_block:
            # Built beside the old key without blocking writes, then swapped in at once.
            index = _fit(table, "_pkey_tenant")
            run(f"DROP INDEX IF EXISTS {qn(index)}")  # a build an interruption left invalid
            run(f"CREATE UNIQUE INDEX CONCURRENTLY {qn(index)} ON {qn(table)} ({columns})")
            run(
                f"ALTER TABLE {qn(table)} DROP CONSTRAINT {qn(old.name)},"
                f" ADD CONSTRAINT {qn(old.name)} PRIMARY KEY USING INDEX {qn(index)}"
            )
        else:
            run(
                f"ALTER TABLE {qn(table)} DROP CONSTRAINT {qn(old.name)},"
                f" ADD CONSTRAINT {qn(old.name)} PRIMARY KEY ({columns})"
            )

    # 3. The composite foreign keys: ours that are no longer wanted go, missing ones come.
    wanted = {link.name: link for link in links}
    for fk in foreign:
        if fk.table in owned and fk.name.endswith("_tfk"):
            link = wanted.get(fk.name)
            if link is None or not _matches(fk, link):
                run(f"ALTER TABLE {qn(fk.table)} DROP CONSTRAINT {qn(fk.name)}")
    present = [fk for fk in foreign if fk.table in owned]
    for link in links:
        found = next((fk for fk in present if _matches(fk, link)), None)
        if found is not None and found.validated:
            continue
        if found is None:
            partitioned = kinds[link.table] == "p"  # NOT VALID: not on partitioned tables
            run(
                f"ALTER TABLE {qn(link.table)} ADD CONSTRAINT {qn(link.name)}"
                f" FOREIGN KEY ({qn(TENANT_COLUMN)}, {qn(link.column)})"
                f" REFERENCES {qn(link.target)} ({qn(TENANT_COLUMN)}, {qn(link.target_column)})"
                " DEFERRABLE INITIALLY DEFERRED" + ("" if partitioned else " NOT VALID")
            )
            if partitioned:
                continue
        name = found.name if found is not None else link.name
        _validate(connection, link, name)


def _validate(connection: BaseDatabaseWrapper, link: Link, name: str) -> None:
    qn = connection.ops.quote_name
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {qn(link.table)} VALIDATE CONSTRAINT {qn(name)}")
    except Exception as error:
        # The key stays, NOT VALID (new rows are checked); the next migrate validates again.
        raise RuntimeError(
            f"{link.table}.{link.column}: rows point at another team's {link.target} row (or at "
            f"none), so {name} cannot be validated. Find them with: SELECT x.id FROM "
            f"{link.table} x WHERE x.{link.column} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "
            f"{link.target} t WHERE t.{link.target_column} = x.{link.column} AND "
            f"t.{TENANT_COLUMN} = x.{TENANT_COLUMN})"
        ) from error


def citus_commands(using: str = DEFAULT_DB_ALIAS) -> list[str]:
    """The statements that distribute this database on Citus, in an order Citus accepts: the
    reference tables, then the tenant tables, each after every table it points at (read from
    the catalog, so tables without a model, such as django_migrations, are placed too), all
    colocated with the first. docs/operations.md, "Citus"."""
    connection = connections[using]
    kinds, _, foreign = _catalog(connection)
    points_at: dict[str, set[str]] = {t: set() for t in kinds}
    for fk in foreign:
        if fk.table in points_at and fk.target in points_at and fk.target != fk.table:
            points_at[fk.table].add(fk.target)

    def ordered(tables: list[str]) -> list[str]:
        """`tables`, each after those of them it points at (a cycle: the rest by name)."""
        group, done = set(tables), list[str]()
        while len(done) < len(tables):
            ready = [t for t in tables if t not in done and points_at[t] & group <= set(done)]
            done.extend(ready or [t for t in tables if t not in done])
        return done

    reference = ordered(sorted(t for t in kinds if t in REFERENCE_TABLES))
    tenant = ordered([t for t in tenant_tables() if t in kinds])
    commands = [f"SELECT create_reference_table('{t}');" for t in reference]
    for table in tenant:
        colocate = "" if table == tenant[0] else f", colocate_with => '{tenant[0]}'"
        commands.append(f"SELECT create_distributed_table('{table}', '{TENANT_COLUMN}'{colocate});")
    return commands


def keys_uninstall(using: str = DEFAULT_DB_ALIAS) -> None:
    """Undo keys_install: the composite foreign keys go and the primary keys are `(id)` again.
    For migrating backwards past a migration that took a ForeignKey's database constraint
    away (its reverse creates Django's single-column key, which needs a unique `id`): a test
    that does so calls this first and keys_install() after."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return
    qn = connection.ops.quote_name
    kinds, primary, foreign = _catalog(connection)
    owned = {t for t in tenant_tables() if t in kinds}
    with connection.cursor() as cursor:
        for fk in foreign:
            if fk.table in owned and fk.columns[:1] == (TENANT_COLUMN,) and fk.target in owned:
                cursor.execute(f"ALTER TABLE {qn(fk.table)} DROP CONSTRAINT {qn(fk.name)}")
        for pk in primary:
            if pk.table in owned and pk.columns == ("id", TENANT_COLUMN):
                cursor.execute(
                    f"ALTER TABLE {qn(pk.table)} DROP CONSTRAINT {qn(pk.name)},"
                    f" ADD CONSTRAINT {qn(pk.name)} PRIMARY KEY (id)"
                )
