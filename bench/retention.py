#!/usr/bin/env python
# ruff: noqa: T201  (a command-line report: printing is its job)
"""Retention benchmark (issue 17): `audience.retention.retention_apply()` over 10M events in
monthly partitions, against a plain `DELETE … WHERE occurred_at < cutoff` of the same rows on an
unpartitioned copy of the table: time, and the bloat each leaves.

    .venv/bin/python bench/retention.py [--events N] [--months N] [--retention LIST] [--keep]

One run, on its own database (nothing touches the development data):

1. Recreates a PostgreSQL database (default `wayfarer_bench_retention` on 127.0.0.1, dropped
   afterwards) and migrates it. Creates one tenant per entry of `--retention` (months of raw
   events it keeps; `default` leaves the team setting empty, so the product's
   WAYFARER_EVENT_RETENTION_MONTHS applies, 25 unless `--default-months` says otherwise).
2. Seeds, not timed, with `INSERT … SELECT generate_series` (the database writes the rows):
   `--contacts` contacts and `--events` events spread evenly over the last `--months` months up
   to now, the tenants interleaved in time as ingestion appends them, with a web shop's names,
   properties and context; one event key (audience_eventkey) per event. The monthly partitions
   are made by the product (`audience.partitions.partitions_ensure`, after one first event in
   the oldest month); the secondary indexes are dropped during the load and built once after it.
3. The baseline's table: `bench_event_plain`, the same rows in one unpartitioned table with the
   same indexes, plus the unique (tenant_id, message_id) index the events table had before
   issue 17 (the key table's job now). Then VACUUM ANALYZE, autovacuum off on every table
   measured (so the dead rows each way leaves stay to be counted), CHECKPOINT.
4. **Retention, first run**: `retention_apply(now=now, batch=--batch)`, in this process, as the
   beat's daily task runs it; timed, with the SQL it ran grouped by kind (statements, rows,
   seconds). Before and after: events and keys per tenant, partitions, heap and index sizes,
   dead tuples; then a plain VACUUM (timed) and the sizes again. The bloat left is the size
   beyond what the rows left would take packed (the size before, scaled by rows left / rows before).
5. **Baseline, first run**: on `bench_event_plain`, per tenant, `DELETE … WHERE tenant_id = %s
   AND occurred_at < %s` with the cutoff `retention_cutoff` gives: first the rows older than
   every tenant's cutoff (what whole partitions held), then each tenant's rest; same sizes, dead
   tuples, VACUUM. The rows deleted must be the rows retention removed, tenant by tenant.
6. **A month later** (`--next-month`, on by default): both again with `now` one month on, as
   the task finds it every month in steady state: one more partition past every cutoff, one
   more month of each shorter-retention tenant.
7. Prints the report and drops the database (`--keep` keeps it).

Exit status: 0 when the measurement completed; 1 when it could not run, or a check FAILED (the
two ways removed different rows, or retention left an event past its tenant's cutoff); 2 for
bad arguments.
"""

from __future__ import annotations

import argparse
import calendar
import dataclasses
import os
import re
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
from campaign import insert_select
from common import (
    BenchDatabase,
    BenchError,
    conditions_lines,
    django_environment,
    django_on_bench_database,
    log,
    machine_description,
    python_speed,
    terminated,
)

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/wayfarer_bench_retention"
DEFAULT_RETENTION = "default,default,13,6"
PLAIN = "bench_event_plain"  # the baseline's unpartitioned copy of the events
CHUNK = 500_000  # events per seeding statement (progress lines)

# A browser's context, as analytics.js sends it: what makes an event row ~0.5 KB.
CONTEXT = (
    '{"ip": "203.0.113.7", "locale": "en-GB", "library": {"name": "analytics.js",'
    ' "version": "4.1.0"}, "page": {"path": "/products/tent-2p", "title": "Tent 2P",'
    ' "url": "https://shop.example/products/tent-2p", "referrer": "https://www.google.com/"},'
    ' "userAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like'
    ' Gecko) Chrome/126.0 Safari/537.36"}'
)


