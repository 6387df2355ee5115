"""Reading a dashboard page: every figure of its cards and charts for a period and the one
before it, from the rollups (analytics.selectors) in one or two queries, and from the nightly
stage history for the retention page.

    page_read(*, tenant, page, period) -> PageData
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from analytics import selectors
from analytics.dashboards import (
    MEASURES,
    STAGE_LABELS,
    STAGE_MEASURES,
    ZERO,
    Change,
    Measure,
    Page,
    change_of,
    measure_get,
)
from analytics.periods import Period


@dataclass(frozen=True)
class Figure:
    measure: Measure
    value: Decimal | None
    previous: Decimal | None
    change: Change
    daily: list[Decimal | None]  # the period's values day by day (the sparkline)

    @property
    def display(self) -> str:
        return self.measure.format(self.value)

    @property
    def previous_display(self) -> str:
        return self.measure.format(self.previous)


@dataclass(frozen=True)
class Daily:
    """Values day by day for this period and the previous one (day i against day i)."""

    current: list[tuple[date, Decimal | None]]
    previous: list[tuple[date, Decimal | None]]


@dataclass
class PageData:
    page: Page
    period: Period
    figures: list[Figure]
    daily: dict[str, Daily]  # every measure and stage of the page, by key
    stages_at_end: list[tuple[str, int]] = field(default_factory=list)
    stages_day: date | None = None  # the day stages_at_end counts (the period's last snapshot)
    transitions: list[tuple[str, str, int]] = field(default_factory=list)


def _metrics_of(measures: Sequence[Measure]) -> list[str]:
    needed: dict[str, None] = {}
    for m in measures:
        needed.update(dict.fromkeys(m.metrics))
    return list(needed)


class Rollups:
    """The rollups of a period and the one before it, read in one metric_series call (plus
    one metric_totals_until when a cumulative measure needs what came before)."""

    def __init__(
        self, *, tenant: Any, period: Period, metrics: Sequence[str], cumulative: bool
    ) -> None:
        self.period = period
        before = period.previous
        series = (
            selectors.metric_series(
                tenant=tenant, metrics=list(metrics), start=before.start, end=period.end
            )
            if metrics
            else {}
        )
        self.days: dict[date, dict[str, Decimal]] = {
            d: dict.fromkeys(metrics, ZERO) for d in (*before.dates(), *period.dates())
        }
        for metric, points in series.items():
            for day, value in points:
                if day in self.days:
                    self.days[day][metric] = Decimal(value)
        self.base: dict[str, Decimal] = dict.fromkeys(metrics, ZERO)
        if cumulative and metrics:
            until = selectors.metric_totals_until(
                tenant=tenant, metrics=list(metrics), end=before.start - timedelta(days=1)
            )
            self.base.update({k: Decimal(v) for k, v in until.items()})
        self._totals: dict[tuple[date, date], dict[str, Decimal]] = {}
        self._running: dict[date, dict[str, Decimal]] | None = None

    def totals(self, period: Period) -> dict[str, Decimal]:
        """Each metric summed over `period` (computed once per period)."""
        key = (period.start, period.end)
        found = self._totals.get(key)
        if found is None:
            found = self._totals[key] = {
                m: sum((self.days[d][m] for d in period.dates()), ZERO) for m in self.base
            }
        return found

    def until(self, end: date) -> dict[str, Decimal]:
        """Each metric summed over all time up to `end` (a day of either period, or the day
        before them): running sums, computed once for every day."""
        if self._running is None:
            running = dict(self.base)
            self._running = {}
            for day in sorted(self.days):
                running = {m: running[m] + self.days[day][m] for m in running}
                self._running[day] = running
        return self._running.get(end, self.base)

    def value(self, measure: Measure, period: Period) -> Decimal | None:
        return measure.value(self.until(period.end) if measure.cumulative else self.totals(period))

    def daily(self, measure: Measure, period: Period) -> list[tuple[date, Decimal | None]]:
        if measure.cumulative:
            return [(d, measure.value(self.until(d))) for d in period.dates()]
        return [(d, measure.value(self.days[d])) for d in period.dates()]


class StageDays:
    """stage_history over a period and the one before: contacts per stage at each day's end.
    A day without a snapshot (before analytics existed, a missed night) has no values."""

    def __init__(self, *, tenant: Any, period: Period) -> None:
        before = period.previous
        history = selectors.stage_history(tenant=tenant, start=before.start, end=period.end)
        self.days: dict[date, dict[str, Decimal]] = {}
        for stage, points in history.items():
            for day, count in points:
                self.days.setdefault(day, dict.fromkeys(STAGE_LABELS, ZERO))[stage] = Decimal(count)

    def _on(self, key: str, day: date) -> Decimal | None:
        counts = self.days.get(day)
        if counts is None:
            return None
        if key in STAGE_MEASURES:
            return STAGE_MEASURES[key].value(counts)
        return counts.get(key, ZERO)

    def daily(self, key: str, period: Period) -> list[tuple[date, Decimal | None]]:
        return [(d, self._on(key, d)) for d in period.dates()]

    def value(self, measure: Measure, period: Period) -> Decimal | None:
        """At the end of the period: its last day with a snapshot."""
        last = self.last_day(period)
        return None if last is None else self._on(measure.key, last)

    def last_day(self, period: Period) -> date | None:
        return max((d for d in self.days if period.start <= d <= period.end), default=None)


def page_read(*, tenant: Any, page: Page, period: Period) -> PageData:
    """Every figure of `page` for `period` and the previous period of the same length."""
    before = period.previous
    keys = {*page.cards, *(k for c in page.charts if not c.stages for k in c.measures)}
    rollup_measures = [MEASURES[k] for k in keys if k in MEASURES]
    rollups = Rollups(
        tenant=tenant,
        period=period,
        metrics=_metrics_of(rollup_measures),
        cumulative=any(m.cumulative for m in rollup_measures),
    )
    stage_days = StageDays(tenant=tenant, period=period) if page.stages else None

    daily: dict[str, Daily] = {}
    for m in rollup_measures:
        daily[m.key] = Daily(rollups.daily(m, period), rollups.daily(m, before))
    if stage_days is not None:
        for key in (*STAGE_MEASURES, *STAGE_LABELS):
            daily[key] = Daily(stage_days.daily(key, period), stage_days.daily(key, before))

    figures = []
    for key in page.cards:
        measure = measure_get(key)
        source: Rollups | StageDays | None = stage_days if key in STAGE_MEASURES else rollups
        assert source is not None
        value, previous = source.value(measure, period), source.value(measure, before)
        figures.append(
            Figure(
                measure,
                value,
                previous,
                change_of(measure, value, previous),
                [v for _, v in daily[key].current],
            )
        )
    data = PageData(page=page, period=period, figures=figures, daily=daily)
    if stage_days is not None:
        data.stages_day = stage_days.last_day(period)
        if data.stages_day is not None:
            end = stage_days.days[data.stages_day]
            data.stages_at_end = [(s, int(end[s])) for s in STAGE_LABELS]
        data.transitions = selectors.stage_transitions(
            tenant=tenant, start=period.start, end=period.end
        )
    return data
