"""The rollups' read API (analytics/selectors.py): every day of a range, zero-filled; totals over
a range and all time; stage moves and history; the team's local today; and no figure of
another team, ever."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from analytics.models import DailyMetric, StageSnapshot, StageTransitionDay
from analytics.selectors import (
    metric_series,
    metric_totals,
    metric_totals_until,
    stage_history,
    stage_transitions,
    today,
)

pytestmark = pytest.mark.django_db

D1, D2, D3 = date(2026, 11, 9), date(2026, 11, 10), date(2026, 11, 11)


@pytest.fixture
def figures(world: Any) -> Any:
    """acme and globex both have figures on the same days; globex's are far larger."""
    for tenant, scale in ((world.acme, 1), (world.globex, 1000)):
        DailyMetric.objects.bulk_create(
            [
                DailyMetric(tenant=tenant, day=D1, metric="visitors", value=3 * scale),
                DailyMetric(tenant=tenant, day=D3, metric="visitors", value=5 * scale),
                DailyMetric(tenant=tenant, day=D1, metric="revenue", value=Decimal("9.99") * scale),
                DailyMetric(tenant=tenant, day=date(2025, 1, 1), metric="orders", value=scale),
            ]
        )
        StageTransitionDay.objects.bulk_create(
            [
                StageTransitionDay(
                    tenant=tenant, day=D1, from_stage="", to_stage="awareness", contacts=2 * scale
                ),
                StageTransitionDay(
                    tenant=tenant,
                    day=D2,
                    from_stage="awareness",
                    to_stage="acquisition",
                    contacts=scale,
                ),
            ]
        )
        StageSnapshot.objects.bulk_create(
            [
                StageSnapshot(tenant=tenant, day=D1, stage="awareness", contacts=7 * scale),
                StageSnapshot(tenant=tenant, day=D3, stage="awareness", contacts=8 * scale),
            ]
        )
    return world


def test_a_series_has_every_day_of_the_range_zero_filled(figures: Any) -> None:
    series = metric_series(tenant=figures.acme, metrics=["visitors", "orders"], start=D1, end=D3)
    assert series == {
        "visitors": [(D1, Decimal(3)), (D2, Decimal(0)), (D3, Decimal(5))],
        "orders": [(D1, Decimal(0)), (D2, Decimal(0)), (D3, Decimal(0))],
    }
    assert metric_series(tenant=figures.acme, metrics=["visitors"], start=D3, end=D1) == {
        "visitors": []
    }


def test_totals_over_a_range_and_all_time(figures: Any) -> None:
    assert metric_totals(
        tenant=figures.acme, metrics=["visitors", "revenue", "orders"], start=D1, end=D3
    ) == {"visitors": Decimal(8), "revenue": Decimal("9.99"), "orders": Decimal(0)}
    assert metric_totals_until(tenant=figures.acme, metrics=["orders", "visitors"], end=D2) == {
        "orders": Decimal(1),
        "visitors": Decimal(3),
    }


def test_an_unknown_metric_is_refused(figures: Any) -> None:
    with pytest.raises(ValueError, match="unknown metric"):
        metric_totals(tenant=figures.acme, metrics=["visits"], start=D1, end=D3)


def test_stage_moves_and_history(figures: Any) -> None:
    assert stage_transitions(tenant=figures.acme, start=D1, end=D3) == [
        ("", "awareness", 2),
        ("awareness", "acquisition", 1),
    ]
    history = stage_history(tenant=figures.acme, start=D1, end=D3)
    assert history["awareness"] == [(D1, 7), (D3, 8)]  # D2 had no snapshot: left out
    assert all(len(days) == 2 for days in history.values())


def test_no_selector_shows_another_teams_figures(figures: Any) -> None:
    acme = figures.acme
    assert (
        max(
            v
            for _, v in metric_series(tenant=acme, metrics=["visitors"], start=D1, end=D3)[
                "visitors"
            ]
        )
        == 5
    )
    assert metric_totals(tenant=acme, metrics=["revenue"], start=D1, end=D3)["revenue"] < 10
    assert metric_totals_until(tenant=acme, metrics=["orders"], end=D3)["orders"] == 1
    assert sum(n for *_, n in stage_transitions(tenant=acme, start=D1, end=D3)) == 3
    assert (
        max(n for days in stage_history(tenant=acme, start=D1, end=D3).values() for _, n in days)
        == 8
    )


def test_today_is_the_teams_local_day(world: Any) -> None:
    world.acme.timezone = "Pacific/Auckland"  # UTC+13 in November
    moment = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)
    assert today(world.acme, now=moment) == date(2026, 11, 11)
    world.acme.timezone = "America/Los_Angeles"
    assert today(world.acme, now=moment) == date(2026, 11, 10)
