"""Keeping the rollups (analytics/models.py) exact: incrementally inside the transaction that
stores events (`events_stored`, registered with audience.registry), when contacts merge
(`contacts_merged_move`) or change (`contacts_reconcile`), and from the raw events
(`rollups_rebuild`). docs/analytics.md says what each metric counts and why the two agree.

The invariant every writer keeps, for each team and local day d:
- a per-event metric (metrics.event_metrics) = the stored events of d it counts;
- orders / revenue = the order ledger's orders of d, their values' sum;
- visitors… buyers = the ActiveDay rows of d (row_contributions says which row adds what),
  first_orders = the contacts' first_order rows of d, repeat_orders = orders - first_orders;
- email_clicked / push_clicked = the MessageFirst rows of d;
- StageTransitionDay = the `Lifecycle Stage Changed` facts of d by (from, to).

Writers change a derived row and add the difference of its contributions to DailyMetric in the
same transaction, so the tables never disagree. On PostgreSQL every writer takes a per-team
advisory lock (shared for ingestion, exclusive for a rebuild), so a rebuild reads the events
of transactions that committed before it and nothing it replaces is changed meanwhile.
"""

from __future__ import annotations

import logging
import zoneinfo
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from analytics.metrics import (
    FIRST_CLICKS,
    MESSAGING,
    ORDER_COMPLETED,
    PRODUCT_ADDED,
    STAGE_CHANGED,
    event_metrics,
    is_fact,
    nps_class,
    text_property,
)
from analytics.models import (
    ActiveDay,
    Activity,
    DailyMetric,
    MessageFirst,
    RollupState,
    StageSnapshot,
    StageTransitionDay,
)
from analytics.selectors import tenant_zone, today
from core.db import json_text, raw_cursor
from tenants.models import Tenant

logger = logging.getLogger(__name__)

# pg_advisory_xact_lock(int, int) key space: "ROL1" (retention uses "RET1").
LOCK_CLASS = 0x524F4C31
FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)
SQLITE_MAX_PARAMS = 30_000

DM = DailyMetric._meta.db_table
AD = ActiveDay._meta.db_table
MF = MessageFirst._meta.db_table
ST = StageTransitionDay._meta.db_table

VISIT, CART, BUY, FIRST, SECOND = (
    Activity.VISIT.value,
    Activity.CART.value,
    Activity.BUY.value,
    Activity.FIRST_ORDER.value,
    Activity.SECOND_ORDER.value,
)
RANKS = (FIRST, SECOND)  # a contact's first and second order ever: one row each at most

Deltas = defaultdict[tuple[date, str], Decimal]  # (day, metric) -> change of value


# --- Small helpers -----------------------------------------------------------------------------


def _pg() -> bool:
    return connection.vendor == "postgresql"


def _execute(sql: str, params: Sequence[Any] = (), *, fetch: bool = False) -> list[tuple]:
    """One statement on the current connection (a prepared, server-bound one on PostgreSQL)."""
    if not _pg():
        params = [_sqlite_param(value) for value in params]
    else:
        with connection.wrap_database_errors, raw_cursor() as cursor:
            cursor.execute(sql, params, prepare=True)
            return cursor.fetchall() if fetch else []
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if fetch else []


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _sqlite_param(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _batches(rows: Sequence[Sequence[Any]], width: int) -> Iterable[Sequence[Sequence[Any]]]:
    """All rows at once on PostgreSQL (one JSON parameter); under SQLite's parameter limit."""
    if _pg():
        yield rows
        return
    size = max(1, SQLITE_MAX_PARAMS // max(1, width))
    for at in range(0, len(rows), size):
        yield rows[at : at + size]


def _source(columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]]) -> tuple[str, list]:
    """A subquery yielding `rows` as a relation with `columns` ((name, PostgreSQL type)…): one
    JSON document on PostgreSQL, a VALUES list elsewhere."""
    names = [name for name, _ in columns]
    if _pg():
        record = ", ".join(f'"{n}" {t}' for n, t in columns)
        quoted = ", ".join(f'"{n}"' for n in names)
        document = json_text([dict(zip(names, row, strict=True)) for row in rows])
        return f"(SELECT {quoted} FROM jsonb_to_recordset(%s::jsonb) AS r({record}))", [document]
    one = "(" + ", ".join(["%s"] * len(columns)) + ")"
    select = ", ".join(f'column{i + 1} AS "{n}"' for i, n in enumerate(names))
    params = [_sqlite_param(v) for row in rows for v in row]
    return f"(SELECT {select} FROM (VALUES {', '.join([one] * len(rows))}))", params


def _lock(tenant_id: int, *, exclusive: bool = False) -> None:
    if _pg():
        function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
        _execute(f"SELECT {function}(%s, %s)", [LOCK_CLASS, tenant_id])


def _local_day_sql(column: str, zone: str) -> tuple[str, tuple[Any, ...]]:
    """SQL for the local date (in `zone`) of a timestamp column: Django's own, per database."""
    sql, params = connection.ops.datetime_cast_date_sql(column, (), zone)
    return sql, tuple(params)


def _midnight(day: date, zone: zoneinfo.ZoneInfo) -> datetime:
    """The first instant of a local day, in UTC (a day starting in a DST gap starts later)."""
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


# --- What a derived row adds to the daily metrics ----------------------------------------------


def row_contributions(activity: str, identified: bool, new: bool) -> tuple[tuple[str, int], ...]:
    if activity == VISIT:
        return (
            ("visitors", 1),
            ("identified_visitors", 1 if identified else 0),
            ("new_visitors", 1 if new else 0),
            ("returning_visitors", 0 if new else 1),
        )
    if activity == CART:
        return (("carts", 1),)
    if activity == BUY:
        return (("buyers", 1),)
    if activity == FIRST:
        return (("first_orders", 1), ("repeat_orders", -1))
    if activity == SECOND:
        return (("second_orders", 1),)
    raise ValueError(activity)


def _add_row(
    deltas: Deltas, day: date, activity: str, identified: bool, new: bool, sign: int
) -> None:
    for metric, value in row_contributions(activity, identified, new):
        if value:
            deltas[day, metric] += sign * value