# --- command line --------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Wayfarer retention benchmark: retention_apply() over monthly event"
        " partitions against a plain DELETE of the same rows on an unpartitioned copy.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--events", type=int, default=10_000_000, help="events, all tenants")
    parser.add_argument(
        "--months", type=int, default=26, help="the events span this many months up to now"
    )
    parser.add_argument("--contacts", type=int, default=100_000, help="contacts, all tenants")
    parser.add_argument(
        "--retention",
        default=DEFAULT_RETENTION,
        help="one tenant per entry, each an equal share of the events: the months it keeps, or"
        " 'default' (the team setting left empty)",
    )
    parser.add_argument(
        "--default-months",
        type=int,
        default=None,
        help="WAYFARER_EVENT_RETENTION_MONTHS for the run (default: the product's)",
    )
    parser.add_argument(
        "--batch", type=int, default=10_000, help="retention_apply(batch=…): rows per DELETE"
    )
    parser.add_argument(
        "--next-month",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run both ways again one month later (the steady state)",
    )
    parser.add_argument(
        "--baseline",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the plain DELETE on an unpartitioned copy (doubles the disk the run needs)",
    )
    parser.add_argument(
        "--database-url",
        default=DEFAULT_DATABASE_URL,
        help="the bench database; it is DROPPED and recreated (host must be 127.0.0.1)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the bench database (drop it by hand later)"
    )
    args = parser.parse_args(argv)
    if args.events < 1_000 or args.contacts < 1 or args.batch < 1:
        parser.error("--events must be at least 1,000; --contacts and --batch positive")
    if not 2 <= args.months <= 240:
        parser.error("--months must be 2..240")
    args.tenant_months = []
    for entry in args.retention.split(","):
        entry = entry.strip()
        if entry == "default":
            args.tenant_months.append(None)
        elif entry.isdigit() and 1 <= int(entry) <= 120:
            args.tenant_months.append(int(entry))
        else:
            parser.error(f"--retention: {entry!r} is neither 'default' nor 1..120 months")
    if not args.tenant_months or len(args.tenant_months) > 26:
        parser.error("--retention names 1..26 tenants")
    if args.default_months is not None and not 1 <= args.default_months <= 120:
        parser.error("--default-months must be 1..120")
    try:
        args.database = BenchDatabase(args.database_url)
    except BenchError as exc:
        parser.error(str(exc))
    return args


def environment(args: argparse.Namespace, var_dir: Path) -> dict[str, str]:
    env = django_environment(args.database, var_dir)
    if args.default_months is not None:
        env["WAYFARER_EVENT_RETENTION_MONTHS"] = str(args.default_months)
    return env


# --- small helpers -------------------------------------------------------------------------------


