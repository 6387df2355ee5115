"""The events table's monthly partitions (PostgreSQL): made ahead of the clock, listed, dropped.

`audience_event` is PARTITION BY RANGE (occurred_at) (migration 0012): one partition a month,
`audience_event_pYYYY_MM`, holding [first instant of the month, first instant of the next) in
UTC, and a DEFAULT partition, `audience_event_default`, for whatever no month holds yet (an event
dated years back or ahead). The hourly beat task (audience.tasks.partitions_maintain) runs
`partitions_ensure`: every month from the oldest partition to three ahead of the current one
exists, and rows that waited in the default partition move into a partition made for their
month. Retention (audience/retention.py) drops whole months, oldest first, with
`partition_drop`.

A new month is made as a plain table and then attached, which locks the events table only in
SHARE UPDATE EXCLUSIVE mode (ingestion and reads go on; CREATE TABLE … PARTITION OF would take
ACCESS EXCLUSIVE). Attaching does lock the default partition, which most reads of the table
touch: each month waits at most LOCK_TIMEOUT for it, else it is left to the next hour (with three
months made ahead, there are some two thousand chances before one is needed).

On SQLite the table is a plain one and everything here is a no-op.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import DatabaseError, connection, transaction
from django.db.backends.utils import CursorWrapper
from django.utils.timezone import now as _now

from core import rls
from tenants.models import RETENTION_MONTHS_MAX

logger = logging.getLogger(__name__)

EVENTS = "audience_event"
DEFAULT = "audience_event_default"
AHEAD = 3  # months of partitions made ahead of the current one
# No partition is made for a month older than this before the current one: no team keeps events
# that long (the longest retention it may choose), so such rows wait in the default partition for
# retention rather than adding a partition each.
MONTHS_KEPT = RETENTION_MONTHS_MAX
LOCK_TIMEOUT = "2s"
_NAME = re.compile(r"^audience_event_p(\d{4})_(\d{2})$")


@dataclass(frozen=True)
class Partition:
    name: str
    start: datetime  # first instant it holds (UTC)
    end: datetime  # first instant it no longer holds
    rows_estimate: int  # the planner's estimate (as of the last ANALYZE)
    bytes: int  # with its indexes and TOAST


def month_start(moment: datetime) -> datetime:
    """The first instant (UTC) of the UTC month holding `moment`."""
    moment = moment.astimezone(UTC)
    return datetime(moment.year, moment.month, 1, tzinfo=UTC)


def month_add(start: datetime, months: int) -> datetime:
    """The first instant of the month `months` after (or before) the month holding `start`."""
    start = month_start(start)
    index = start.year * 12 + start.month - 1 + months
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def partition_name(start: datetime) -> str:
    return f"audience_event_p{month_start(start):%Y_%m}"


def _postgresql() -> bool:
    return connection.vendor == "postgresql"


def partitions_list() -> list[Partition]:
    """The monthly partitions, oldest first (not the default one); [] on SQLite."""
    if not _postgresql() or not _partitioned():
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, c.reltuples, pg_total_relation_size(c.oid)"
            " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = %s::regclass",
            [EVENTS],
        )
        rows = cursor.fetchall()
    found = []
    for name, tuples, size in rows:
        matched = _NAME.match(name)
        if matched is None:
            continue  # the default partition
        start = datetime(int(matched[1]), int(matched[2]), 1, tzinfo=UTC)
        # reltuples is -1 until the first ANALYZE (or autovacuum) of the partition.
        found.append(Partition(name, start, month_add(start, 1), max(0, int(tuples)), size))
    return sorted(found, key=lambda p: p.start)


def partitions_ensure(*, now: datetime | None = None, ahead: int = AHEAD) -> list[str]:
    """Make the missing monthly partitions, every month from the oldest partition (or the oldest
    month of a row waiting in the default partition, if older) to `ahead` months after the
    current one, moving waiting rows into each new month's. Returns the names made. Safe to run
    at any time and twice at once (each month is one transaction; a month whose locks are not
    granted within LOCK_TIMEOUT waits for the next run). Partitions lacking the table's
    row-level security get it. PostgreSQL only; a no-op on SQLite."""
    if not _postgresql() or not _partitioned():
        return []
    current = month_start(now or _now())
    floor, last = month_add(current, -MONTHS_KEPT), month_add(current, ahead)
    with rls.system_scope():  # maintenance spans every tenant's rows
        existing = {p.start for p in partitions_list()}
        with connection.cursor() as cursor:
            # The oldest month of the rows waiting in the default partition (kept small: this
            # very function empties it of every month that has a partition).
            cursor.execute(
                f"SELECT min(occurred_at) FROM {DEFAULT} WHERE occurred_at >= %s"
                " AND occurred_at < %s",
                [floor, month_add(last, 1)],
            )
            (waiting,) = cursor.fetchone()
        start = max(floor, min([current, *existing, *([month_start(waiting)] if waiting else [])]))
        made = []
        while start <= last:
            if start not in existing and _partition_make(start):
                made.append(partition_name(start))
            start = month_add(start, 1)
        partitions_secure()
    return made


def _partition_make(start: datetime) -> bool:
    """Attach the month starting at `start`, with the default partition's rows of that month.
    False when it exists already or its locks were not granted in time."""
    name, end = partition_name(start), month_add(start, 1)
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            # First the parent, as ingestion does (then the default partition): one lock order.
            # SHARE UPDATE EXCLUSIVE conflicts with itself, so two runs make a month in turn.
            cursor.execute(f"LOCK TABLE {EVENTS} IN SHARE UPDATE EXCLUSIVE MODE")
            cursor.execute("SELECT to_regclass(%s)", [name])
            if cursor.fetchone()[0] is not None:
                return False  # another run made it meanwhile
            cursor.execute(
                f"CREATE TABLE {name} (LIKE {EVENTS} INCLUDING DEFAULTS INCLUDING STORAGE)"
            )
            _security_copy(cursor, name)
            cursor.execute(f"LOCK TABLE {DEFAULT} IN ACCESS EXCLUSIVE MODE")
            columns = _columns(cursor)
            cursor.execute(
                f"WITH moved AS (DELETE FROM {DEFAULT} WHERE occurred_at >= %s"
                f" AND occurred_at < %s RETURNING {columns})"
                f" INSERT INTO {name} ({columns}) SELECT {columns} FROM moved",
                [start, end],
            )
            moved = cursor.rowcount
            # Attaching builds the partition's share of every partitioned index and the key.
            cursor.execute(
                f"ALTER TABLE {EVENTS} ATTACH PARTITION {name} FOR VALUES FROM (%s) TO (%s)",
                [start, end],
            )
    except DatabaseError as exc:
        if getattr(exc.__cause__, "sqlstate", None) != "55P03":  # lock_not_available
            raise
        logger.warning("event partition %s not made: its locks were busy; next run", name)
        return False
    logger.info("event partition %s made (%d rows from the default partition)", name, moved)
    return True


def _columns(cursor: CursorWrapper) -> str:
    cursor.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0"
        " AND NOT attisdropped ORDER BY attnum",
        [EVENTS],
    )
    return ", ".join(f'"{name}"' for (name,) in cursor.fetchall())


def _security(cursor: CursorWrapper, table: str) -> tuple[bool, bool, dict[str, tuple[str, str]]]:
    """`table`'s row-level security: enabled, forced, {policy: (using, with check)}."""
    cursor.execute(
        "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = %s::regclass",
        [table],
    )
    enabled, forced = cursor.fetchone()
    cursor.execute(
        "SELECT polname, pg_get_expr(polqual, polrelid), pg_get_expr(polwithcheck, polrelid)"
        " FROM pg_policy WHERE polrelid = %s::regclass",
        [table],
    )
    return enabled, forced, {name: (using, check) for name, using, check in cursor.fetchall()}