def _metrics_add(tenant_id: int, deltas: Mapping[tuple[date, str], Any]) -> None:
    """DailyMetric += deltas, one statement (upsert)."""
    rows = [(day, metric, value) for (day, metric), value in deltas.items() if value]
    if not rows:
        return
    for batch in _batches(rows, 3):
        source, params = _source((("day", "date"), ("metric", "text"), ("value", "numeric")), batch)
        _execute(
            f"INSERT INTO {DM} (tenant_id, day, metric, value)"
            f" SELECT %s, v.day, v.metric, v.value FROM {source} AS v WHERE true"
            " ON CONFLICT (tenant_id, metric, day) DO UPDATE"
            f" SET value = {DM}.value + excluded.value",
            [tenant_id, *params],
        )


# --- Incremental: the events_stored hook --------------------------------------------------------


class _Zone:
    """Local days of UTC instants, memoised per UTC hour (zone offsets change on hours)."""

    def __init__(self, zone: zoneinfo.ZoneInfo) -> None:
        self.zone = zone
        self._hours: dict[tuple[int, int, int, int], tuple[date, datetime, datetime]] = {}

    def day(self, moment: datetime) -> date:
        if moment.tzinfo is not UTC:
            moment = moment.astimezone(UTC)
        key = (moment.year, moment.month, moment.day, moment.hour)
        found = self._hours.get(key)
        if found is None:
            start = moment.replace(minute=0, second=0, microsecond=0)
            local = start.astimezone(self.zone)
            # The local day changes within this UTC hour only in zones with a sub-hour offset.
            if local.minute == 0 and local.second == 0:
                found = (local.date(), start, start + timedelta(hours=1))
            else:
                return moment.astimezone(self.zone).date()
            self._hours[key] = found
        return found[0]


def events_stored(*, tenant: Tenant, rows: Sequence[Any], ids: Sequence[int]) -> None:
    """audience.registry's hook: add `rows` (audience.bulk.EventRow, just stored with `ids`) to
    the team's rollups inside the storing transaction. A few statements per call, whatever the
    number of rows: the lock, then only what the rows need (contacts' flags and distinct rows
    for visits and carts, the ledger for orders, first clicks, stage moves), one upsert of the
    daily metrics."""
    if not rows:
        return
    tenant_id = tenant.pk
    zone = _Zone(tenant_zone(tenant))
    deltas: Deltas = defaultdict(Decimal)
    visits: set[tuple[int, date]] = set()
    carts: set[tuple[int, date]] = set()
    clicks: dict[tuple[str, str], date] = {}
    moves: Counter[tuple[date, str, str]] = Counter()
    orders: list[tuple[str, int, datetime]] = []
    tracked: dict[tuple[str, str, str], tuple[str, ...]] = {}  # event_metrics, per kind
    for row, pk in zip(rows, ids, strict=True):
        day = zone.day(row.occurred_at)
        name, properties = row.name, row.properties
        if name == ORDER_COMPLETED:
            orders.append((row.message_id, pk, row.occurred_at))
        if is_fact(row.message_id):
            if row.source == MESSAGING:
                click = FIRST_CLICKS.get(name)
                if click is not None:
                    delivery = text_property(properties, "delivery_id")[:64]
                    if delivery and (clicks.get((click, delivery)) or day) >= day:
                        clicks[click, delivery] = day
                    continue
                channel = text_property(properties, "channel")
                for metric in event_metrics(
                    type=row.type, name=name, fact=True, source=row.source, channel=channel
                ):
                    deltas[day, metric] += 1
            elif name == STAGE_CHANGED:
                moves[
                    day,
                    text_property(properties, "from")[:20],
                    text_property(properties, "to")[:20],
                ] += 1
            continue
        visits.add((row.contact_id, day))
        if name == PRODUCT_ADDED:
            carts.add((row.contact_id, day))
        nps = nps_class(properties) if name == "NPS Submitted" else ""
        found = tracked.get((row.type, name, nps))
        if found is None:
            found = tracked[row.type, name, nps] = event_metrics(
                type=row.type, name=name, fact=False, source="", nps=nps
            )
        for metric in found:
            deltas[day, metric] += 1
    if not (deltas or visits or carts or orders or clicks or moves):
        return  # facts no figure counts (segment entries, skipped messages…): no statement
    _lock(tenant_id)
    buys: set[tuple[int, date]] = set()
    ranks: _RankChanges = ([], [])
    if orders:
        buys, ranks = _orders_add(tenant_id, zone, orders, deltas)
    if visits or carts or buys:
        _days_add(tenant_id, zone, visits, carts, buys, deltas, ranks)
    if clicks:
        _first_clicks_add(tenant_id, clicks, deltas)
    if moves:
        _moves_add(tenant_id, moves)
    _metrics_add(tenant_id, deltas)


def _contacts_flags(
    tenant_id: int, contact_ids: Iterable[int], zone: _Zone
) -> dict[int, tuple[bool, date]]:
    """{contact id: (identified, local day of creation)} of the team's stored contacts."""
    wanted = sorted(set(contact_ids))
    if not wanted:
        return {}
    if _pg():
        found = _execute(
            "SELECT id, user_id <> '' OR email <> '', created_at FROM audience_contact"
            " WHERE tenant_id = %s AND id = ANY(ARRAY(SELECT jsonb_array_elements_text(%s::jsonb)"
            "::bigint))",
            [tenant_id, json_text(wanted)],
            fetch=True,
        )
    else:
        from audience.models import Contact

        found = []
        for at in range(0, len(wanted), SQLITE_MAX_PARAMS):
            found += Contact.objects.filter(
                tenant_id=tenant_id, pk__in=wanted[at : at + SQLITE_MAX_PARAMS]
            ).values_list("pk", "user_id", "email", "created_at")
        found = [(pk, bool(user_id or email), created) for pk, user_id, email, created in found]
    return {pk: (bool(identified), zone.day(created)) for pk, identified, created in found}


_ACTIVE_COLUMNS = (
    ("day", "date"),
    ("activity", "text"),
    ("contact_id", "bigint"),
    ("identified", "boolean"),
    ("new", "boolean"),
)


