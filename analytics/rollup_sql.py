"""Small SQL helpers of the rollups (analytics/rollups.py, analytics/rebuild.py): one statement
on the current connection, rows as a relation (one JSON parameter on PostgreSQL, a VALUES list on
SQLite, in batches under its parameter limit), the per-team advisory lock, local days.

On PostgreSQL every rollup writer takes the team's advisory lock (shared for ingestion, exclusive
for a rebuild), so a rebuild reads the events of transactions that committed before it and
nothing it replaces is changed meanwhile.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from django.db import connection

from core.db import json_text, raw_cursor

# pg_advisory_xact_lock(int, int) key space: "ROL1" (retention uses "RET1").
LOCK_CLASS = 0x524F4C31
SQLITE_MAX_PARAMS = 30_000


def pg() -> bool:
    return connection.vendor == "postgresql"


def execute(sql: str, params: Sequence[Any] = (), *, fetch: bool = False) -> list[tuple]:
    """One statement on the current connection (a prepared, server-bound one on PostgreSQL)."""
    if not pg():
        params = [_sqlite_param(value) for value in params]
    else:
        with connection.wrap_database_errors, raw_cursor() as cursor:
            cursor.execute(sql, params, prepare=True)
            return cursor.fetchall() if fetch else []
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if fetch else []


def as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _sqlite_param(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def batches(rows: Sequence[Sequence[Any]], width: int) -> Iterable[Sequence[Sequence[Any]]]:
    """All rows at once on PostgreSQL (one JSON parameter); under SQLite's parameter limit."""
    if pg():
        yield rows
        return
    size = max(1, SQLITE_MAX_PARAMS // max(1, width))
    for at in range(0, len(rows), size):
        yield rows[at : at + size]


def source(columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]]) -> tuple[str, list]:
    """A subquery yielding `rows` as a relation with `columns` ((name, PostgreSQL type)…): one
    JSON document on PostgreSQL, a VALUES list elsewhere."""
    names = [name for name, _ in columns]
    if pg():
        record = ", ".join(f'"{n}" {t}' for n, t in columns)
        quoted = ", ".join(f'"{n}"' for n in names)
        document = json_text([dict(zip(names, row, strict=True)) for row in rows])
        return f"(SELECT {quoted} FROM jsonb_to_recordset(%s::jsonb) AS r({record}))", [document]
    one = "(" + ", ".join(["%s"] * len(columns)) + ")"
    select = ", ".join(f'column{i + 1} AS "{n}"' for i, n in enumerate(names))
    params = [_sqlite_param(v) for row in rows for v in row]
    return f"(SELECT {select} FROM (VALUES {', '.join([one] * len(rows))}))", params


def lock(tenant_id: int, *, exclusive: bool = False) -> None:
    if pg():
        function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
        execute(f"SELECT {function}(%s, %s)", [LOCK_CLASS, tenant_id])


def local_day_sql(column: str, zone: str) -> tuple[str, tuple[Any, ...]]:
    """SQL for the local date (in `zone`) of a timestamp column: Django's own, per database."""
    sql, params = connection.ops.datetime_cast_date_sql(column, (), zone)
    return sql, tuple(params)


def midnight(day: date, zone: zoneinfo.ZoneInfo) -> datetime:
    """The first instant of a local day, in UTC (a day starting in a DST gap starts later)."""
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def sqlite_datetime(value: Any) -> datetime:
    moment = datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
