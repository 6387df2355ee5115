"""Keeping the rollups (analytics/models.py) exact: incrementally inside the transaction that
stores events (`events_stored`, registered with audience.registry), when contacts merge
(`contacts_merged_move`) or change (`contacts_reconcile`), and from the raw events
(`rollups_rebuild`, analytics/rebuild.py). docs/analytics.md says what each metric counts and
why the two agree.

The invariant every writer keeps, for each team and local day d:
- a per-event metric (metrics.event_metrics) = the stored events of d it counts;
- orders / revenue = the order ledger's orders of d, their values' sum;
- visitors… buyers = the ActiveDay rows of d (row_contributions says which row adds what),
  first_orders = the contacts' first_order rows of d, repeat_orders = orders - first_orders;
- email_clicked / push_clicked = the MessageFirst rows of d;
- StageTransitionDay = the `Lifecycle Stage Changed` facts of d by (from, to).

Writers change a derived row and add the difference of its contributions to DailyMetric in the
same transaction, so the tables never disagree. On PostgreSQL every writer takes a per-team
advisory lock (analytics/rollup_sql.py).
"""

from __future__ import annotations

import logging
import zoneinfo
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction

from analytics import rollup_sql as sql
from analytics.metrics import (
    FIRST_CLICKS,
    MESSAGING,
    NPS_EVENTS,
    ORDER_COMPLETED,
    PRODUCT_ADDED,
    STAGE_CHANGED,
    SURVEY_ANSWERED,
    event_metrics,
    is_fact,
    nps_class,
    text_property,
)
from analytics.models import ActiveDay, Activity, DailyMetric, MessageFirst, StageTransitionDay
from analytics.selectors import tenant_zone
from core.db import json_text
from tenants.models import Tenant

logger = logging.getLogger(__name__)

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


def metrics_add(tenant_id: int, deltas: Mapping[tuple[date, str], Any]) -> None:
    """DailyMetric += deltas, one statement (upsert)."""
    rows = [(day, metric, value) for (day, metric), value in deltas.items() if value]
    if not rows:
        return
    for batch in sql.batches(rows, 3):
        source, params = sql.source(
            (("day", "date"), ("metric", "text"), ("value", "numeric")), batch
        )
        sql.execute(
            f"INSERT INTO {DM} (tenant_id, day, metric, value)"
            f" SELECT %s, v.day, v.metric, v.value FROM {source} AS v WHERE true"
            " ON CONFLICT (tenant_id, metric, day) DO UPDATE"
            f" SET value = {DM}.value + excluded.value",
            [tenant_id, *params],
        )


# --- Incremental: the events_stored hook --------------------------------------------------------