def _active_insert(tenant_id: int, rows: Sequence[tuple[date, str, int, bool, bool]]) -> list:
    """Insert ActiveDay rows that are not there yet; returns those inserted (day, activity,
    identified, new)."""
    inserted: list[tuple] = []
    for batch in _batches(rows, len(_ACTIVE_COLUMNS)):
        source, params = _source(_ACTIVE_COLUMNS, batch)
        inserted += _execute(
            f'INSERT INTO {AD} (tenant_id, day, activity, contact_id, identified, "new")'
            f' SELECT %s, v.day, v.activity, v.contact_id, v.identified, v."new"'
            f" FROM {source} AS v WHERE true"
            " ON CONFLICT (tenant_id, contact_id, activity, day) DO NOTHING"
            ' RETURNING day, activity, identified, "new"',
            [tenant_id, *params],
            fetch=True,
        )
    return inserted


def _days_add(
    tenant_id: int,
    zone: _Zone,
    visits: set[tuple[int, date]],
    carts: set[tuple[int, date]],
    buys: set[tuple[int, date]],
    deltas: Deltas,
    ranks: _RankChanges = ([], []),
) -> None:
    """The chunk's ActiveDay rows (inserted where not there yet), with the visitors' flags read
    off their contacts, and the flags of those contacts' earlier visit rows set right; on
    PostgreSQL also the rank rows' changes `_orders_add` planned (counted already)."""
    if _pg():
        _days_add_pg(tenant_id, zone, visits, carts, buys, deltas, ranks)
        return
    flags = _contacts_flags(tenant_id, (c for c, _ in visits), zone)
    rows: list[tuple[date, str, int, bool, bool]] = []
    for contact_id, day in visits:
        identified, created = flags.get(contact_id, (False, None))
        rows.append((day, VISIT, contact_id, identified, created == day))
    rows += [(day, CART, contact_id, False, False) for contact_id, day in carts]
    rows += [(day, BUY, contact_id, False, False) for contact_id, day in buys]
    for day, activity, identified, new in _active_insert(tenant_id, rows):
        _add_row(deltas, _as_date(day), activity, bool(identified), bool(new), 1)
    if flags:
        _flags_reconcile(tenant_id, flags, deltas)


def _days_add_pg(
    tenant_id: int,
    zone: _Zone,
    visits: set[tuple[int, date]],
    carts: set[tuple[int, date]],
    buys: set[tuple[int, date]],
    deltas: Deltas,
    ranks: _RankChanges,
) -> None:
    """`_days_add` in one statement: the contacts' flags, the insert, the stale rows' update,
    the rank rows' changes."""
    rank_rows, gone = ranks
    rows = [
        *((day, VISIT, contact_id) for contact_id, day in visits),
        *((day, CART, contact_id) for contact_id, day in carts),
        *((day, BUY, contact_id) for contact_id, day in buys),
        *((day, activity, contact_id) for day, activity, contact_id, _, _ in rank_rows),
    ]
    source, params = _source(
        (("day", "date"), ("activity", "text"), ("contact_id", "bigint")), rows
    )
    found = _execute(
        f"WITH v AS {source},"
        " c AS (SELECT c.id, c.user_id <> '' OR c.email <> '' AS identified,"
        " (c.created_at AT TIME ZONE %s)::date AS created FROM audience_contact c"
        " WHERE c.tenant_id = %s"
        f" AND c.id IN (SELECT contact_id FROM v WHERE activity = '{VISIT}')),"
        f' ins AS (INSERT INTO {AD} (tenant_id, day, activity, contact_id, identified, "new")'
        f" SELECT %s, v.day, v.activity, v.contact_id,"
        f" COALESCE(v.activity = '{VISIT}' AND c.identified, false),"
        f" COALESCE(v.activity = '{VISIT}' AND c.created = v.day, false)"
        " FROM v LEFT JOIN c ON c.id = v.contact_id"
        " ON CONFLICT (tenant_id, contact_id, activity, day) DO NOTHING"
        ' RETURNING day, activity, identified, "new"),'
        # LATERAL … OFFSET 0 (not flattened into a join): each contact's rows through the
        # (tenant, contact, activity, day) index whatever the planner thinks of the table's
        # size (a stale estimate had it scan every visit row of the team once per contact).
        ' stale AS (SELECT a.id, a.day, a.identified, a."new", c.identified AS now_identified,'
        " a.day = c.created AS now_new FROM c CROSS JOIN LATERAL (SELECT a.id, a.day,"
        f' a.identified, a."new" FROM {AD} a WHERE a.tenant_id = %s AND a.contact_id = c.id'
        f" AND a.activity = '{VISIT}' OFFSET 0) a"
        ' WHERE a.identified <> c.identified OR a."new" <> (a.day = c.created)),'
        f' upd AS (UPDATE {AD} a SET identified = s.now_identified, "new" = s.now_new'
        " FROM stale s WHERE a.tenant_id = %s AND a.id = s.id RETURNING a.id),"
        f" del AS (DELETE FROM {AD} a WHERE a.tenant_id = %s AND a.id IN"
        " (SELECT jsonb_array_elements_text(%s::jsonb)::bigint))"
        ' SELECT true, day, activity, identified, "new", false, false FROM ins'
        f" UNION ALL SELECT false, day, '{VISIT}', identified, \"new\", now_identified, now_new"
        " FROM stale",
        [
            *params,
            zone.zone.key,
            tenant_id,
            tenant_id,
            tenant_id,
            tenant_id,
            tenant_id,
            json_text([pk for (pk,) in gone]),
        ],
        fetch=True,
    )
    for inserted, day, activity, identified, new, now_identified, now_new in found:
        if activity in RANKS:
            continue  # counted by _orders_add's plan
        if inserted:
            _add_row(deltas, day, activity, identified, new, 1)
        else:
            _add_row(deltas, day, VISIT, identified, new, -1)
            _add_row(deltas, day, VISIT, now_identified, now_new, 1)


