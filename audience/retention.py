"""Retention of raw events, per team (docs/retention.md).

A team keeps the current month and the `retention_months(tenant)` months before it; each night
(`audience.tasks.retention_apply`, 03:17 UTC) the events before that cutoff go, with their
dedupe keys (EventKey). What segments, journeys and analytics need beyond it stays: the order
ledger (Order), contact profiles (stage, cart, wishlist, consent…), journey enrollments,
campaign recipients and deliveries, and a daily rollup per event name (EventRollup), which is
written before any event it counts is removed.

On PostgreSQL events live in monthly partitions (audience/partitions.py). A cutoff is always
the first instant of a month, so every monthly partition is either wholly kept or wholly
expired for a team. A partition expired for some team is dropped when no team that still keeps
that month has a row in it; otherwise the expired teams' rows are deleted in batches of
`batch`, a transaction each, so no long transaction holds back vacuum or replication. Rows in
the default partition (times outside every monthly partition) go in batches too. On SQLite
(one plain table) every team's expired rows go in batches.

Safe to run twice, and two runs at once: every transaction that writes takes one
transaction-scoped advisory lock (no session locks: PgBouncer's transaction pooling would hand
them to another client), and each does a whole step: a partition's rollups and its drop
commit together; a batch deletes what is still there. Rollups merge with GREATEST, so a rerun
after a crash halfway through a team's deletes, which finds fewer events than the first build
counted, never lowers them.
"""

from __future__ import annotations

import json
import logging
import time as clock
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from django.db import OperationalError, ProgrammingError, connection, transaction
from django.db.models import Count, Min, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from audience.models import Event, EventKey, EventRollup, Order
from audience.orders import ORDER_EVENT
from audience.partitions import (
    DEFAULT,
    EVENTS,
    LOCK_TIMEOUT,
    Partition,
    month_add,
    month_start,
    partition_drop,
    partitions_list,
)
from audience.registry import before_events_removed
from core import rls
from tenants.models import Tenant

logger = logging.getLogger(__name__)

# pg_advisory_xact_lock(int, int): a key space apart from the single-bigint locks of
# audience/identity.py. 0x52455431 is "RET1".
LOCK_CLASS, LOCK_RETENTION = 0x52455431, 1
# The settings page counts what a setting would remove while the user types: on a team with
# hundreds of millions of old events an exact count would take minutes, so it gives up after
# this long and shows the planner's estimate instead.
PREVIEW_COUNT_TIMEOUT_MS = 1500
DROP_ATTEMPTS = 3
DROP_RETRY_SECONDS = 5
LOCK_NOT_AVAILABLE = "55P03"  # lock_timeout ran out
UNDEFINED_TABLE = "42P01"


# --- The cutoff (pure) --------------------------------------------------------------------------


def retention_months(tenant: Tenant) -> int:
    """How many months before the current one the team keeps: its own setting or the default."""
    return tenant.retention_months


def cutoff_for(months: int, *, now: datetime | None = None) -> datetime:
    """Events that occurred before this go: the first instant (UTC) of the month `months`
    before the current UTC month."""
    return month_add(now or timezone.now(), -months)


def retention_cutoff(tenant: Tenant, *, now: datetime | None = None) -> datetime:
    return cutoff_for(retention_months(tenant), now=now)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


# --- What a setting would remove (the settings page) --------------------------------------------


@dataclass(frozen=True)
class RetentionPreview:
    months: int
    cutoff: datetime  # events before it go
    events: int  # stored events before the cutoff: what the next run removes
    events_exact: bool  # False: `events` is the planner's estimate (too many to count quickly)
    orders_kept: int  # orders before the cutoff: they stay (with profiles and rollups)
    oldest: datetime | None  # the oldest event stored
    months_removed: int  # calendar months of stored events that go

    @property
    def last_month_removed(self) -> datetime:
        return month_add(self.cutoff, -1)