def months_add(moment: datetime, months: int) -> datetime:
    """The same day and time `months` later (earlier when negative), the day capped at the
    month's last."""
    index = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def execute(statement: str, params: list[Any] | None = None) -> int:
    """One statement on Django's connection (autocommit); returns its rowcount."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return int(cursor.rowcount)


def fetch(statement: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return list(cursor.fetchall())


def mb(size: int) -> str:
    return f"{size / 1e6:,.0f} MB"


# --- seeding -------------------------------------------------------------------------------------


@dataclass
class TenantSeed:
    tenant: Any
    months: int | None  # None: the product's default
    first_contact: int = 0
    contacts: int = 0


def tenants_create(args: argparse.Namespace) -> list[TenantSeed]:
    from audience.models import Contact
    from tenants.models import Tenant
    from tenants.services import tenant_create

    seeds = []
    per_tenant = max(1, args.contacts // len(args.tenant_months))
    for n, months in enumerate(args.tenant_months):
        slug = f"bench-{chr(ord('a') + n)}"
        tenant = tenant_create(name=f"Bench {slug} ({months or 'default'})", slug=slug)
        Tenant.objects.filter(pk=tenant.pk).update(event_retention_months=months)
        tenant.refresh_from_db()
        made = insert_select(
            Contact,
            {
                "tenant_id": str(int(tenant.pk)),
                "email": f"'{slug}-' || lpad(i::text, 7, '0') || '@bench.example'",
                "user_id": "'u' || i",
            },
            "FROM generate_series(0, %s) AS i",
            [per_tenant - 1],
        )
        low, high = fetch(
            "SELECT min(id), max(id) FROM audience_contact WHERE tenant_id = %s", [tenant.pk]
        )[0]
        if made != per_tenant or high - low + 1 != per_tenant:
            raise BenchError(f"{slug}: contacts not contiguous ({made}, {low}..{high})")
        seeds.append(TenantSeed(tenant, months, first_contact=low, contacts=per_tenant))
    return seeds


def events_insert(seeds: list[TenantSeed], start: datetime, end: datetime, lo: int, hi: int) -> int:
    """Events lo..hi (inclusive) of the whole run: event i is at start + (end - start) * i / N,
    of tenant i mod T, of one of that tenant's contacts (a multiplicative hash spreads them)."""
    from audience.models import Event

    total = SEED_TOTAL[0]
    tenants = [int(s.tenant.pk) for s in seeds]
    firsts = [s.first_contact for s in seeds]
    counts = [s.contacts for s in seeds]
    t = len(seeds)
    name = (
        "CASE WHEN mod(i * 7, 100) < 60 THEN 'Product Viewed'"
        " WHEN mod(i * 7, 100) < 75 THEN 'Products Searched'"
        " WHEN mod(i * 7, 100) < 87 THEN 'Product Added'"
        " WHEN mod(i * 7, 100) < 95 THEN 'Checkout Started' ELSE 'Order Completed' END"
    )
    tenant = f"1 + mod(i, {t})"  # the tenant's place in the lists
    return insert_select(
        Event,
        {
            "tenant_id": (f"(%s::bigint[])[{tenant}]", [tenants]),
            "contact_id": (
                f"(%s::bigint[])[{tenant}] + mod(i * 2654435761, (%s::bigint[])[{tenant}])",
                [firsts, counts],
            ),
            "type": "'track'",
            "name": name,
            "properties": (
                "jsonb_build_object('product_id', 'sku-' || mod(i, 5000), 'price',"
                " mod(i, 200) + 0.99, 'currency', 'EUR', 'quantity', 1 + mod(i, 3))"
            ),
            "context": ("%s::jsonb", [CONTEXT]),
            "occurred_at": "at",
            "received_at": "at",
            "message_id": "md5(i::text)::uuid::text",
            "source": "'api'",
        },
        "FROM generate_series(%s, %s) AS i,"
        " LATERAL (SELECT %s::timestamptz + (i::float8 / %s) * %s::interval AS at) AS t",
        [lo, hi, start, total, end - start],
    )


SEED_TOTAL = [0]  # the run's event count, for events_insert


@dataclass
class Index:
    table: str
    name: str
    definition: str
    constraint: bool


def secondary_indexes(table: str) -> list[Index]:
    """The table's indexes but its primary key (for a partitioned table: the parent's, whose
    partitions' indexes go and come with them)."""
    rows = fetch(
        "SELECT i.relname, pg_get_indexdef(x.indexrelid), con.conname IS NOT NULL,"
        " pg_get_constraintdef(con.oid)"
        " FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid"
        " LEFT JOIN pg_constraint con ON con.conindid = x.indexrelid"
        "  AND con.conrelid = x.indrelid AND con.contype IN ('u', 'x')"
        " WHERE x.indrelid = %s::regclass AND NOT x.indisprimary ORDER BY 1",
        [table],
    )
    return [
        # A partitioned table's index reads "ON ONLY <table>": made so, it would cover no
        # partition.
        Index(table, name, cdef if is_con else re.sub(r" ON ONLY ", " ON ", idef), is_con)
        for name, idef, is_con, cdef in rows
    ]