def _flags_reconcile(tenant_id: int, flags: dict[int, tuple[bool, date]], deltas: Deltas) -> None:
    """Make the visit rows of these contacts say what the contacts are now (identified since,
    merged with an older profile): one read finding the rows that differ, a write if any."""
    source, params = _source(
        (("contact_id", "bigint"), ("identified", "boolean"), ("created", "date")),
        [(pk, identified, created) for pk, (identified, created) in flags.items()],
    )
    stale = _execute(
        f'SELECT a.id, a.day, a.identified, a."new", v.identified, v.created'
        f" FROM {source} AS v JOIN {AD} a ON a.tenant_id = %s AND a.contact_id = v.contact_id"
        f" AND a.activity = '{VISIT}'"
        ' WHERE a.identified <> v.identified OR a."new" <> (a.day = v.created)',
        [*params, tenant_id],
        fetch=True,
    )
    if not stale:
        return
    fixed = []
    for pk, day, identified, new, now_identified, created in stale:
        day = _as_date(day)
        now_new = day == _as_date(created)
        _add_row(deltas, day, VISIT, bool(identified), bool(new), -1)
        _add_row(deltas, day, VISIT, bool(now_identified), now_new, 1)
        fixed.append((pk, bool(now_identified), now_new))
    source, params = _source(
        (("id", "bigint"), ("identified", "boolean"), ("new", "boolean")), fixed
    )
    _execute(
        f'UPDATE {AD} SET identified = v.identified, "new" = v."new" FROM {source} AS v'
        f" WHERE {AD}.tenant_id = %s AND {AD}.id = v.id",
        [*params, tenant_id],
    )


# (rank rows to insert: (day, activity, contact id, False, False); ids of rank rows to delete)
_RankChanges = tuple[list[tuple[date, str, int, bool, bool]], list[tuple[int]]]


def _orders_add(
    tenant_id: int,
    zone: _Zone,
    orders: list[tuple[str, int, datetime]],
    deltas: Deltas,
) -> tuple[set[tuple[int, date]], _RankChanges]:
    """Count the orders the ledger stored with these events (not an order it held already: an
    old message sent again after retention removed its event). Returns the buyers' (contact,
    day) and, on PostgreSQL, the first/second order rows to change (written by `_days_add`'s
    statement); elsewhere they are written here."""
    source, params = _source(
        (("message_id", "text"), ("id", "bigint"), ("occurred_at", "timestamptz")), orders
    )
    ranked: list[tuple] = []
    have: list[tuple] = []
    if _pg():
        # The ledger's row was written by this very (sub)transaction exactly when it carries
        # the same xmin as the event just inserted with it (audience.services._events_store
        # writes both in one block): a row the ledger held already has an older one. The same
        # statement reads the new buyers' first two orders and their rank rows.
        found = _execute(
            f"WITH v AS {source},"
            " new AS (SELECT o.contact_id, o.occurred_at, o.value FROM v JOIN audience_order o"
            " ON o.tenant_id = %s AND o.message_id = v.message_id"
            " JOIN audience_event e ON e.tenant_id = %s AND e.id = v.id"
            " AND e.occurred_at = v.occurred_at WHERE o.xmin = e.xmin),"
            " ranked AS (SELECT r.contact_id, r.occurred_at, r.rank FROM (SELECT o.contact_id,"
            " o.occurred_at, ROW_NUMBER() OVER (PARTITION BY o.contact_id"
            " ORDER BY o.occurred_at, o.id) AS rank FROM audience_order o"
            " WHERE o.tenant_id = %s AND o.contact_id IN (SELECT contact_id FROM new)) r"
            " WHERE r.rank <= 2),"
            " have AS (SELECT a.id, a.contact_id, a.activity, a.day FROM"
            f" (SELECT DISTINCT contact_id FROM new) n CROSS JOIN LATERAL (SELECT a.id,"
            f" a.contact_id, a.activity, a.day FROM {AD} a WHERE a.tenant_id = %s"
            f" AND a.contact_id = n.contact_id AND a.activity IN ('{FIRST}', '{SECOND}')"
            " OFFSET 0) a)"
            " SELECT 'n', contact_id, occurred_at, value, NULL::bigint, NULL, NULL::date FROM new"
            " UNION ALL SELECT 'r', contact_id, occurred_at, NULL, rank, NULL, NULL FROM ranked"
            " UNION ALL SELECT 'h', contact_id, NULL, NULL, id, activity, day FROM have",
            [*params, tenant_id, tenant_id, tenant_id, tenant_id],
            fetch=True,
        )
        new = [(c, at, value) for kind, c, at, value, *_ in found if kind == "n"]
        ranked = [(c, at, rank) for kind, c, at, _, rank, _, _ in found if kind == "r"]
        have = [(pk, c, activity, day) for kind, c, _, _, pk, activity, day in found if kind == "h"]
    else:  # SQLite cannot tell an order sent again after retention: counted (docs/analytics.md)
        new = _execute(
            "SELECT o.contact_id, o.occurred_at, o.value"
            f" FROM {source} AS v JOIN audience_order o"
            " ON o.tenant_id = %s AND o.message_id = v.message_id",
            [*params, tenant_id],
            fetch=True,
        )
    if not new:
        return set(), ([], [])
    buys: set[tuple[int, date]] = set()
    for contact_id, occurred, value in new:
        occurred = occurred if isinstance(occurred, datetime) else _sqlite_datetime(occurred)
        day = zone.day(occurred)
        deltas[day, "orders"] += 1
        deltas[day, "repeat_orders"] += 1  # until found to be the first, below
        deltas[day, "revenue"] += Decimal(str(value)) if value is not None else Decimal(0)
        buys.add((contact_id, day))
    if _pg():
        return buys, _ranks_plan(ranked, have, zone, deltas)
    _ranks_sync(tenant_id, zone, {contact_id for contact_id, _ in buys}, deltas)
    return buys, ([], [])