def retention_preview(
    tenant: Tenant, months: int, *, now: datetime | None = None
) -> RetentionPreview:
    """What keeping `months` months would remove from the team's stored events, and what stays."""
    cutoff = cutoff_for(months, now=now)
    expired = Event.objects.filter(tenant=tenant, occurred_at__lt=cutoff)
    orders = Order.objects.filter(tenant=tenant, occurred_at__lt=cutoff)
    # The oldest through the key table's (tenant, occurred_at) index: one index probe.
    oldest = EventKey.objects.filter(tenant=tenant).aggregate(at=Min("occurred_at"))["at"]
    events, exact = _count_quickly(expired)
    orders_kept, _ = _count_quickly(orders)
    months_removed = 0
    if oldest is not None and oldest < cutoff and events:
        first = month_start(oldest)
        months_removed = (cutoff.year - first.year) * 12 + cutoff.month - first.month
    return RetentionPreview(
        months=months,
        cutoff=cutoff,
        events=events,
        events_exact=exact,
        orders_kept=orders_kept,
        oldest=oldest,
        months_removed=months_removed,
    )


def _count_quickly(queryset: Any) -> tuple[int, bool]:
    """(count, exact): the exact count, or the planner's estimate when counting takes longer
    than PREVIEW_COUNT_TIMEOUT_MS (PostgreSQL)."""
    if connection.vendor != "postgresql":
        return queryset.count(), True
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            # Local to this transaction; put back by hand, since inside a caller's transaction
            # it would otherwise outlive this block.
            cursor.execute("SELECT current_setting('statement_timeout')")
            previous = cursor.fetchone()[0]
            cursor.execute(
                "SELECT set_config('statement_timeout', %s, true)", [str(PREVIEW_COUNT_TIMEOUT_MS)]
            )
            count = queryset.count()
            cursor.execute("SELECT set_config('statement_timeout', %s, true)", [previous])
            return count, True
    except OperationalError:  # the timeout (its savepoint rolled back, the setting with it)
        sql, params = queryset.values("pk").query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
            plan = cursor.fetchone()[0]
        plan = json.loads(plan) if isinstance(plan, str) else plan
        return int(plan[0]["Plan"]["Plan Rows"]), False


# --- Rollups ------------------------------------------------------------------------------------

# (tenant_id, day, name, events, distinct contacts, revenue)
RollupRow = tuple[int, date, str, int, int, Decimal]


def _rollup_rows(events: Any, orders: Any) -> list[RollupRow]:
    """(tenant_id, day, name, events, distinct contacts, revenue) for `events`; revenue is the
    value of the day's orders (all of them, from the ledger) on the order event's row."""
    counts = (
        events.annotate(day=TruncDate("occurred_at", tzinfo=UTC))
        .values("tenant_id", "day", "name")
        .annotate(n=Count("pk"), contacts=Count("contact_id", distinct=True))
        .order_by()
    )
    rows = [(r["tenant_id"], r["day"], r["name"], r["n"], r["contacts"]) for r in counts]
    order_days = {(t, d) for t, d, name, *_ in rows if name == ORDER_EVENT}
    revenue: dict[tuple[int, date], Decimal] = {}
    if order_days:
        for r in (
            orders.annotate(day=TruncDate("occurred_at", tzinfo=UTC))
            .values("tenant_id", "day")
            .annotate(value=Sum("value"))
            .order_by()
        ):
            revenue[(r["tenant_id"], r["day"])] = r["value"] or Decimal(0)
    return [
        (
            t,
            d,
            name,
            n,
            contacts,
            revenue.get((t, d), Decimal(0)) if name == ORDER_EVENT else Decimal(0),
        )
        for t, d, name, n, contacts in rows
    ]


def _rollups_merge(
    *, tenant_id: int | None, start: datetime | None, end: datetime
) -> list[RollupRow]:
    """Write the rollups of the events in [start, end) (of one tenant, or all): whole UTC days,
    since every bound given is a midnight. A day's rollup never goes down (GREATEST): a rerun
    that finds part of a day already deleted keeps the first, complete count. Returns the
    rows written: (tenant_id, day, name, events, contacts, revenue)."""
    window = Q(occurred_at__lt=end) & (Q(occurred_at__gte=start) if start else Q())
    events = Event.objects.filter(window)
    orders = Order.objects.filter(window)
    if tenant_id is not None:
        events, orders = events.filter(tenant_id=tenant_id), orders.filter(tenant_id=tenant_id)
    rows = _rollup_rows(events, orders)
    if not rows:
        return rows
    greatest = "GREATEST" if connection.vendor == "postgresql" else "MAX"
    table = EventRollup._meta.db_table
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {table} (tenant_id, day, name, events, contacts, revenue)"
            " VALUES (%s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (tenant_id, day, name) DO UPDATE SET"
            f" events = {greatest}({table}.events, excluded.events),"
            f" contacts = {greatest}({table}.contacts, excluded.contacts),"
            # The ledger keeps every order, so the day's value read now is the whole of it.
            " revenue = excluded.revenue",
            [(t, d, name, n, c, str(v)) for t, d, name, n, c, v in rows],
        )
    return rows