def indexes_drop(indexes: list[Index]) -> None:
    for index in indexes:
        if index.constraint:
            execute(f'ALTER TABLE "{index.table}" DROP CONSTRAINT "{index.name}"')
        else:
            execute(f'DROP INDEX "{index.name}"')


def indexes_build(indexes: list[Index]) -> None:
    for index in indexes:
        if index.constraint:
            execute(f'ALTER TABLE "{index.table}" ADD CONSTRAINT "{index.name}" {index.definition}')
        else:
            execute(index.definition)


def seed(args: argparse.Namespace, seeds: list[TenantSeed], now: datetime) -> dict[str, float]:
    """Events and their keys, written by the database; returns the seconds of each step."""
    from audience.models import EventKey
    from audience.partitions import month_start, partitions_ensure

    seconds: dict[str, float] = {}
    start = months_add(month_start(now), -args.months)
    SEED_TOTAL[0] = args.events
    began = time.perf_counter()
    execute("SET maintenance_work_mem = '1GB'")
    # The first event alone, in the oldest month: the product then makes every partition from
    # that month to now (and ahead), so that the load goes straight into its months.
    events_insert(seeds, start, now, 0, 0)
    partitions_ensure(now=now)
    indexes = secondary_indexes("audience_event") + secondary_indexes(EventKey._meta.db_table)
    indexes_drop(indexes)
    seconds["partitions, indexes dropped"] = time.perf_counter() - began
    began = time.perf_counter()
    for lo in range(1, args.events, CHUNK):
        hi = min(args.events - 1, lo + CHUNK - 1)
        events_insert(seeds, start, now, lo, hi)
        log(f"  events: {hi + 1:,} of {args.events:,}")
    seconds["INSERT events"] = time.perf_counter() - began
    began = time.perf_counter()
    keys = insert_select(
        EventKey,
        {"tenant_id": "tenant_id", "message_id": "message_id", "occurred_at": "occurred_at"},
        "FROM audience_event",
        [],
    )
    if keys != args.events:
        raise BenchError(f"{keys:,} event keys for {args.events:,} events")
    seconds["INSERT event keys"] = time.perf_counter() - began
    log(f"building {len(indexes)} secondary indexes")
    began = time.perf_counter()
    indexes_build(indexes)
    seconds["index build"] = time.perf_counter() - began
    return seconds


def plain_copy() -> float:
    """The baseline's table: the same rows unpartitioned, the same indexes, plus the unique
    (tenant_id, message_id) the events table had before issue 17."""
    began = time.perf_counter()
    execute(f"CREATE TABLE {PLAIN} (LIKE audience_event)")
    execute(f"INSERT INTO {PLAIN} SELECT * FROM audience_event")
    execute(f"ALTER TABLE {PLAIN} ADD PRIMARY KEY (id)")
    for index in secondary_indexes("audience_event"):
        definition = re.sub(
            r" ON (ONLY )?(public\.)?audience_event ", f" ON {PLAIN} ", index.definition
        )
        if index.constraint:
            execute(f'ALTER TABLE {PLAIN} ADD CONSTRAINT "plain_{index.name}" {definition}')
        else:
            execute(definition.replace(f"INDEX {index.name} ", f"INDEX plain_{index.name} ", 1))
    execute(f"CREATE UNIQUE INDEX plain_tenant_message_id ON {PLAIN} (tenant_id, message_id)")
    return time.perf_counter() - began


def partition_layout() -> str:
    """Where the seeded events went: the monthly partitions the product made, and the rows
    that no month holds (the default partition). Retention drops months, not the default."""
    from audience.partitions import DEFAULT, partitions_list

    months = partitions_list()
    waiting = fetch(f"SELECT count(*) FROM {DEFAULT}")[0][0]
    span = f", {months[0].name} to {months[-1].name}" if months else ""
    return (
        f"{len(months)} monthly partitions{span}; {waiting:,} events in the default partition"
        + (" (months without a partition: retention deletes them in batches)" if waiting else "")
    )