def _sqlite_datetime(value: Any) -> datetime:
    moment = datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _ranks_sync(
    tenant_id: int,
    zone: _Zone,
    contact_ids: set[int],
    deltas: Deltas,
    *,
    counted: tuple[date, date] | None = None,
) -> None:
    """Make the first_order / second_order rows of these contacts the days of their first and
    second orders in the ledger (which keeps every order, beyond retention too), adding the
    difference to `deltas` (not for days within `counted`, which the caller counts itself)."""
    if not contact_ids:
        return
    source, params = _source((("contact_id", "bigint"),), [(pk,) for pk in sorted(contact_ids)])
    ranked = _execute(
        "SELECT r.contact_id, r.occurred_at, r.rank FROM (SELECT o.contact_id, o.occurred_at,"
        " ROW_NUMBER() OVER (PARTITION BY o.contact_id ORDER BY o.occurred_at, o.id) AS rank"
        f" FROM {source} AS v JOIN audience_order o"
        " ON o.tenant_id = %s AND o.contact_id = v.contact_id) r WHERE r.rank <= 2",
        [*params, tenant_id],
        fetch=True,
    )
    have = _execute(
        f"SELECT a.id, a.contact_id, a.activity, a.day FROM {source} AS v JOIN {AD} a"
        " ON a.tenant_id = %s AND a.contact_id = v.contact_id"
        f" AND a.activity IN ('{FIRST}', '{SECOND}')",
        [*params, tenant_id],
        fetch=True,
    )
    rows, gone = _ranks_plan(ranked, have, zone, deltas, counted=counted)
    _ids_delete(tenant_id, AD, gone)
    if rows:
        _active_insert(tenant_id, rows)


def _ranks_plan(
    ranked: Sequence[tuple],
    have: Sequence[tuple],
    zone: _Zone,
    deltas: Deltas,
    *,
    counted: tuple[date, date] | None = None,
) -> _RankChanges:
    """The rank rows to insert and delete so that `have` (id, contact, activity, day) says what
    `ranked` (contact, occurred_at, rank 1 or 2, from the ledger) does; their difference added
    to `deltas` (not for days within `counted`)."""
    wanted = {
        (contact_id, RANKS[rank - 1]): zone.day(
            at if isinstance(at, datetime) else _sqlite_datetime(at)
        )
        for contact_id, at, rank in ranked
    }
    existing = {
        (contact_id, activity): (pk, _as_date(day)) for pk, contact_id, activity, day in have
    }

    def count(day: date, activity: str, sign: int) -> None:
        if counted is None or not counted[0] <= day <= counted[1]:
            _add_row(deltas, day, activity, False, False, sign)

    gone: list[tuple[int]] = []
    for (contact_id, activity), (pk, day) in existing.items():
        if wanted.get((contact_id, activity)) != day:
            gone.append((pk,))
            count(day, activity, -1)
    rows: list[tuple[date, str, int, bool, bool]] = []
    for (contact_id, activity), day in wanted.items():
        old = existing.get((contact_id, activity))
        if old is None or old[1] != day:
            rows.append((day, activity, contact_id, False, False))
            count(day, activity, 1)
    return rows, gone


def _ids_delete(tenant_id: int, table: str, ids: Sequence[tuple[int]]) -> None:
    for batch in _batches(ids, 1):
        if not batch:
            continue
        source, params = _source((("id", "bigint"),), batch)
        _execute(
            f"DELETE FROM {table} WHERE tenant_id = %s AND id IN (SELECT v.id FROM {source} AS v)",
            [tenant_id, *params],
        )


def _first_clicks_add(tenant_id: int, clicks: dict[tuple[str, str], date], deltas: Deltas) -> None:
    """Each clicked message's MessageFirst row at the earliest click day."""
    keys = list(clicks)
    source, params = _source((("metric", "text"), ("delivery_id", "text")), keys)
    have = _execute(
        f"SELECT m.id, m.metric, m.delivery_id, m.day FROM {source} AS v JOIN {MF} m"
        " ON m.tenant_id = %s AND m.metric = v.metric AND m.delivery_id = v.delivery_id",
        [*params, tenant_id],
        fetch=True,
    )
    existing = {(metric, delivery): (pk, _as_date(day)) for pk, metric, delivery, day in have}
    moved: list[tuple[int, date]] = []
    new: list[tuple[str, str, date]] = []
    for (metric, delivery), day in clicks.items():
        old = existing.get((metric, delivery))
        if old is None:
            new.append((metric, delivery, day))
        elif day < old[1]:
            moved.append((old[0], day))
            deltas[old[1], metric] -= 1
        else:
            continue
        deltas[day, metric] += 1
    if new:
        _message_firsts_insert(tenant_id, new)
    if moved:
        source, params = _source((("id", "bigint"), ("day", "date")), moved)
        _execute(
            f"UPDATE {MF} SET day = v.day FROM {source} AS v"
            f" WHERE {MF}.tenant_id = %s AND {MF}.id = v.id",
            [*params, tenant_id],
        )


def _message_firsts_insert(tenant_id: int, rows: Sequence[tuple[str, str, date]]) -> None:
    for batch in _batches(rows, 3):
        source, params = _source(
            (("metric", "text"), ("delivery_id", "text"), ("day", "date")), batch
        )
        _execute(
            f"INSERT INTO {MF} (tenant_id, metric, delivery_id, day)"
            f" SELECT %s, v.metric, v.delivery_id, v.day FROM {source} AS v",
            [tenant_id, *params],
        )


def _moves_add(tenant_id: int, moves: Mapping[tuple[date, str, str], int]) -> None:
    rows = [(day, source, to, n) for (day, source, to), n in moves.items() if n]
    for batch in _batches(rows, 4):
        source, params = _source(
            (("day", "date"), ("from_stage", "text"), ("to_stage", "text"), ("n", "bigint")),
            batch,
        )
        _execute(
            f"INSERT INTO {ST} (tenant_id, day, from_stage, to_stage, contacts)"
            f" SELECT %s, v.day, v.from_stage, v.to_stage, v.n FROM {source} AS v WHERE true"
            " ON CONFLICT (tenant_id, day, from_stage, to_stage) DO UPDATE"
            f" SET contacts = {ST}.contacts + excluded.contacts",
            [tenant_id, *params],
        )


# --- Contacts merged or changed -----------------------------------------------------------------