def rollups_build(*, tenant_id: int | None = None, until: date) -> int:
    """The daily rollups (EventRollup: events, distinct contacts, the day's order value, per
    event name) of every stored event before `until` (a UTC day), of one tenant or all.
    Idempotent; never lowers a count already written. Returns the rollup rows written."""
    with rls.system_scope(), transaction.atomic():
        _lock()
        return len(_rollups_merge(tenant_id=tenant_id, start=None, end=_midnight(until)))


# --- Applying it --------------------------------------------------------------------------------


@dataclass
class RetentionReport:
    partitions_dropped: list[str] = field(default_factory=list)
    partitions_busy: list[str] = field(default_factory=list)  # left for the next run: locked
    rows_deleted: dict[int, int] = field(default_factory=dict)  # tenant id -> events removed
    keys_deleted: int = 0
    rollups: int = 0  # rollup rows written

    @property
    def events_deleted(self) -> int:
        return sum(self.rows_deleted.values())

    def add(self, tenant_id: int, rows: int) -> None:
        if rows:
            self.rows_deleted[tenant_id] = self.rows_deleted.get(tenant_id, 0) + rows


def _lock() -> None:
    """Serialise the writing steps of concurrent runs until this transaction ends."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [LOCK_CLASS, LOCK_RETENTION])


def _cutoffs(now: datetime) -> dict[int, datetime]:
    return {tenant.pk: retention_cutoff(tenant, now=now) for tenant in Tenant.objects.all()}


def retention_apply(*, now: datetime | None = None, batch: int = 10_000) -> RetentionReport:
    """Remove every team's events before its cutoff, and their keys; rollups first. Never
    touches orders, rollups, contacts or anything hanging on them."""
    now = now or timezone.now()
    report = RetentionReport()
    with rls.system_scope():
        cutoffs = _cutoffs(now)
        if not cutoffs:
            return report
        # What other apps count from these events is kept first (campaigns freeze results).
        for tenant_id, cutoff in cutoffs.items():
            before_events_removed(tenant_id, cutoff)
        partitions = partitions_list()  # [] on SQLite
        if connection.vendor == "postgresql":
            for partition in partitions:
                _partition_expire(partition, cutoffs, report, batch)
            _leftovers_expire(DEFAULT, cutoffs, report, batch)
        else:
            for tenant_id, cutoff in cutoffs.items():
                report.rollups += _tenant_rollups(tenant_id, None, cutoff)
                report.add(tenant_id, _sqlite_events_delete(tenant_id, cutoff, batch))
        # The keys of events still stored (in a month left for the next run) stay with them.
        busy = [(p.start, p.end) for p in partitions if p.name in report.partitions_busy]
        for tenant_id, cutoff in cutoffs.items():
            report.keys_deleted += _keys_delete(tenant_id, cutoff, batch, keep=busy)
    logger.info(
        "retention: %d events of %d teams removed (%d keys), %d rollup rows written,"
        " partitions dropped: %s; left for the next run (locks busy): %s",
        report.events_deleted,
        len(report.rows_deleted),
        report.keys_deleted,
        report.rollups,
        ", ".join(report.partitions_dropped) or "none",
        ", ".join(report.partitions_busy) or "none",
    )
    return report


def _tenant_rollups(tenant_id: int, start: datetime | None, end: datetime) -> int:
    with transaction.atomic():
        _lock()
        return len(_rollups_merge(tenant_id=tenant_id, start=start, end=end))


def _partition_expire(
    partition: Partition, cutoffs: dict[int, datetime], report: RetentionReport, batch: int
) -> None:
    try:
        _partition_expire_rows(partition, cutoffs, report, batch)
    except ProgrammingError as exc:
        if getattr(exc.__cause__, "sqlstate", None) != UNDEFINED_TABLE:
            raise
        # Another run dropped it between our list and our look: its rows are gone already.


def _partition_expire_rows(
    partition: Partition, cutoffs: dict[int, datetime], report: RetentionReport, batch: int
) -> None:
    # Cutoffs and monthly partitions both start at a month's first instant, so a partition is
    # wholly expired or wholly kept for each team; a partition of another size is handled too
    # (its rows before a cutoff inside it go in batches).
    expired = {t: c for t, c in cutoffs.items() if c > partition.start}
    if not expired:
        return
    whole = [t for t, c in expired.items() if c >= partition.end]
    keeping = [t for t in cutoffs if t not in whole]
    # An empty month that a team still keeps stays: partitions_ensure would only make it again.
    kept_empty = bool(keeping) and not _has_rows(partition.name, None)
    if whole and not kept_empty and _partition_drop_if_unkept(partition, whole, keeping, report):
        return
    for tenant_id, cutoff in expired.items():
        before = cutoff if cutoff < partition.end else None
        if not _has_rows(partition.name, [tenant_id], before=before):
            continue
        report.rollups += _tenant_rollups(tenant_id, partition.start, min(cutoff, partition.end))
        report.add(tenant_id, _batches_delete(partition.name, tenant_id, before, batch))


class _Kept(Exception):
    """A team that keeps the partition's month has rows in it after all: roll back, delete."""