class Zone:
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
    zone = Zone(tenant_zone(tenant))
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
            elif name == SURVEY_ANSWERED:
                for metric in event_metrics(
                    type=row.type,
                    name=name,
                    fact=True,
                    source=row.source,
                    nps=nps_class(properties),
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
        nps = nps_class(properties) if name in NPS_EVENTS else ""
        found = tracked.get((row.type, name, nps))
        if found is None:
            found = tracked[row.type, name, nps] = event_metrics(
                type=row.type, name=name, fact=False, source="", nps=nps
            )
        for metric in found:
            deltas[day, metric] += 1
    if not (deltas or visits or carts or orders or clicks or moves):
        return  # facts no figure counts (segment entries, skipped messages…): no statement
    sql.lock(tenant_id)
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
    metrics_add(tenant_id, deltas)


def _contacts_flags(
    tenant_id: int, contact_ids: Iterable[int], zone: Zone
) -> dict[int, tuple[bool, date]]:
    """{contact id: (identified, local day of creation)} of the team's stored contacts."""
    wanted = sorted(set(contact_ids))
    if not wanted:
        return {}
    if sql.pg():
        found = sql.execute(
            "SELECT id, user_id <> '' OR email <> '', created_at FROM audience_contact"
            " WHERE tenant_id = %s AND id = ANY(ARRAY(SELECT jsonb_array_elements_text(%s::jsonb)"
            "::bigint))",
            [tenant_id, json_text(wanted)],
            fetch=True,
        )
    else:
        from audience.models import Contact

        found = []
        for at in range(0, len(wanted), sql.SQLITE_MAX_PARAMS):
            found += Contact.objects.filter(
                tenant_id=tenant_id, pk__in=wanted[at : at + sql.SQLITE_MAX_PARAMS]
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
    for batch in sql.batches(rows, len(_ACTIVE_COLUMNS)):
        source, params = sql.source(_ACTIVE_COLUMNS, batch)
        inserted += sql.execute(
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
    zone: Zone,
    visits: set[tuple[int, date]],
    carts: set[tuple[int, date]],
    buys: set[tuple[int, date]],
    deltas: Deltas,
    ranks: _RankChanges = ([], []),
) -> None:
    """The chunk's ActiveDay rows (inserted where not there yet), with the visitors' flags read
    off their contacts, and the flags of those contacts' earlier visit rows set right; on
    PostgreSQL also the rank rows' changes `_orders_add` planned (counted already)."""
    if sql.pg():
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
        _add_row(deltas, sql.as_date(day), activity, bool(identified), bool(new), 1)
    if flags:
        _flags_reconcile(tenant_id, flags, deltas)


def _days_add_pg(
    tenant_id: int,
    zone: Zone,
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
    source, params = sql.source(
        (("day", "date"), ("activity", "text"), ("contact_id", "bigint")), rows
    )
    found = sql.execute(
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
    source, params = sql.source(
        (("contact_id", "bigint"), ("identified", "boolean"), ("created", "date")),
        [(pk, identified, created) for pk, (identified, created) in flags.items()],
    )
    stale = sql.execute(
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
        day = sql.as_date(day)
        now_new = day == sql.as_date(created)
        _add_row(deltas, day, VISIT, bool(identified), bool(new), -1)
        _add_row(deltas, day, VISIT, bool(now_identified), now_new, 1)
        fixed.append((pk, bool(now_identified), now_new))
    source, params = sql.source(
        (("id", "bigint"), ("identified", "boolean"), ("new", "boolean")), fixed
    )
    sql.execute(
        f'UPDATE {AD} SET identified = v.identified, "new" = v."new" FROM {source} AS v'
        f" WHERE {AD}.tenant_id = %s AND {AD}.id = v.id",
        [*params, tenant_id],
    )


# (rank rows to insert: (day, activity, contact id, False, False); ids of rank rows to delete)
_RankChanges = tuple[list[tuple[date, str, int, bool, bool]], list[tuple[int]]]


def _orders_add(
    tenant_id: int,
    zone: Zone,
    orders: list[tuple[str, int, datetime]],
    deltas: Deltas,
) -> tuple[set[tuple[int, date]], _RankChanges]:
    """Count the orders the ledger stored with these events (not an order it held already: an
    old message sent again after retention removed its event). Returns the buyers' (contact,
    day) and, on PostgreSQL, the first/second order rows to change (written by `_days_add`'s
    statement); elsewhere they are written here."""
    source, params = sql.source(
        (("message_id", "text"), ("id", "bigint"), ("occurred_at", "timestamptz")), orders
    )
    ranked: list[tuple] = []
    have: list[tuple] = []
    if sql.pg():
        # The ledger's row was written by this very (sub)transaction exactly when it carries
        # the same xmin as the event just inserted with it (audience.services._events_store
        # writes both in one block): a row the ledger held already has an older one. The same
        # statement reads the new buyers' first two orders and their rank rows.
        found = sql.execute(
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
        new = sql.execute(
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
        occurred = occurred if isinstance(occurred, datetime) else sql.sqlite_datetime(occurred)
        day = zone.day(occurred)
        deltas[day, "orders"] += 1
        deltas[day, "repeat_orders"] += 1  # until found to be the first, below
        deltas[day, "revenue"] += Decimal(str(value)) if value is not None else Decimal(0)
        buys.add((contact_id, day))
    if sql.pg():
        return buys, _ranks_plan(ranked, have, zone, deltas)
    ranks_sync(tenant_id, zone, {contact_id for contact_id, _ in buys}, deltas)
    return buys, ([], [])


def ranks_sync(
    tenant_id: int,
    zone: Zone,
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
    source, params = sql.source((("contact_id", "bigint"),), [(pk,) for pk in sorted(contact_ids)])
    ranked = sql.execute(
        "SELECT r.contact_id, r.occurred_at, r.rank FROM (SELECT o.contact_id, o.occurred_at,"
        " ROW_NUMBER() OVER (PARTITION BY o.contact_id ORDER BY o.occurred_at, o.id) AS rank"
        f" FROM {source} AS v JOIN audience_order o"
        " ON o.tenant_id = %s AND o.contact_id = v.contact_id) r WHERE r.rank <= 2",
        [*params, tenant_id],
        fetch=True,
    )
    have = sql.execute(
        f"SELECT a.id, a.contact_id, a.activity, a.day FROM {source} AS v JOIN {AD} a"
        " ON a.tenant_id = %s AND a.contact_id = v.contact_id"
        f" AND a.activity IN ('{FIRST}', '{SECOND}')",
        [*params, tenant_id],
        fetch=True,
    )
    rows, gone = _ranks_plan(ranked, have, zone, deltas, counted=counted)
    ids_delete(tenant_id, AD, gone)
    if rows:
        _active_insert(tenant_id, rows)


def _ranks_plan(
    ranked: Sequence[tuple],
    have: Sequence[tuple],
    zone: Zone,
    deltas: Deltas,
    *,
    counted: tuple[date, date] | None = None,
) -> _RankChanges:
    """The rank rows to insert and delete so that `have` (id, contact, activity, day) says what
    `ranked` (contact, occurred_at, rank 1 or 2, from the ledger) does; their difference added
    to `deltas` (not for days within `counted`)."""
    wanted = {
        (contact_id, RANKS[rank - 1]): zone.day(
            at if isinstance(at, datetime) else sql.sqlite_datetime(at)
        )
        for contact_id, at, rank in ranked
    }
    existing = {
        (contact_id, activity): (pk, sql.as_date(day)) for pk, contact_id, activity, day in have
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


def ids_delete(tenant_id: int, table: str, ids: Sequence[tuple[int]]) -> None:
    for batch in sql.batches(ids, 1):
        if not batch:
            continue
        source, params = sql.source((("id", "bigint"),), batch)
        sql.execute(
            f"DELETE FROM {table} WHERE tenant_id = %s AND id IN (SELECT v.id FROM {source} AS v)",
            [tenant_id, *params],
        )


def _first_clicks_add(tenant_id: int, clicks: dict[tuple[str, str], date], deltas: Deltas) -> None:
    """Each clicked message's MessageFirst row at the earliest click day."""
    keys = list(clicks)
    source, params = sql.source((("metric", "text"), ("delivery_id", "text")), keys)
    have = sql.execute(
        f"SELECT m.id, m.metric, m.delivery_id, m.day FROM {source} AS v JOIN {MF} m"
        " ON m.tenant_id = %s AND m.metric = v.metric AND m.delivery_id = v.delivery_id",
        [*params, tenant_id],
        fetch=True,
    )
    existing = {(metric, delivery): (pk, sql.as_date(day)) for pk, metric, delivery, day in have}
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
        message_firsts_insert(tenant_id, new)
    if moved:
        source, params = sql.source((("id", "bigint"), ("day", "date")), moved)
        sql.execute(
            f"UPDATE {MF} SET day = v.day FROM {source} AS v"
            f" WHERE {MF}.tenant_id = %s AND {MF}.id = v.id",
            [*params, tenant_id],
        )


def message_firsts_insert(tenant_id: int, rows: Sequence[tuple[str, str, date]]) -> None:
    for batch in sql.batches(rows, 3):
        source, params = sql.source(
            (("metric", "text"), ("delivery_id", "text"), ("day", "date")), batch
        )
        sql.execute(
            f"INSERT INTO {MF} (tenant_id, metric, delivery_id, day)"
            f" SELECT %s, v.metric, v.delivery_id, v.day FROM {source} AS v",
            [tenant_id, *params],
        )


def _moves_add(tenant_id: int, moves: Mapping[tuple[date, str, str], int]) -> None:
    rows = [(day, source, to, n) for (day, source, to), n in moves.items() if n]
    for batch in sql.batches(rows, 4):
        source, params = sql.source(
            (("day", "date"), ("from_stage", "text"), ("to_stage", "text"), ("n", "bigint")),
            batch,
        )
        sql.execute(
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
    sql.lock(tenant_id)
    everyone = sorted(set(merged) | set(merged.values()))
    source, params = sql.source((("contact_id", "bigint"),), [(pk,) for pk in everyone])
    rows = sql.execute(
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
                _add_row(deltas, sql.as_date(day), activity, False, False, -1)
            continue
        gone.append((pk,))
        day = sql.as_date(day)
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
    ids_delete(tenant_id, AD, gone)
    if new_rows:
        _active_insert(tenant_id, new_rows)
    # The ledger's orders have moved to the targets already (audience/identity.py); a contact
    # has rank rows exactly when it has orders, so without any there is nothing to rank.
    if any(row[3] in RANKS for row in rows):
        ranks_sync(tenant_id, Zone(tenant_zone(tenant)), set(merged.values()), deltas)
    metrics_add(tenant_id, deltas)


def contacts_reconcile(*, tenant: Tenant, contact_ids: Sequence[int]) -> None:
    """Make the visit rows of these contacts say whether they are identified now (a profile
    edited in the UI, the REST API or an import: audience.signals.contacts_changed, after its
    commit), in a transaction of its own."""
    if not contact_ids:
        return
    zone = Zone(tenant_zone(tenant))
    with transaction.atomic():
        sql.lock(tenant.pk)
        flags = _contacts_flags(tenant.pk, contact_ids, zone)
        deltas: Deltas = defaultdict(Decimal)
        if flags:
            _flags_reconcile(tenant.pk, flags, deltas)
        metrics_add(tenant.pk, deltas)