def leaves(table: str) -> list[str]:
    """The table itself, or a partitioned table's partitions."""
    rows = fetch(
        "SELECT relid::regclass::text FROM pg_partition_tree(%s::regclass) WHERE isleaf", [table]
    )
    return [r[0] for r in rows] or [table]


def autovacuum_off(tables: list[str]) -> None:
    """So the dead rows each way leaves stay until the bench's own VACUUM counts them."""
    for table in tables:
        for leaf in leaves(table):
            execute(f"ALTER TABLE {leaf} SET (autovacuum_enabled = false)")


# --- measuring -----------------------------------------------------------------------------------


@dataclass
class Sizes:
    heap: int
    indexes: int
    dead: int
    rows: int


def sizes(tables: list[str]) -> Sizes:
    """Heap (with TOAST) and index bytes, dead tuples and live rows of the tables, partitions
    summed."""
    from django.db import connection

    # Statistics reach shared memory when a backend goes idle; make the last writer's count.
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
    time.sleep(1.0)
    names = [leaf for table in tables for leaf in leaves(table)]
    heap, indexes, dead = fetch(
        "SELECT coalesce(sum(pg_table_size(c.oid)), 0), coalesce(sum(pg_indexes_size(c.oid)), 0),"
        " coalesce(sum(pg_stat_get_dead_tuples(c.oid)), 0)"
        " FROM pg_class c WHERE c.oid = ANY(%s::regclass[])",
        [names],
    )[0]
    rows = sum(fetch(f"SELECT count(*) FROM {table}")[0][0] for table in tables)
    return Sizes(int(heap), int(indexes), int(dead), int(rows))


def per_tenant(table: str) -> Counter[int]:
    return Counter(dict(fetch(f"SELECT tenant_id, count(*) FROM {table} GROUP BY 1")))


class StatementLog:
    """An execute wrapper: statements by kind, with their seconds (and rows, where the driver
    says)."""

    KINDS = [
        (re.compile(r'DELETE FROM "?audience_eventkey'), "DELETE keys, in batches"),
        (re.compile(r'DELETE FROM "?audience_event'), "DELETE events, in batches"),
        (re.compile(r"^\s*LOCK TABLE", re.I), "LOCK TABLE (a drop's lock)"),
        (re.compile(r"DETACH PARTITION", re.I), "DETACH PARTITION"),
        (re.compile(r"^\s*DROP TABLE", re.I), "DROP TABLE (the partition)"),
        (re.compile(r'INSERT INTO "?audience_eventrollup'), "INSERT rollups"),
        (re.compile(r'FROM "?audience_order"'), "rollups: read the orders' value"),
        (re.compile(r"GROUP BY", re.I), "rollups: count events by day and name"),
        (re.compile(r"SELECT EXISTS", re.I), "look for rows (EXISTS)"),
        (re.compile(r"pg_advisory_xact_lock"), "advisory lock"),
    ]

    def __init__(self) -> None:
        self.seconds: Counter[str] = Counter()
        self.counts: Counter[str] = Counter()
        self.rows: Counter[str] = Counter()

    def kind(self, text: str) -> str:
        for pattern, label in self.KINDS:
            if pattern.search(text):
                return label
        return " ".join(text.split())[:40]

    def __call__(self, execute, sql_text, params, many, context):  # type: ignore[no-untyped-def]
        began = time.perf_counter()
        try:
            return execute(sql_text, params, many, context)
        finally:
            kind = self.kind(sql_text)
            self.seconds[kind] += time.perf_counter() - began
            self.counts[kind] += 1
            rowcount = getattr(context.get("cursor"), "rowcount", -1)
            if rowcount and rowcount > 0 and kind.startswith("INSERT"):
                self.rows[kind] += rowcount


@dataclass
class Side:
    """One way of removing the rows, in one run (first, a month later)."""

    label: str
    seconds: float = 0.0
    split: list[tuple[str, float, int]] = field(default_factory=list)  # what, seconds, rows
    before: Sizes | None = None
    after: Sizes | None = None
    vacuumed: Sizes | None = None
    vacuum_seconds: float = 0.0
    deleted: Counter[int] = field(default_factory=Counter)  # tenant id: events removed
    keys_left: int = 0
    partitions_before: int = 0
    partitions_dropped: list[str] = field(default_factory=list)
    dropped_rows: int = 0
    statements: StatementLog | None = None
    report: Any = None


