"""The geometry of the campaign pages' pictures, drawn by the templates as inline SVG: the send's
stacked progress bar and the results' bar and line charts. Pure functions over the selectors'
dataclasses (Progress, Results); no JavaScript chart library, nothing the CSP would refuse
(positions are SVG attributes, colours are classes in static/campaigns/campaigns.css).

Coordinates are in each SVG's viewBox units; the SVG scales to its box's width.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# --- the progress bar ------------------------------------------------------------------------


@dataclass(frozen=True)
class BarPart:
    key: str  # the CSS class: sent, skipped, failed, going, waiting
    label: str
    count: int
    x: float  # percent of the bar
    width: float


def progress_bar(progress: Any) -> list[BarPart]:
    """The parts of a send's bar, left to right, of those to send (the hold-out aside)."""
    total = progress.total - progress.holdout
    parts = [
        ("sent", "Sent", progress.sent),
        ("skipped", "Skipped", sum(progress.skipped.values())),
        ("failed", "Failed", progress.failed),
        ("going", "Queued or sending", progress.queued + progress.sending),
        ("waiting", "Waiting", progress.waiting),
    ]
    found: list[BarPart] = []
    x = 0.0
    for key, label, count in parts:
        width = 100 * count / total if total else 0.0
        found.append(BarPart(key, label, count, round(x, 3), round(width, 3)))
        x += width
    return found


# --- the results' charts -----------------------------------------------------------------------

BAR_W, BAR_H = 480, 260  # the bar chart's viewBox
PAD_L, PAD_B, PAD_T = 52, 34, 16
METRICS = [("open", "Opened"), ("click", "Clicked"), ("conversion", "Converted")]


@dataclass(frozen=True)
class Bar:
    metric: str
    label: str  # "Variant A opened 41.2 %"
    value: float  # the rate, 0-1
    x: float
    y: float
    width: float
    height: float
    text_x: float
    text_y: float
    text: str


@dataclass(frozen=True)
class BarGroup:
    label: str
    x: float  # the group label's centre
    bars: list[Bar]


@dataclass(frozen=True)
class Tick:
    y: float
    text: str


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    groups: list[BarGroup]
    ticks: list[Tick]
    left: float
    bottom: float
    right: float


def _percent(value: float) -> str:
    return f"{100 * value:.1f} %".replace(".0 %", " %")


def _short_percent(value: float) -> str:
    """A bar's label, narrow enough to sit over a bar: 26%, 4.5%."""
    percent = 100 * value
    return f"{percent:.0f}%" if percent >= 10 or percent == 0 else f"{percent:.1f}%"


def _nice_top(peak: float) -> float:
    """The y axis' top: a round rate a little above the highest bar."""
    for top in (0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 0.75, 1.0):
        if peak <= top:
            return top
    return 1.0


def rates_chart(rows: list[Any]) -> BarChart:
    """Grouped bars: for each variant (and the hold-out) its open, click and conversion rates."""
    values = [
        [(metric, label, getattr(row, f"{metric}_rate") or 0.0) for metric, label in METRICS]
        for row in rows
    ]
    peak = max((v for group in values for _, _, v in group), default=0.0)
    top = _nice_top(peak)
    inner_w = BAR_W - PAD_L - 8
    inner_h = BAR_H - PAD_T - PAD_B
    bottom = PAD_T + inner_h
    slot = inner_w / max(len(rows), 1)
    bar_w = min(40.0, slot * 0.8 / len(METRICS))
    groups = []
    for i, (row, group) in enumerate(zip(rows, values, strict=True)):
        start = PAD_L + i * slot + (slot - bar_w * len(METRICS)) / 2
        bars = []
        for j, (metric, label, value) in enumerate(group):
            if row.holdout and metric != "conversion":
                continue  # the hold-out was sent nothing: only its conversions mean something
            height = inner_h * value / top if top else 0.0
            x = start + j * bar_w
            bars.append(
                Bar(
                    metric=metric,
                    label=f"{row.label} {label.lower()} {_percent(value)}",
                    value=value,
                    x=round(x + 2, 2),
                    y=round(bottom - height, 2),
                    width=round(bar_w - 4, 2),
                    height=round(height, 2),
                    text_x=round(x + bar_w / 2, 2),
                    text_y=round(bottom - height - 4, 2),
                    text=_short_percent(value),
                )
            )
        groups.append(BarGroup(row.label, round(PAD_L + i * slot + slot / 2, 2), bars))
    ticks = [
        Tick(round(bottom - inner_h * f, 2), _percent(top * f)) for f in (0.0, 0.25, 0.5, 0.75, 1.0)
    ]
    return BarChart(BAR_W, BAR_H, groups, ticks, PAD_L, bottom, BAR_W - 8)


LINE_W, LINE_H = 480, 240
LINES = [("opens", "Opens"), ("clicks", "All clicks"), ("conversions", "Conversions")]


@dataclass(frozen=True)
class Line:
    key: str
    label: str
    points: str  # "x,y x,y …" for <polyline points>
    total: int


@dataclass(frozen=True)
class LineChart:
    width: int
    height: int
    lines: list[Line]
    ticks: list[Tick]
    x_labels: list[tuple[float, str, str]]  # x, text, text-anchor
    left: float
    bottom: float
    right: float
    bucket: str


def series_chart(series: Any, *, with_conversions: bool) -> LineChart | None:
    """Opens, clicks (and conversions) per hour or day since the send started."""
    points = series.points
    if len(points) < 2:
        return None
    inner_w = LINE_W - PAD_L - 12
    inner_h = LINE_H - PAD_T - PAD_B
    bottom = PAD_T + inner_h
    peak = max(series.peak, 1)
    # A round top: 1, 2, 5, 10, 20, 50 …
    top = 1
    while top < peak:
        top = top * 5 // 2 if str(top).startswith("2") else top * 2
    step = inner_w / (len(points) - 1)
    lines = []
    for key, label in LINES:
        if key == "conversions" and not with_conversions:
            continue
        coords = " ".join(
            f"{PAD_L + i * step:.1f},{bottom - inner_h * getattr(p, key) / top:.1f}"
            for i, p in enumerate(points)
        )
        lines.append(Line(key, label, coords, sum(getattr(p, key) for p in points)))
    ticks = [Tick(round(bottom - inner_h * f, 2), f"{top * f:g}") for f in (0.0, 0.5, 1.0)]
    every = max(1, len(points) // 6)
    fmt = "%H:%M" if series.bucket == "hour" else "%-d %b"
    last = len(points) - 1
    x_labels = [
        (
            round(PAD_L + i * step, 1),
            p.at.strftime(fmt),
            "start" if i == 0 else "end" if i == last else "middle",
        )
        for i, p in enumerate(points)
        # The last point is labelled too, unless the one before it would crowd it.
        if i % every == 0 or (i == last and last % every >= every / 2)
    ]
    return LineChart(
        LINE_W, LINE_H, lines, ticks, x_labels, PAD_L, bottom, LINE_W - 12, series.bucket
    )


def results_charts(results: Any) -> dict[str, Any]:
    return {
        "rates": rates_chart(results.rows),
        "series": series_chart(results.series, with_conversions=bool(results.goal_event)),
    }