def _security_copy(cursor: CursorWrapper, table: str) -> bool:
    """Give `table` the events table's row-level security (enabled, forced, the same policies),
    so a query naming a partition directly is held to the rule a query through the table is.
    Returns whether anything changed."""
    enabled, forced, policies = _security(cursor, EVENTS)
    has_enabled, has_forced, has = _security(cursor, table)
    statements = []
    if enabled and not has_enabled:
        statements.append(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    if forced and not has_forced:
        statements.append(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    statements += [f'DROP POLICY "{name}" ON {table}' for name in sorted(set(has) - set(policies))]
    for name, (using, check) in sorted(policies.items()):
        if name not in has:
            statements.append(
                f'CREATE POLICY "{name}" ON {table}'
                + (f" USING ({using})" if using else "")
                + (f" WITH CHECK ({check})" if check else "")
            )
    for statement in statements:
        cursor.execute(statement)
    return bool(statements)


def _partitioned() -> bool:
    """Whether the events table is partitioned (it is not before migration 0012)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [EVENTS])
        row = cursor.fetchone()
    return row is not None and row[0] == "p"


def partitions_secure() -> list[str]:
    """Give every partition the events table's row-level security where it lacks it (the
    policies come after `migrate` from tenants/rls.py, to the table, and a partition made before
    them has none). Returns the partitions changed."""
    if not _postgresql() or not _partitioned():
        return []
    changed = []
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = %s::regclass ORDER BY c.relname",
            [EVENTS],
        )
        for (name,) in cursor.fetchall():
            if _security_copy(cursor, name):
                changed.append(name)
    return changed


def partition_drop(name: str) -> bool:
    """Detach and drop a monthly partition, with its rows, inside the caller's transaction (if
    any); whether it dropped it. Nothing happens when it is gone already (two retention runs at
    once). The rows' keys (EventKey) are the caller's to delete. PostgreSQL only; a no-op on
    SQLite.

    Detaching locks the whole events table (ACCESS EXCLUSIVE) until the caller's transaction
    ends; the lock is waited for at most LOCK_TIMEOUT, so that a long read cannot make
    ingestion queue behind the drop: then OperationalError (SQLSTATE 55P03), to try later."""
    if not _postgresql():
        return False
    if _NAME.match(name) is None:
        raise ValueError(f"{name!r} is not a monthly events partition")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('lock_timeout')")
        (before,) = cursor.fetchone()
        cursor.execute("SELECT set_config('lock_timeout', %s, true)", [LOCK_TIMEOUT])
        # The lock DETACH takes anyway, taken first: a run that waited for another's drop then
        # finds the partition gone.
        cursor.execute(f"LOCK TABLE {EVENTS} IN ACCESS EXCLUSIVE MODE")
        cursor.execute("SELECT set_config('lock_timeout', %s, true)", [before])
        cursor.execute(
            "SELECT 1 FROM pg_inherits WHERE inhparent = %s::regclass"
            " AND inhrelid = to_regclass(%s)",
            [EVENTS, name],
        )
        if cursor.fetchone() is None:
            return False
        cursor.execute(f"ALTER TABLE {EVENTS} DETACH PARTITION {name}")
        cursor.execute(f"DROP TABLE {name}")
    return True


def partitions_after_migrate(**kwargs: Any) -> None:
    """post_migrate (after tenants/rls.py's policies, whose app comes first): a new database has
    its partitions' row security, and months missed while it was down, without waiting for
    the hourly beat task."""
    partitions_ensure()