def vacuum(tables: list[str]) -> float:
    began = time.perf_counter()
    for table in tables:
        execute(f"VACUUM {table}")
    return time.perf_counter() - began


def retention_run(now: datetime, batch: int) -> Side:
    from django.db import connection

    from audience.models import EventKey
    from audience.partitions import partitions_list
    from audience.retention import retention_apply

    tables = ["audience_event", EventKey._meta.db_table]
    side = Side("partitions + retention_apply")
    partitions = {p.name: p for p in partitions_list()}
    side.partitions_before = len(partitions)
    # Exact rows per partition (the estimates are not): what a dropped one held.
    held = dict(fetch("SELECT tableoid::regclass::text, count(*) FROM audience_event GROUP BY 1"))
    counts_before = per_tenant("audience_event")
    side.before = sizes(tables)
    execute("CHECKPOINT")
    log(f"retention_apply(now={now:%Y-%m-%d}, batch={batch})")
    side.statements = StatementLog()
    began = time.perf_counter()
    with connection.execute_wrapper(side.statements):
        side.report = retention_apply(now=now, batch=batch)
    side.seconds = time.perf_counter() - began
    after = {p.name for p in partitions_list()}
    side.partitions_dropped = sorted(set(partitions) - after)
    side.dropped_rows = sum(held.get(name, 0) for name in side.partitions_dropped)
    side.deleted = counts_before - per_tenant("audience_event")
    side.after = sizes(tables)
    side.keys_left = fetch(f"SELECT count(*) FROM {EventKey._meta.db_table}")[0][0]
    log("VACUUM (partitioned side)")
    side.vacuum_seconds = vacuum(tables)
    side.vacuumed = sizes(tables)
    return side


def baseline_run(now: datetime, seeds: list[TenantSeed]) -> Side:
    """The same rows with plain DELETEs: first what is older than every tenant's cutoff (what
    whole partitions held), then each tenant's rest."""
    from audience.retention import retention_cutoff

    side = Side("plain table + DELETE")
    cutoffs = {int(s.tenant.pk): retention_cutoff(s.tenant, now=now) for s in seeds}
    oldest = min(cutoffs.values())
    counts_before = per_tenant(PLAIN)
    side.before = sizes([PLAIN])
    execute("CHECKPOINT")
    log(f"baseline: DELETE from {PLAIN}")
    began = time.perf_counter()
    rows = execute(f"DELETE FROM {PLAIN} WHERE occurred_at < %s", [oldest])
    side.split.append(("older than every cutoff", time.perf_counter() - began, rows))
    middle = time.perf_counter()
    rest = 0
    for tenant_id, cutoff in cutoffs.items():
        if cutoff > oldest:
            rest += execute(
                f"DELETE FROM {PLAIN} WHERE tenant_id = %s AND occurred_at < %s",
                [tenant_id, cutoff],
            )
    side.split.append(("DELETE per tenant, the rest", time.perf_counter() - middle, rest))
    side.seconds = time.perf_counter() - began
    side.deleted = counts_before - per_tenant(PLAIN)
    side.after = sizes([PLAIN])
    log("VACUUM (baseline)")
    side.vacuum_seconds = vacuum([PLAIN])
    side.vacuumed = sizes([PLAIN])
    return side


def leftover_check(seeds: list[TenantSeed], now: datetime) -> list[str]:
    """Events retention should have removed and did not."""
    from audience.retention import retention_cutoff

    problems = []
    for s in seeds:
        cutoff = retention_cutoff(s.tenant, now=now)
        left = fetch(
            "SELECT count(*) FROM audience_event WHERE tenant_id = %s AND occurred_at < %s",
            [s.tenant.pk, cutoff],
        )[0][0]
        if left:
            problems.append(f"{s.tenant.slug}: {left:,} events before {cutoff:%Y-%m-%d} left")
    return problems