def contacts_merged_move(*, tenant: Tenant, merged: Mapping[int, int]) -> None:
    """audience.signals.contacts_merged (inside the ingestion transaction, before the absorbed
    contacts are deleted): their ActiveDay rows become their targets'. A day both were active
    counts once; the target's first order is the earlier of the two. The visit rows' flags are
    set right by the hook that follows (the merging call is an event of the target)."""
    if not merged:
        return
    tenant_id = tenant.pk
    _lock(tenant_id)
    everyone = sorted(set(merged) | set(merged.values()))
    source, params = _source((("contact_id", "bigint"),), [(pk,) for pk in everyone])
    rows = _execute(
        f'SELECT a.id, a.contact_id, a.day, a.activity, a.identified, a."new"'
        f" FROM {source} AS v JOIN {AD} a ON a.tenant_id = %s AND a.contact_id = v.contact_id",
        [*params, tenant_id],
        fetch=True,
    )
    if not rows:
        return
    deltas: Deltas = defaultdict(Decimal)
    kept: dict[tuple[int, str, date], tuple[bool, bool, bool]] = {}  # … -> (flags, own)
    gone = []
    for pk, contact_id, day, activity, identified, new in rows:
        if activity in RANKS:  # the targets' are set from the ledger below
            if contact_id in merged:
                gone.append((pk,))
                _add_row(deltas, _as_date(day), activity, False, False, -1)
            continue
        gone.append((pk,))
        day = _as_date(day)
        _add_row(deltas, day, activity, bool(identified), bool(new), -1)
        target = merged.get(contact_id, contact_id)
        key = (target, activity, day)
        own = contact_id == target
        if key not in kept or (own and not kept[key][2]):
            kept[key] = (bool(identified), bool(new), own)
    new_rows = [
        (day, activity, target, identified, new)
        for (target, activity, day), (identified, new, _) in kept.items()
    ]
    for day, activity, _, identified, new in new_rows:
        _add_row(deltas, day, activity, identified, new, 1)
    _ids_delete(tenant_id, AD, gone)
    if new_rows:
        _active_insert(tenant_id, new_rows)
    # The ledger's orders have moved to the targets already (audience/identity.py); a contact
    # has rank rows exactly when it has orders, so without any there is nothing to rank.
    if any(row[3] in RANKS for row in rows):
        _ranks_sync(tenant_id, _Zone(tenant_zone(tenant)), set(merged.values()), deltas)
    _metrics_add(tenant_id, deltas)


def contacts_reconcile(*, tenant: Tenant, contact_ids: Sequence[int]) -> None:
    """Make the visit rows of these contacts say whether they are identified now (a profile
    edited in the UI, the REST API or an import: audience.signals.contacts_changed, after its
    commit), in a transaction of its own."""
    if not contact_ids:
        return
    zone = _Zone(tenant_zone(tenant))
    with transaction.atomic():
        _lock(tenant.pk)
        flags = _contacts_flags(tenant.pk, contact_ids, zone)
        deltas: Deltas = defaultdict(Decimal)
        if flags:
            _flags_reconcile(tenant.pk, flags, deltas)
        _metrics_add(tenant.pk, deltas)


# --- Rebuild from the raw events ----------------------------------------------------------------


@dataclass
class RebuildReport:
    tenant: str
    start: date | None = None  # the first local day rebuilt (None: nothing to rebuild)
    end: date | None = None  # the last (None: every day from start on)
    timezone: str = ""
    metric_rows: int = 0
    notes: list[str] = field(default_factory=list)


def retention_cutoff(tenant: Tenant, *, now: datetime | None = None) -> datetime:
    """audience/retention.py's cutoff: the first instant (UTC) of the month `retention_months`
    before the current UTC month; events before it go (tests hold the two to one answer)."""
    moment = (now or timezone.now()).astimezone(UTC)
    index = moment.year * 12 + moment.month - 1 - tenant.retention_months
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def kept_since(tenant: Tenant, *, now: datetime | None = None) -> date:
    """The first local day all of whose events retention still keeps (audience/retention.py):
    a rebuild never reaches before it, so what was counted from removed events stays."""
    zone = tenant_zone(tenant)
    cutoff = retention_cutoff(tenant, now=now)
    day = cutoff.astimezone(zone).date()
    return day if _midnight(day, zone) >= cutoff else day + timedelta(days=1)


def rollups_rebuild(
    *, tenant: Tenant, start: date | None = None, end: date | None = None
) -> RebuildReport:
    """Recompute the team's rollups of local days [start, end] from the raw events, the order
    ledger and the contacts (set-based), replacing what is there. `start` defaults to, and is
    never before, the first day retention keeps (`kept_since`); `end=None` means every day from
    `start` on, future-dated events included. Holds the team's rollup lock exclusively: the
    team's ingestion waits for it."""
    zone = tenant_zone(tenant)
    first = kept_since(tenant)
    report = RebuildReport(tenant=tenant.slug, timezone=zone.key)
    if start is not None and start < first:
        report.notes.append(f"{start} is before the events retention keeps: from {first}")
    start = max(start or first, first)
    if end is not None and end < start:
        return report
    report.start, report.end = start, end
    with transaction.atomic():
        _lock(tenant.pk, exclusive=True)
        report.metric_rows = _rebuild(tenant, zone, start, end)
        RollupState.objects.update_or_create(
            tenant=tenant, defaults={"timezone": zone.key, "rebuilt_at": timezone.now()}
        )
    return report