def _partition_drop_if_unkept(
    partition: Partition, whole: list[int], keeping: list[int], report: RetentionReport
) -> bool:
    """Drop the partition when no team that keeps its month has a row in it, its rollups
    written in the same transaction. The last look is made holding the events table's
    exclusive lock (which the drop needs anyway, taken in ingestion's order: the table before
    its partitions), so a keeping team's late event cannot slip in between look and drop. The
    lock is waited for a moment only (partition_drop's LOCK_TIMEOUT): rather than queue
    ingestion behind a long-running read, try again a little later, the next night at worst."""
    if keeping and _has_rows(partition.name, keeping):
        return False
    qn = connection.ops.quote_name
    for attempt in range(DROP_ATTEMPTS):
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                _lock()
                # The catalog itself, not to_regclass: that takes no lock and may answer from
                # this backend's cache a table another run has just dropped.
                cursor.execute(
                    "SELECT 1 FROM pg_class WHERE relname = %s"
                    " AND relnamespace = current_schema()::regnamespace",
                    [partition.name],
                )
                if cursor.fetchone() is None:
                    return True  # another run dropped it meanwhile
                # The rollups count every row the drop removes (one scan of the partition).
                rows = _rollups_merge(tenant_id=None, start=partition.start, end=partition.end)
                cursor.execute("SELECT current_setting('lock_timeout')")
                (before,) = cursor.fetchone()
                cursor.execute("SELECT set_config('lock_timeout', %s, true)", [LOCK_TIMEOUT])
                cursor.execute(f"LOCK TABLE {qn(EVENTS)} IN ACCESS EXCLUSIVE MODE")
                cursor.execute("SELECT set_config('lock_timeout', %s, true)", [before])
                # Every team but those the whole month expired for, read again under the lock:
                # a team made during this run (importing its history) keeps its rows too.
                keeping_now = list(
                    Tenant.objects.exclude(pk__in=whole).values_list("pk", flat=True)
                )
                if keeping_now and _has_rows(partition.name, keeping_now):
                    raise _Kept
                if not partition_drop(partition.name):
                    return True  # another run dropped it meanwhile: its report counts it
        except _Kept:
            return False
        except OperationalError as exc:
            if getattr(exc.__cause__, "sqlstate", None) != LOCK_NOT_AVAILABLE:
                raise
            clock.sleep(DROP_RETRY_SECONDS * (attempt + 1))
            continue
        for tenant_id, _, _, n, _, _ in rows:
            report.add(tenant_id, n)
        report.rollups += len(rows)
        report.partitions_dropped.append(partition.name)
        return True
    report.partitions_busy.append(partition.name)
    return True  # left whole for the next run: deleting its rows one by one is the worse way


def _has_rows(table: str, tenant_ids: list[int] | None, *, before: datetime | None = None) -> bool:
    """Whether `table` holds a row of these teams (of any, with None), before `before`."""
    tests, params = ["true"], list[Any]()
    if tenant_ids is not None:
        # One index probe per team (the primary key starts with tenant_id).
        tests.append("tenant_id = ANY(%s)")
        params.append(tenant_ids)
    if before is not None:
        tests.append("occurred_at < %s")
        params.append(before)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT EXISTS (SELECT 1 FROM {connection.ops.quote_name(table)}"
            f" WHERE {' AND '.join(tests)})",
            params,
        )
        return bool(cursor.fetchone()[0])