# --- the report ----------------------------------------------------------------------------------


def ratio(base: float, mine: float) -> str:
    if mine <= 0:
        return "—"
    return f"{base / mine:,.1f}x"


def bloat(side: Side, which: str) -> int:
    """Bytes beyond what the rows left would take packed (the size before scaled by the rows
    left): what VACUUM keeps as free space and never gives back."""
    assert side.before and side.vacuumed
    size_before = getattr(side.before, which)
    size_now = getattr(side.vacuumed, which)
    packed = size_before * side.vacuumed.rows / side.before.rows if side.before.rows else 0
    return max(0, int(size_now - packed))


def print_run(title: str, mine: Side, base: Side | None) -> None:
    print(f"\n{title}")
    rows: list[tuple[str, str, str, str]] = []

    def row(label: str, a: str, b: str = "", r: str = "") -> None:
        rows.append((label, a, b, r))

    def sz(s: Sizes | None, which: str) -> str:
        return mb(getattr(s, which)) if s else "—"

    removed_mine = sum(mine.deleted.values())
    removed_base = sum(base.deleted.values()) if base else 0
    row(
        "time to remove",
        f"{mine.seconds:,.1f} s",
        f"{base.seconds:,.1f} s" if base else "",
        ratio(base.seconds, mine.seconds) if base else "",
    )
    row("events removed", f"{removed_mine:,}", f"{removed_base:,}" if base else "")
    row(
        "  in whole partitions (dropped)",
        f"{mine.dropped_rows:,} ({len(mine.partitions_dropped)} of {mine.partitions_before})",
        f"{base.split[0][2]:,} in {base.split[0][1]:,.1f} s" if base else "",
    )
    row(
        "  deleted in batches / per tenant",
        f"{removed_mine - mine.dropped_rows:,}",
        f"{base.split[1][2]:,} in {base.split[1][1]:,.1f} s" if base else "",
    )
    row(
        "events (and keys) left",
        f"{mine.after.rows - mine.keys_left if mine.after else 0:,} ({mine.keys_left:,})",
        f"{base.after.rows:,}" if base and base.after else "",
    )
    for label, which in (("heap", "heap"), ("indexes", "indexes")):
        row(
            f"{label}: before → after → after VACUUM",
            f"{sz(mine.before, which)} → {sz(mine.after, which)} → {sz(mine.vacuumed, which)}",
            f"{sz(base.before, which)} → {sz(base.after, which)} → {sz(base.vacuumed, which)}"
            if base
            else "",
        )
    row(
        "dead tuples after",
        f"{mine.after.dead:,}" if mine.after else "",
        f"{base.after.dead:,}" if base and base.after else "",
    )
    row(
        "VACUUM afterwards",
        f"{mine.vacuum_seconds:,.1f} s",
        f"{base.vacuum_seconds:,.1f} s" if base else "",
        ratio(base.vacuum_seconds, mine.vacuum_seconds) if base else "",
    )
    row(
        "bloat left after VACUUM, heap / indexes",
        f"{mb(bloat(mine, 'heap'))} / {mb(bloat(mine, 'indexes'))}",
        f"{mb(bloat(base, 'heap'))} / {mb(bloat(base, 'indexes'))}" if base else "",
    )
    header = ("", mine.label, base.label if base else "", "plain / partitioned")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    for r in [header, tuple("-" * w for w in widths), *rows]:
        print("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    print("  (the partitioned side's sizes include the event keys: audience_eventkey)")
    if mine.statements:
        print("  where retention_apply's time went (SQL through Django, by kind):")
        stats = mine.statements
        for kind, seconds in stats.seconds.most_common(10):
            rows_text = f", {stats.rows[kind]:,} rows" if stats.rows[kind] else ""
            print(f"    {kind:<40} {stats.counts[kind]:>6,} statements{rows_text}, {seconds:.1f} s")
        other = mine.seconds - sum(stats.seconds.values())
        print(f"    {'outside SQL (Python, commits)':<40} {other:.1f} s")
    if mine.report is not None:
        report = mine.report
        if dataclasses.is_dataclass(report):
            report = dataclasses.asdict(report)  # type: ignore[arg-type]
        print(f"  RetentionReport: {report}")


def print_report(
    args: argparse.Namespace,
    machine: str,
    seeds: list[TenantSeed],
    seeded: dict[str, float],
    runs: list[tuple[str, Side, Side | None]],
    problems: list[str],
    plain_seconds: float,
    layout: str,
) -> None:
    from django.conf import settings

    print("\nWayfarer retention benchmark")
    print(f"  machine:    {machine}")
    for line in conditions_lines(args.load_at_start, args.python_speed, "slower figures"):
        print(line)
    default = settings.WAYFARER_EVENT_RETENTION_MONTHS
    tenants = ", ".join(
        f"{s.tenant.slug} {s.months or f'default ({default})'} months" for s in seeds
    )
    print(
        f"  parameters: {args.events:,} events over {args.months} months up to now,"
        f" {args.contacts:,} contacts, batch {args.batch:,}; tenants (equal shares): {tenants}"
    )
    steps = ", ".join(f"{k} {v:.0f} s" for k, v in seeded.items())
    print(f"  seeding (not timed): {steps}; the baseline's copy {plain_seconds:.0f} s")
    print(f"  layout:     {layout}")
    for title, mine, base in runs:
        print_run(title, mine, base)
    print(
        "\n  checks: "
        + (
            "; ".join(problems) + ": FAILED"
            if problems
            else "same rows removed both ways, none left past a cutoff: OK"
        )
    )


# --- main ----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.load_at_start = os.getloadavg()[0]
    args.python_speed = python_speed()
    signal.signal(signal.SIGTERM, terminated)
    try:
        with django_on_bench_database(
            args.database, keep=args.keep, environment=partial(environment, args)
        ):
            return measure(args)
    except (BenchError, psycopg.Error) as exc:
        print(f"\nbench/retention.py: {exc}", file=sys.stderr)
        return 1


def measure(args: argparse.Namespace) -> int:
    from django.db import connection

    if connection.vendor != "postgresql":
        raise BenchError("the retention benchmark needs PostgreSQL")
    try:
        from audience import partitions, retention  # noqa: F401
        from audience.models import EventKey
    except ImportError as exc:
        raise BenchError(f"this code has no partitioned events or retention yet: {exc}") from None
    machine = machine_description(args.database.server_version())
    now = datetime.now(UTC)
    seeds = tenants_create(args)
    log(f"seeding {args.events:,} events over {args.months} months ({len(seeds)} tenants)")
    seeded = seed(args, seeds, now)
    layout = partition_layout()
    log(layout)
    plain_seconds = 0.0
    if args.baseline:
        log(f"copying them into {PLAIN} (the baseline)")
        plain_seconds = plain_copy()
    log("VACUUM ANALYZE")
    execute("VACUUM ANALYZE")
    autovacuum_off(["audience_event", EventKey._meta.db_table] + ([PLAIN] if args.baseline else []))

    runs: list[tuple[str, Side, Side | None]] = []
    problems: list[str] = []
    moments = [("First run (the task's first day)", now)]
    if args.next_month:
        later = months_add(now, 1)
        moments.append((f"A month later (now = {later:%Y-%m-%d}): the steady state", later))
    for title, moment in moments:
        mine = retention_run(moment, args.batch)
        problems += leftover_check(seeds, moment)
        base = baseline_run(moment, seeds) if args.baseline else None
        if base is not None and base.deleted != mine.deleted:
            problems.append(
                f"{title}: removed per tenant {dict(mine.deleted)} (retention) vs"
                f" {dict(base.deleted)} (DELETE)"
            )
        runs.append((title, mine, base))
    print_report(args, machine, seeds, seeded, runs, problems, plain_seconds, layout)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