def _rebuild(tenant: Tenant, zone: zoneinfo.ZoneInfo, start: date, end: date | None) -> int:
    tenant_id, tz = tenant.pk, zone.key
    lo = _midnight(start, zone)
    hi = _midnight(end + timedelta(days=1), zone) if end is not None else FAR_FUTURE
    last = end or date(9999, 12, 30)
    in_range = "day >= %s AND day <= %s"
    for table, extra in (
        (DM, ""),
        (AD, f" AND activity IN ('{VISIT}', '{CART}', '{BUY}')"),
        (ST, ""),
    ):
        _execute(
            f"DELETE FROM {table} WHERE tenant_id = %s AND {in_range}{extra}",
            [tenant_id, start, last],
        )
    window = [tenant_id, lo, hi]
    sums: Deltas = defaultdict(Decimal)
    _rebuild_event_counts(tz, window, sums)
    _rebuild_days(tz, window)
    _rebuild_orders(tz, window, sums)
    outside: Deltas = defaultdict(Decimal)
    _rebuild_ranks(tenant_id, zone, window, start, last, outside)
    _rebuild_first_clicks(tenant_id, zone, window, start, last, outside)
    _rebuild_moves(tz, window)
    # The range's distinct counts, from the derived rows now in place.
    rows = _execute(
        f'SELECT day, activity, identified, "new", COUNT(*) FROM {AD}'
        f' WHERE tenant_id = %s AND {in_range} GROUP BY day, activity, identified, "new"',
        [tenant_id, start, last],
        fetch=True,
    )
    for day, activity, identified, new, n in rows:
        for metric, value in row_contributions(activity, bool(identified), bool(new)):
            sums[_as_date(day), metric] += value * n
    rows = _execute(
        f"SELECT day, metric, COUNT(*) FROM {MF} WHERE tenant_id = %s AND {in_range}"
        " GROUP BY day, metric",
        [tenant_id, start, last],
        fetch=True,
    )
    for day, metric, n in rows:
        sums[_as_date(day), metric] += n
    _metrics_add(tenant_id, {k: v for k, v in sums.items() if v})
    _metrics_add(tenant_id, outside)
    return len([v for v in sums.values() if v])


def _rebuild_event_counts(tz: str, window: list[Any], sums: Deltas) -> None:
    day_sql, day_params = _local_day_sql("occurred_at", tz)
    fact = "substr(message_id, 1, 3) = 'wf:'"
    if _pg():
        channel = (
            "CASE WHEN name = 'Unsubscribed' AND jsonb_typeof(properties -> 'channel') = 'string'"
            " THEN properties ->> 'channel' ELSE '' END"
        )
        score = "(properties ->> 'score')::numeric"
        nps = (
            "CASE WHEN name = 'NPS Submitted' AND jsonb_typeof(properties -> 'score') = 'number'"
            f" THEN CASE WHEN {score} < 0 OR {score} > 10 THEN ''"
            f" WHEN {score} >= 9 THEN 'promoter' WHEN {score} >= 7 THEN 'passive'"
            " ELSE 'detractor' END ELSE '' END"
        )
    else:
        channel = (
            "CASE WHEN name = 'Unsubscribed' AND json_type(properties, '$.channel') = 'text'"
            " THEN json_extract(properties, '$.channel') ELSE '' END"
        )
        score = "json_extract(properties, '$.score')"
        nps = (
            "CASE WHEN name = 'NPS Submitted'"
            " AND json_type(properties, '$.score') IN ('integer', 'real')"
            f" THEN CASE WHEN {score} < 0 OR {score} > 10 THEN ''"
            f" WHEN {score} >= 9 THEN 'promoter' WHEN {score} >= 7 THEN 'passive'"
            " ELSE 'detractor' END ELSE '' END"
        )
    rows = _execute(
        f"SELECT {day_sql}, type, name, {fact}, source, {channel}, {nps}, COUNT(*)"
        " FROM audience_event WHERE tenant_id = %s AND occurred_at >= %s AND occurred_at < %s"
        f" GROUP BY 1, 2, 3, 4, 5, 6, 7",
        [*day_params, *window],
        fetch=True,
    )
    for day, type_, name, fact_, source, channel_, nps_, n in rows:
        if name in FIRST_CLICKS and fact_ and source == MESSAGING:
            continue  # MessageFirst's
        for metric in event_metrics(
            type=type_,
            name=name,
            fact=bool(fact_),
            source=source,
            channel=channel_ or "",
            nps=nps_ or "",
        ):
            sums[_as_date(day), metric] += n


def _rebuild_days(tz: str, window: list[Any]) -> None:
    """The range's visit and cart rows, from the events and what their contacts are now."""
    day_sql, day_params = _local_day_sql("e.occurred_at", tz)
    created_sql, created_params = _local_day_sql("c.created_at", tz)
    tracked = (
        " FROM audience_event e WHERE e.tenant_id = %s AND e.occurred_at >= %s"
        " AND e.occurred_at < %s AND substr(e.message_id, 1, 3) <> 'wf:'"
    )
    _execute(
        f'INSERT INTO {AD} (tenant_id, day, activity, contact_id, identified, "new")'
        f" SELECT v.tenant_id, v.day, '{VISIT}', v.contact_id,"
        f" c.user_id <> '' OR c.email <> '', {created_sql} = v.day"
        f" FROM (SELECT DISTINCT e.tenant_id, {day_sql} AS day, e.contact_id{tracked}) v"
        " JOIN audience_contact c ON c.tenant_id = v.tenant_id AND c.id = v.contact_id",
        [*created_params, *day_params, *window],
    )
    _execute(
        f'INSERT INTO {AD} (tenant_id, day, activity, contact_id, identified, "new")'
        f" SELECT DISTINCT e.tenant_id, {day_sql}, '{CART}', e.contact_id, false, false"
        f"{tracked} AND e.name = '{PRODUCT_ADDED}'"
        " AND EXISTS (SELECT 1 FROM audience_contact c"
        " WHERE c.tenant_id = e.tenant_id AND c.id = e.contact_id)",
        [*day_params, *window],
    )


def _rebuild_orders(tz: str, window: list[Any], sums: Deltas) -> None:
    day_sql, day_params = _local_day_sql("occurred_at", tz)
    rows = _execute(
        f"SELECT {day_sql}, COUNT(*), SUM(COALESCE(value, 0)) FROM audience_order"
        " WHERE tenant_id = %s AND occurred_at >= %s AND occurred_at < %s GROUP BY 1",
        [*day_params, *window],
        fetch=True,
    )
    for day, n, value in rows:
        day = _as_date(day)
        sums[day, "orders"] += n
        sums[day, "repeat_orders"] += n
        sums[day, "revenue"] += Decimal(str(value)).quantize(Decimal("0.000001"))
    _execute(
        f'INSERT INTO {AD} (tenant_id, day, activity, contact_id, identified, "new")'
        f" SELECT DISTINCT tenant_id, {day_sql}, '{BUY}', contact_id, false, false"
        " FROM audience_order WHERE tenant_id = %s AND occurred_at >= %s AND occurred_at < %s",
        [*day_params, *window],
    )


