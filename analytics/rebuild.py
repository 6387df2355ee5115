"""Recomputing the rollups (analytics/rollups.py) of a team's local days from the raw events,
the order ledger and the contacts (`rollups_rebuild`), set-based, never before the first day
retention keeps (`kept_since`). It holds the team's rollup lock exclusively, so ingestion waits
and the invariant analytics/rollups.py states holds after it as before.
"""

from __future__ import annotations

import zoneinfo
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from analytics import rollup_sql as sql
from analytics.metrics import FIRST_CLICKS, MESSAGING, PRODUCT_ADDED, STAGE_CHANGED, event_metrics
from analytics.models import RollupState
from analytics.rollups import (
    AD,
    BUY,
    CART,
    DM,
    FIRST,
    MF,
    SECOND,
    ST,
    VISIT,
    Deltas,
    Zone,
    ids_delete,
    message_firsts_insert,
    metrics_add,
    ranks_sync,
    row_contributions,
)
from analytics.selectors import tenant_zone
from tenants.models import Tenant

FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)


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
    return day if sql.midnight(day, zone) >= cutoff else day + timedelta(days=1)


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
        sql.lock(tenant.pk, exclusive=True)
        report.metric_rows = _rebuild(tenant, zone, start, end)
        RollupState.objects.update_or_create(
            tenant=tenant, defaults={"timezone": zone.key, "rebuilt_at": timezone.now()}
        )
    return report


