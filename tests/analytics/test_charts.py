"""analytics/charts.py: every chart is well-formed SVG a screen reader can name and describe,
draws what it is given (gaps where a day has no value), and needs no inline style."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date, timedelta
from decimal import Decimal

import pytest

from analytics import charts
from analytics.dashboards import format_count, format_money, format_rate, format_score

SVG = "{http://www.w3.org/2000/svg}"
DAYS = [date(2026, 11, 1) + timedelta(days=n) for n in range(30)]


def parsed(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # raises on anything that is not well-formed XML
    assert root.tag == f"{SVG}svg"
    return root


def assert_accessible(root: ET.Element, key: str, title: str) -> None:
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == f"{key}-title {key}-desc"
    title_el = root.find(f"{SVG}title")
    desc_el = root.find(f"{SVG}desc")
    assert title_el is not None and title_el.get("id") == f"{key}-title"
    assert title_el.text == title
    assert desc_el is not None and desc_el.get("id") == f"{key}-desc" and desc_el.text
    assert list(root)[:2] == [title_el, desc_el]  # first, as SVG 2 asks
    for element in root.iter():
        assert "style" not in element.attrib  # the CSP refuses inline styles


def texts(root: ET.Element, css: str) -> list[str]:
    return [t.text or "" for t in root.iter(f"{SVG}text") if css in (t.get("class") or "")]


def test_a_line_chart_is_accessible_and_draws_both_periods() -> None:
    svg = charts.line_chart(
        key="chart-visitors",
        title='Visitors per day <"quoted"> & more',
        desc="Visitors, 1 Nov to 30 Nov 2026, days in Europe/Berlin.",
        dates=DAYS,
        current=[Decimal(n * 10) for n in range(30)],
        previous=[Decimal(150)] * 30,
        formatter=format_count,
    )
    root = parsed(svg)
    assert_accessible(root, "chart-visitors", 'Visitors per day <"quoted"> & more')
    lines = root.findall(f".//{SVG}polyline")
    assert [line.get("class") for line in lines] == [
        "an-series an-previous",
        "an-series an-current",
    ]
    assert all(len((line.get("points") or "").split()) == 30 for line in lines)
    # The y axis runs from 0 to a round top above 290, its labels formatted like the figures.
    assert texts(root, "an-y") == ["0", "100", "200", "300"]
    # At most six day labels, the first and last days among them, in the given (local) days.
    days = texts(root, "an-x")
    assert len(days) <= 6 and days[0] == "1 Nov" and days[-1] == "30 Nov"


def test_a_day_without_a_value_is_a_gap_not_a_zero() -> None:
    values: list[Decimal | None] = [Decimal("0.1"), Decimal("0.2"), None, Decimal("0.3"), None]
    root = parsed(
        charts.line_chart(
            key="c",
            title="Open rate",
            desc="d",
            dates=DAYS[:5],
            current=values,
            previous=None,
            formatter=format_rate,
        )
    )
    runs = root.findall(f".//{SVG}polyline")
    dots = root.findall(f".//{SVG}circle")
    assert len(runs) == 1 and len(runs[0].get("points", "").split()) == 2  # days 1-2
    assert len(dots) == 1  # day 4 alone, a dot
    assert texts(root, "an-y")[-1] == "30\xa0%"  # a round tick loses its ".0"


def test_negative_scores_get_an_axis_below_zero() -> None:
    root = parsed(
        charts.line_chart(
            key="nps",
            title="NPS",
            desc="d",
            dates=DAYS[:3],
            current=[Decimal(-40), Decimal(10), Decimal(35)],
            previous=None,
            formatter=format_score,
        )
    )
    ticks = texts(root, "an-y")
    assert ticks[0].startswith("\u2212") and "0" in ticks and ticks[-1] == "40"
    zero = [g for g in root.iter(f"{SVG}line") if "an-zero" in (g.get("class") or "")]
    assert len(zero) == 1


def test_a_stack_chart_piles_each_days_series() -> None:
    root = parsed(
        charts.stack_chart(
            key="stack",
            title="New and returning",
            desc="Stacked bars",
            dates=DAYS[:3],
            series=[("New", [Decimal(1), Decimal(0), Decimal(3)]), ("Returning", [2, 2, None])],
            formatter=format_count,
        )
    )
    assert_accessible(root, "stack", "New and returning")
    bars = root.findall(f".//{SVG}rect")
    assert [b.get("class") for b in bars] == [
        "an-bar an-s0",
        "an-bar an-s1",
        "an-bar an-s1",  # day 2 has no new visitors: no empty bar
        "an-bar an-s0",
    ]
    first_new, first_returning = bars[0], bars[1]
    # Returning sits on top of new: its bottom edge is new's top edge.
    top = float(first_returning.get("y", 0)) + float(first_returning.get("height", 0))
    assert top == pytest.approx(float(first_new.get("y", 0)), abs=0.11)


def test_a_sparkline_stretches_and_spans_its_own_range() -> None:
    root = parsed(
        charts.sparkline(
            key="spark-revenue",
            title="Revenue",
            desc="Revenue day by day",
            values=[Decimal(1000), Decimal(1010), Decimal(1005)],
        )
    )
    assert_accessible(root, "spark-revenue", "Revenue")
    assert root.get("preserveAspectRatio") == "none"
    points = root.find(f".//{SVG}polyline").get("points", "").split()  # type: ignore[union-attr]
    ys = [float(p.split(",")[1]) for p in points]
    # From its lowest to its highest value, not from zero: the movement shows.
    assert max(ys) - min(ys) == pytest.approx(charts.SPARK_H - 6)


@pytest.mark.parametrize(
    "values",
    [[], [None, None], [Decimal(0)] * 7, [Decimal(5)]],
    ids=["none", "nulls", "flat", "one"],
)
def test_charts_of_nothing_are_still_well_formed(values: list[Decimal | None]) -> None:
    parsed(charts.sparkline(key="s", title="t", desc="d", values=values))
    dates = DAYS[: len(values)] or DAYS[:1]
    padded = values or [None]
    parsed(
        charts.line_chart(
            key="l",
            title="t",
            desc="d",
            dates=dates,
            current=padded,
            previous=padded,
            formatter=format_money,
        )
    )
    parsed(
        charts.stack_chart(
            key="b",
            title="t",
            desc="d",
            dates=dates,
            series=[("x", padded)],
            formatter=format_count,
        )
    )


def test_round_steps_for_the_axis() -> None:
    assert charts.scale([Decimal(290)]) == (0, 300, 100)
    assert charts.scale([Decimal("0.034")]) == pytest.approx((0, 0.04, 0.01))
    assert charts.scale([]) == (0, 1, 0.25)
    assert charts.tick_text(format_money, 1500.0) == "1,500"