def _rebuild_ranks(
    tenant_id: int,
    zone: zoneinfo.ZoneInfo,
    window: list[Any],
    start: date,
    last: date,
    outside: Deltas,
) -> None:
    """The first_order / second_order rows of every contact with an order in the range or
    such a row in it, from the whole ledger (kept beyond retention)."""
    contacts = _execute(
        "SELECT contact_id FROM audience_order WHERE tenant_id = %s AND occurred_at >= %s"
        f" AND occurred_at < %s UNION SELECT contact_id FROM {AD} WHERE tenant_id = %s"
        f" AND activity IN ('{FIRST}', '{SECOND}') AND day >= %s AND day <= %s",
        [*window, tenant_id, start, last],
        fetch=True,
    )
    ids = sorted(pk for (pk,) in contacts)
    size = 1_000_000 if _pg() else 5_000
    for at in range(0, len(ids), size):
        _ranks_sync(
            tenant_id, _Zone(zone), set(ids[at : at + size]), outside, counted=(start, last)
        )


def _rebuild_first_clicks(
    tenant_id: int,
    zone: zoneinfo.ZoneInfo,
    window: list[Any],
    start: date,
    last: date,
    outside: Deltas,
) -> None:
    """The MessageFirst rows of every message clicked in the range or with a row in it: the
    earlier of its row before the range (kept: its events may be gone) and its first click
    stored from the range's start on."""
    delivery = (
        "CASE WHEN jsonb_typeof(properties -> 'delivery_id') = 'string'"
        " THEN left(properties ->> 'delivery_id', 64) ELSE '' END"
        if _pg()
        else "CASE WHEN json_type(properties, '$.delivery_id') = 'text'"
        " THEN substr(json_extract(properties, '$.delivery_id'), 1, 64) ELSE '' END"
    )
    names = ", ".join(f"'{name}'" for name in FIRST_CLICKS)
    clicked = _execute(
        f"SELECT name, {delivery}, MIN(occurred_at) FROM audience_event"
        " WHERE tenant_id = %s AND occurred_at >= %s AND source = %s"
        f" AND substr(message_id, 1, 3) = 'wf:' AND name IN ({names}) GROUP BY 1, 2",
        [tenant_id, window[1], MESSAGING],
        fetch=True,
    )
    local = _Zone(zone)
    hi = window[2]
    first_in: dict[tuple[str, str], date] = {}
    for name, delivery_id, at in clicked:
        if not delivery_id:
            continue
        moment = at if isinstance(at, datetime) else _sqlite_datetime(at)
        first_in[FIRST_CLICKS[name], delivery_id] = local.day(moment)
    del hi
    rows = _execute(
        f"SELECT id, metric, delivery_id, day FROM {MF} WHERE tenant_id = %s",
        [tenant_id],
        fetch=True,
    )
    have = {(m, d): (pk, _as_date(day)) for pk, m, d, day in rows}
    gone, new = [], []
    for key, (pk, day) in have.items():
        if day < start:
            continue  # kept: counted from events that may be gone
        wanted = first_in.get(key)
        if wanted != day:
            gone.append((pk,))
            if day > last:
                outside[day, key[0]] -= 1
    for key, day in first_in.items():
        old = have.get(key)
        if old is not None and (old[1] < start or old[1] == day):
            continue
        new.append((key[0], key[1], day))
        if day > last:
            outside[day, key[0]] += 1
    _ids_delete(tenant_id, MF, gone)
    if new:
        _message_firsts_insert(tenant_id, new)


def _rebuild_moves(tz: str, window: list[Any]) -> None:
    day_sql, day_params = _local_day_sql("occurred_at", tz)
    if _pg():
        prop = (
            "CASE WHEN jsonb_typeof(properties -> '{0}') = 'string'"
            " THEN left(properties ->> '{0}', 20) ELSE '' END"
        )
    else:
        prop = (
            "CASE WHEN json_type(properties, '$.{0}') = 'text'"
            " THEN substr(json_extract(properties, '$.{0}'), 1, 20) ELSE '' END"
        )
    _execute(
        f"INSERT INTO {ST} (tenant_id, day, from_stage, to_stage, contacts)"
        f" SELECT tenant_id, {day_sql}, {prop.format('from')}, {prop.format('to')}, COUNT(*)"
        " FROM audience_event WHERE tenant_id = %s AND occurred_at >= %s AND occurred_at < %s"
        f" AND name = '{STAGE_CHANGED}' AND substr(message_id, 1, 3) = 'wf:' GROUP BY 1, 2, 3, 4",
        [*day_params, *window],
    )


# --- Stage snapshots ----------------------------------------------------------------------------


def stage_snapshot_take(
    *, tenant: Tenant, now: datetime | None = None, day: date | None = None
) -> date:
    """Write the team's stage counts as the snapshot of its local today (rewritten until the
    day ends, so the last write of a day is its end-of-day count), or of `day`. Returns the
    day."""
    from audience import selectors as audience_selectors

    day = day or today(tenant, now=now)
    counter = getattr(audience_selectors, "lifecycle_stage_counts", None)
    if counter is not None:
        counts = dict(counter(tenant=tenant))
    else:  # until audience provides it: the direct count
        from django.db.models import Count

        from audience.models import Contact

        counts = {
            row["lifecycle_stage"]: row["n"]
            for row in Contact.objects.filter(tenant=tenant)
            .values("lifecycle_stage")
            .annotate(n=Count("pk"))
            .order_by()
        }
    with transaction.atomic():
        for stage, contacts in counts.items():
            StageSnapshot.objects.update_or_create(
                tenant=tenant, day=day, stage=stage, defaults={"contacts": contacts}
            )
        StageSnapshot.objects.filter(tenant=tenant, day=day).exclude(
            stage__in=list(counts)
        ).delete()
    return day