def _rebuild(tenant: Tenant, zone: zoneinfo.ZoneInfo, start: date, end: date | None) -> int:
    tenant_id, tz = tenant.pk, zone.key
    lo = sql.midnight(start, zone)
    hi = sql.midnight(end + timedelta(days=1), zone) if end is not None else FAR_FUTURE
    last = end or date(9999, 12, 30)
    in_range = "day >= %s AND day <= %s"
    for table, extra in (
        (DM, ""),
        (AD, f" AND activity IN ('{VISIT}', '{CART}', '{BUY}')"),
        (ST, ""),
    ):
        sql.execute(
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
    rows = sql.execute(
        f'SELECT day, activity, identified, "new", COUNT(*) FROM {AD}'
        f' WHERE tenant_id = %s AND {in_range} GROUP BY day, activity, identified, "new"',
        [tenant_id, start, last],
        fetch=True,
    )
    for day, activity, identified, new, n in rows:
        for metric, value in row_contributions(activity, bool(identified), bool(new)):
            sums[sql.as_date(day), metric] += value * n
    rows = sql.execute(
        f"SELECT day, metric, COUNT(*) FROM {MF} WHERE tenant_id = %s AND {in_range}"
        " GROUP BY day, metric",
        [tenant_id, start, last],
        fetch=True,
    )
    for day, metric, n in rows:
        sums[sql.as_date(day), metric] += n
    metrics_add(tenant_id, {k: v for k, v in sums.items() if v})
    metrics_add(tenant_id, outside)
    return len([v for v in sums.values() if v])


def _rebuild_event_counts(tz: str, window: list[Any], sums: Deltas) -> None:
    day_sql, day_params = sql.local_day_sql("occurred_at", tz)
    fact = "substr(message_id, 1, 3) = 'wf:'"
    if sql.pg():
        channel = (
            "CASE WHEN name = 'Unsubscribed' AND jsonb_typeof(properties -> 'channel') = 'string'"
            " THEN properties ->> 'channel' ELSE '' END"
        )
        score = "(properties ->> 'score')::numeric"
        nps = (
            "CASE WHEN name IN ('NPS Submitted', 'Survey Answered')"
            " AND jsonb_typeof(properties -> 'score') = 'number'"
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
            "CASE WHEN name IN ('NPS Submitted', 'Survey Answered')"
            " AND json_type(properties, '$.score') IN ('integer', 'real')"
            f" THEN CASE WHEN {score} < 0 OR {score} > 10 THEN ''"
            f" WHEN {score} >= 9 THEN 'promoter' WHEN {score} >= 7 THEN 'passive'"
            " ELSE 'detractor' END ELSE '' END"
        )
    rows = sql.execute(
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
            sums[sql.as_date(day), metric] += n


def _rebuild_days(tz: str, window: list[Any]) -> None:
    """The range's visit and cart rows, from the events and what their contacts are now."""
    day_sql, day_params = sql.local_day_sql("e.occurred_at", tz)
    created_sql, created_params = sql.local_day_sql("c.created_at", tz)
    tracked = (
        " FROM audience_event e WHERE e.tenant_id = %s AND e.occurred_at >= %s"
        " AND e.occurred_at < %s AND substr(e.message_id, 1, 3) <> 'wf:'"
    )
    sql.execute(
        f'INSERT INTO {AD} (tenant_id, day, activity, contact_id, identified, "new")'
        f" SELECT v.tenant_id, v.day, '{VISIT}', v.contact_id,"
        f" c.user_id <> '' OR c.email <> '', {created_sql} = v.day"
        f" FROM (SELECT DISTINCT e.tenant_id, {day_sql} AS day, e.contact_id{tracked}) v"
        " JOIN audience_contact c ON c.tenant_id = v.tenant_id AND c.id = v.contact_id",
        [*created_params, *day_params, *window],
    )
    sql.execute(
        f'INSERT INTO {AD} (tenant_id, day, activity, contact_id, identified, "new")'
        f" SELECT DISTINCT e.tenant_id, {day_sql}, '{CART}', e.contact_id, false, false"
        f"{tracked} AND e.name = '{PRODUCT_ADDED}'"
        " AND EXISTS (SELECT 1 FROM audience_contact c"
        " WHERE c.tenant_id = e.tenant_id AND c.id = e.contact_id)",
        [*day_params, *window],
    )


def _rebuild_orders(tz: str, window: list[Any], sums: Deltas) -> None:
    day_sql, day_params = sql.local_day_sql("occurred_at", tz)
    rows = sql.execute(
        f"SELECT {day_sql}, COUNT(*), SUM(COALESCE(value, 0)) FROM audience_order"
        " WHERE tenant_id = %s AND occurred_at >= %s AND occurred_at < %s GROUP BY 1",
        [*day_params, *window],
        fetch=True,
    )
    for day, n, value in rows:
        day = sql.as_date(day)
        sums[day, "orders"] += n
        sums[day, "repeat_orders"] += n
        sums[day, "revenue"] += Decimal(str(value)).quantize(Decimal("0.000001"))
    sql.execute(
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
    contacts = sql.execute(
        "SELECT contact_id FROM audience_order WHERE tenant_id = %s AND occurred_at >= %s"
        f" AND occurred_at < %s UNION SELECT contact_id FROM {AD} WHERE tenant_id = %s"
        f" AND activity IN ('{FIRST}', '{SECOND}') AND day >= %s AND day <= %s",
        [*window, tenant_id, start, last],
        fetch=True,
    )
    ids = sorted(pk for (pk,) in contacts)
    size = 1_000_000 if sql.pg() else 5_000
    for at in range(0, len(ids), size):
        ranks_sync(tenant_id, Zone(zone), set(ids[at : at + size]), outside, counted=(start, last))


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
        if sql.pg()
        else "CASE WHEN json_type(properties, '$.delivery_id') = 'text'"
        " THEN substr(json_extract(properties, '$.delivery_id'), 1, 64) ELSE '' END"
    )
    names = ", ".join(f"'{name}'" for name in FIRST_CLICKS)
    clicked = sql.execute(
        f"SELECT name, {delivery}, MIN(occurred_at) FROM audience_event"
        " WHERE tenant_id = %s AND occurred_at >= %s AND source = %s"
        f" AND substr(message_id, 1, 3) = 'wf:' AND name IN ({names}) GROUP BY 1, 2",
        [tenant_id, window[1], MESSAGING],
        fetch=True,
    )
    local = Zone(zone)
    hi = window[2]
    first_in: dict[tuple[str, str], date] = {}
    for name, delivery_id, at in clicked:
        if not delivery_id:
            continue
        moment = at if isinstance(at, datetime) else sql.sqlite_datetime(at)
        first_in[FIRST_CLICKS[name], delivery_id] = local.day(moment)
    del hi
    rows = sql.execute(
        f"SELECT id, metric, delivery_id, day FROM {MF} WHERE tenant_id = %s",
        [tenant_id],
        fetch=True,
    )
    have = {(m, d): (pk, sql.as_date(day)) for pk, m, d, day in rows}
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
    ids_delete(tenant_id, MF, gone)
    if new:
        message_firsts_insert(tenant_id, new)


def _rebuild_moves(tz: str, window: list[Any]) -> None:
    day_sql, day_params = sql.local_day_sql("occurred_at", tz)
    if sql.pg():
        prop = (
            "CASE WHEN jsonb_typeof(properties -> '{0}') = 'string'"
            " THEN left(properties ->> '{0}', 20) ELSE '' END"
        )
    else:
        prop = (
            "CASE WHEN json_type(properties, '$.{0}') = 'text'"
            " THEN substr(json_extract(properties, '$.{0}'), 1, 20) ELSE '' END"
        )
    sql.execute(
        f"INSERT INTO {ST} (tenant_id, day, from_stage, to_stage, contacts)"
        f" SELECT tenant_id, {day_sql}, {prop.format('from')}, {prop.format('to')}, COUNT(*)"
        " FROM audience_event WHERE tenant_id = %s AND occurred_at >= %s AND occurred_at < %s"
        f" AND name = '{STAGE_CHANGED}' AND substr(message_id, 1, 3) = 'wf:' GROUP BY 1, 2, 3, 4",
        [*day_params, *window],
    )