def _leftovers_expire(
    table: str, cutoffs: dict[int, datetime], report: RetentionReport, batch: int
) -> None:
    """The default partition's rows (occurred_at outside every monthly partition) before each
    team's cutoff."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [table])
        if cursor.fetchone()[0] is None:
            return
    for tenant_id, cutoff in cutoffs.items():
        if not _has_rows(table, [tenant_id], before=cutoff):
            continue
        # [None, cutoff) over the whole table: the monthly partitions before the cutoff are
        # gone or emptied by now, so this reads what is left, the default partition's rows.
        report.rollups += _tenant_rollups(tenant_id, None, cutoff)
        report.add(tenant_id, _batches_delete(table, tenant_id, cutoff, batch))


def _batches_delete(table: str, tenant_id: int, before: datetime | None, batch: int) -> int:
    """Delete the tenant's rows of one partition (before `before`, if given), `batch` rows per
    transaction. Each batch starts after the last id deleted (the primary key's order within
    the tenant), so no batch walks over the index entries its predecessors left dead."""
    qn = connection.ops.quote_name
    time_test = "AND occurred_at < %(before)s" if before else ""
    sql = (
        f"WITH gone AS (DELETE FROM {qn(table)} WHERE ctid = ANY(ARRAY("
        f"SELECT ctid FROM {qn(table)} WHERE tenant_id = %(tenant)s AND id > %(after)s"
        f" {time_test} ORDER BY id LIMIT %(batch)s)) RETURNING id)"
        " SELECT count(*), max(id) FROM gone"
    )
    deleted, after = 0, 0
    while True:
        with transaction.atomic():
            _lock()
            with connection.cursor() as cursor:
                cursor.execute(
                    sql, {"tenant": tenant_id, "after": after, "before": before, "batch": batch}
                )
                n, last = cursor.fetchone()
        deleted += n
        if n < batch:
            return deleted
        after = last


def _sqlite_events_delete(tenant_id: int, cutoff: datetime, batch: int) -> int:
    expired = Event.objects.filter(tenant_id=tenant_id, occurred_at__lt=cutoff)
    deleted = 0
    while ids := list(expired.order_by("pk").values_list("pk", flat=True)[:batch]):
        with transaction.atomic():
            n, _ = Event.objects.filter(tenant_id=tenant_id, pk__in=ids).delete()
        deleted += n
    return deleted


def _keys_delete(
    tenant_id: int, cutoff: datetime, batch: int, *, keep: list[tuple[datetime, datetime]]
) -> int:
    """The dedupe keys of the removed events (each key carries its event's time), in batches;
    not those in the `keep` ranges (whose events are still stored). A key that outlives its
    event a while only refuses a resent old message, as before."""
    kept = Q()
    for start, end in keep:
        kept |= Q(occurred_at__gte=start, occurred_at__lt=end)
    keys = EventKey.objects.filter(tenant_id=tenant_id, occurred_at__lt=cutoff).exclude(kept)
    deleted = 0
    if connection.vendor != "postgresql":
        while ids := list(keys.values_list("message_id", flat=True)[:batch]):
            with transaction.atomic():
                n, _ = EventKey.objects.filter(tenant_id=tenant_id, message_id__in=ids).delete()
            deleted += n
        return deleted
    table = connection.ops.quote_name(EventKey._meta.db_table)
    ranges = "".join(
        f" AND NOT (occurred_at >= %(s{i})s AND occurred_at < %(e{i})s)" for i in range(len(keep))
    )
    params: dict[str, Any] = {"tenant": tenant_id, "cutoff": cutoff, "batch": batch}
    for i, (start, end) in enumerate(keep):
        params.update({f"s{i}": start, f"e{i}": end})
    # Through the (tenant_id, occurred_at) index, each batch from the last time deleted on.
    sql = (
        f"WITH gone AS (DELETE FROM {table} WHERE ctid = ANY(ARRAY("
        f"SELECT ctid FROM {table} WHERE tenant_id = %(tenant)s"
        f" AND occurred_at >= %(after)s AND occurred_at < %(cutoff)s{ranges}"
        " ORDER BY occurred_at LIMIT %(batch)s)) RETURNING occurred_at)"
        " SELECT count(*), max(occurred_at) FROM gone"
    )
    after = datetime(1, 1, 1, tzinfo=UTC)
    while True:
        with transaction.atomic():
            _lock()
            with connection.cursor() as cursor:
                cursor.execute(sql, {**params, "after": after})
                n, last = cursor.fetchone()
        deleted += n
        if n < batch:
            return deleted
        after = last
