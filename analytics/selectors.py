"""Reads of the rollups (analytics/models.py) for the dashboards and the journey map: a few
hundred rows per page whatever the number of events. Every day is the team's local day."""

from __future__ import annotations

import zoneinfo
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db.models import Sum
from django.utils import timezone

from analytics.metrics import BY_KEY
from analytics.models import DailyMetric, StageSnapshot, StageTransitionDay
from tenants.models import Tenant
from tenants.selectors import team_zone

ZERO = Decimal(0)


def tenant_zone(tenant: Tenant) -> zoneinfo.ZoneInfo:
    return team_zone(tenant)


def today(tenant: Tenant, *, now: datetime | None = None) -> date:
    """The team's local today."""
    return (now or timezone.now()).astimezone(tenant_zone(tenant)).date()


def _checked(metrics: Sequence[str]) -> list[str]:
    unknown = [m for m in metrics if m not in BY_KEY]
    if unknown:
        raise ValueError(f"unknown metric(s): {', '.join(unknown)}")
    return list(dict.fromkeys(metrics))


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


def metric_series(
    *, tenant: Tenant, metrics: Sequence[str], start: date, end: date
) -> dict[str, list[tuple[date, Decimal]]]:
    """Each metric's value on every day of [start, end] (inclusive), 0 where nothing happened."""
    keys = _checked(metrics)
    found: dict[tuple[str, date], Decimal] = {}
    if keys and start <= end:
        rows = DailyMetric.objects.filter(
            tenant=tenant, metric__in=keys, day__gte=start, day__lte=end
        ).values_list("metric", "day", "value")
        found = {(metric, day): value for metric, day, value in rows}
    days = _days(start, end)
    return {key: [(day, found.get((key, day), ZERO)) for day in days] for key in keys}


def metric_totals(
    *, tenant: Tenant, metrics: Sequence[str], start: date, end: date
) -> dict[str, Decimal]:
    """Each metric summed over [start, end] (inclusive). Distinct counts (visitors, buyers…)
    are sums of the daily counts: a contact active on three days counts three times."""
    keys = _checked(metrics)
    totals = dict.fromkeys(keys, ZERO)
    if keys and start <= end:
        rows = (
            DailyMetric.objects.filter(tenant=tenant, metric__in=keys, day__gte=start, day__lte=end)
            .values("metric")
            .annotate(total=Sum("value"))
            .order_by()
        )
        totals.update({r["metric"]: r["total"] or ZERO for r in rows})
    return totals


def metric_totals_until(*, tenant: Tenant, metrics: Sequence[str], end: date) -> dict[str, Decimal]:
    """Each metric summed over every day up to `end` (inclusive): all time."""
    keys = _checked(metrics)
    totals = dict.fromkeys(keys, ZERO)
    if keys:
        rows = (
            DailyMetric.objects.filter(tenant=tenant, metric__in=keys, day__lte=end)
            .values("metric")
            .annotate(total=Sum("value"))
            .order_by()
        )
        totals.update({r["metric"]: r["total"] or ZERO for r in rows})
    return totals


def stage_transitions(*, tenant: Tenant, start: date, end: date) -> list[tuple[str, str, int]]:
    """(from stage, to stage, moves) over [start, end], most moves first; "" as from: a new
    contact's first stage. From the `Lifecycle Stage Changed` events."""
    rows = (
        StageTransitionDay.objects.filter(tenant=tenant, day__gte=start, day__lte=end)
        .values("from_stage", "to_stage")
        .annotate(total=Sum("contacts"))
        .order_by()
    )
    moves = [(r["from_stage"], r["to_stage"], int(r["total"] or 0)) for r in rows]
    return sorted((m for m in moves if m[2]), key=lambda m: (-m[2], m[0], m[1]))


def stage_history(*, tenant: Tenant, start: date, end: date) -> dict[str, list[tuple[date, int]]]:
    """Contacts in each stage at the end of each day of [start, end] (the nightly snapshots;
    today's is the latest count). A day without a snapshot (before analytics existed, or a
    missed night) is left out of every stage's list rather than shown as 0."""
    rows = StageSnapshot.objects.filter(tenant=tenant, day__gte=start, day__lte=end).values_list(
        "stage", "day", "contacts"
    )
    by_day: dict[date, dict[str, int]] = {}
    for stage, day, contacts in rows:
        by_day.setdefault(day, {})[stage] = contacts
    stages = _stage_values()
    for counts in by_day.values():
        stages += [s for s in counts if s not in stages]
    return {stage: [(day, by_day[day].get(stage, 0)) for day in sorted(by_day)] for stage in stages}


def _stage_values() -> list[str]:
    from audience.models import LifecycleStage

    return [str(value) for value in LifecycleStage.values]
