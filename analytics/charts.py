"""Server-side SVG charts for the analytics pages: a line (with the previous period dashed
beside it), stacked bars per day, and a sparkline. No chart library and nothing the CSP would
refuse: positions are SVG attributes, colours and dashes are classes in static/css/analytics.css.

Each chart is an <svg role="img"> labelled by its own <title> and <desc> (aria-labelledby), so
a screen reader announces what it shows; the page puts the same numbers in a table beside it.
Dates on the axis are the team's local days (the rollups' days); the caller names the zone.

campaigns/charts.py draws the campaign results' charts the same way (geometry for a template);
these render whole SVG strings because the analytics pages draw many charts of a few shapes.
The two could share one module on the floor; today they differ in what they take.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

Number = Decimal | int | float
Formatter = Callable[[Decimal | None], str]

WIDTH, HEIGHT = 520, 230
# The y axis' labels sit inside the plot, over their grid lines (left-aligned): the chart
# needs no margin for them, and they stay legible when a phone shrinks the chart.
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 6, 6, 24, 30
SPARK_W, SPARK_H = 120, 32


def _num(value: float) -> str:
    """A coordinate: short, and the same on every platform."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _nice_step(span: float) -> float:
    """A round step (1, 2, 2.5 or 5 times a power of ten) that cuts `span` into about 4."""
    raw = span / 4
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * power:
            return factor * power
    return 10 * power


def scale(values: Sequence[Number | None]) -> tuple[float, float, float]:
    """(bottom, top, step) of a y axis that holds `values` and zero, in round steps."""
    present = [float(v) for v in values if v is not None]
    low = min([0.0, *present])
    high = max([0.0, *present])
    if high == low:
        high = low + 1
    step = _nice_step(high - low)
    return math.floor(low / step) * step, math.ceil(high / step) * step, step


def tick_text(formatter: Formatter, value: float) -> str:
    """An axis label: the page's own format, without decimals a round tick does not need."""
    text = formatter(Decimal(str(round(value, 10))))
    for tail, kept in ((".0\u00a0%", "\u00a0%"), (".0 %", " %"), (".00", "")):
        if text.endswith(tail):
            return text[: -len(tail)] + kept
    return text


MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _date_label(day: date) -> str:
    return f"{day.day} {MONTHS[day.month - 1]}"


def _x_positions(count: int, left: float, right: float) -> list[float]:
    if count == 1:
        return [(left + right) / 2]
    step = (right - left) / (count - 1)
    return [left + i * step for i in range(count)]


def _x_label_indexes(count: int, most: int = 6) -> list[int]:
    if count <= most:
        return list(range(count))
    every = math.ceil((count - 1) / (most - 1))
    found = list(range(0, count, every))
    if count - 1 - found[-1] < every / 2:
        found[-1] = count - 1  # the last day is labelled, unless it would crowd the one before
    else:
        found.append(count - 1)
    return found


def _open(
    key: str, title: str, desc: str, width: int, height: int, css: str, extra: str = ""
) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="{css}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-labelledby="{key}-title {key}-desc" focusable="false"{extra}>',
        f'<title id="{key}-title">{escape(title)}</title>',
        f'<desc id="{key}-desc">{escape(desc)}</desc>',
    ]


@dataclass(frozen=True)
class Frame:
    """The plot area and its y axis."""

    bottom_value: float
    top_value: float
    left: float = PAD_LEFT
    right: float = WIDTH - PAD_RIGHT
    top: float = PAD_TOP
    bottom: float = HEIGHT - PAD_BOTTOM

    def y(self, value: float) -> float:
        span = self.top_value - self.bottom_value
        return self.bottom - (value - self.bottom_value) / span * (self.bottom - self.top)


def _axes(
    frame: Frame, step: float, formatter: Formatter, dates: Sequence[date], xs: Sequence[float]
) -> tuple[list[str], list[str]]:
    """The grid (drawn under the data) and the axes' labels (drawn over it, with a halo from
    the CSS, so a bar or a line never hides a number)."""
    grid = ['<g class="an-axis">']
    labels = ['<g class="an-axis">']
    value = frame.bottom_value
    while value <= frame.top_value + step / 1000:
        y = _num(frame.y(value))
        css = "an-grid an-zero" if abs(value) < step / 1000 else "an-grid"
        grid.append(
            f'<line class="{css}" x1="{_num(frame.left)}" x2="{_num(frame.right)}" '
            f'y1="{y}" y2="{y}"/>'
        )
        labels.append(
            f'<text class="an-tick an-y" x="{_num(frame.left)}" y="{_num(frame.y(value) - 5)}">'
            f"{escape(tick_text(formatter, value))}</text>"
        )
        value += step
    last = len(dates) - 1
    for i in _x_label_indexes(len(dates)):
        anchor = "start" if i == 0 and last else "end" if i == last and last else "middle"
        labels.append(
            f'<text class="an-tick an-x" x="{_num(xs[i])}" y="{_num(frame.bottom + 20)}" '
            f'text-anchor="{anchor}">{_date_label(dates[i])}</text>'
        )
    return [*grid, "</g>"], [*labels, "</g>"]


def _segments(xs: Sequence[float], ys: Sequence[float | None]) -> list[list[tuple[float, float]]]:
    """Runs of days that have a value: a day without one (a rate over nothing) is a gap."""
    runs: list[list[tuple[float, float]]] = []
    current: list[tuple[float, float]] = []
    for x, y in zip(xs, ys, strict=True):
        if y is None:
            if current:
                runs.append(current)
            current = []
        else:
            current.append((x, y))
    if current:
        runs.append(current)
    return runs


def _path(css: str, points: Sequence[tuple[float, float]]) -> str:
    if len(points) == 1:
        x, y = points[0]
        return f'<circle class="{css} an-dot" cx="{_num(x)}" cy="{_num(y)}" r="3"/>'
    coords = " ".join(f"{_num(x)},{_num(y)}" for x, y in points)
    return f'<polyline class="{css}" points="{coords}" fill="none"/>'


def line_chart(
    *,
    key: str,
    title: str,
    desc: str,
    dates: Sequence[date],
    current: Sequence[Number | None],
    previous: Sequence[Number | None] | None,
    formatter: Formatter,
) -> SafeString:
    """One measure day by day, and (dashed, grey) the previous period's day i under day i."""
    everything = [*current, *(previous or [])]
    low, high, step = scale(everything)
    frame = Frame(low, high)
    xs = _x_positions(len(dates), frame.left + 4, frame.right - 4)
    parts = _open(key, title, desc, WIDTH, HEIGHT, "an-chart an-line-chart")
    grid, labels = _axes(frame, step, formatter, dates, xs)
    parts += grid
    for css, values in (("an-previous", previous), ("an-current", current)):
        if values is None:
            continue
        ys = [None if v is None else frame.y(float(v)) for v in values]
        parts += [_path(f"an-series {css}", run) for run in _segments(xs, ys)]
    parts += labels
    parts.append("</svg>")
    return mark_safe("".join(parts))


def stack_chart(
    *,
    key: str,
    title: str,
    desc: str,
    dates: Sequence[date],
    series: Sequence[tuple[str, Sequence[Number | None]]],
    formatter: Formatter,
) -> SafeString:
    """Counts per day stacked in one bar (series 0 at the bottom): new and returning
    visitors, NPS answers by kind, customers by stage. Colours: an-s0, an-s1, …"""
    totals = [sum(float(values[i] or 0) for _, values in series) for i in range(len(dates))]
    low, high, step = scale(totals)
    frame = Frame(low, high)
    slot = (frame.right - frame.left) / max(len(dates), 1)
    bar = max(min(slot * 0.7, 28.0), 1.0)
    xs = [frame.left + slot * (i + 0.5) for i in range(len(dates))]
    parts = _open(key, title, desc, WIDTH, HEIGHT, "an-chart an-stack-chart")
    grid, labels = _axes(frame, step, formatter, dates, xs)
    parts += grid
    for i, x in enumerate(xs):
        base = 0.0
        for n, (_, values) in enumerate(series):
            value = float(values[i] or 0)
            if value <= 0:
                continue
            y_top, y_base = frame.y(base + value), frame.y(base)
            parts.append(
                f'<rect class="an-bar an-s{n}" x="{_num(x - bar / 2)}" y="{_num(y_top)}" '
                f'width="{_num(bar)}" height="{_num(max(y_base - y_top, 0.5))}"/>'
            )
            base += value
    parts += labels
    parts.append("</svg>")
    return mark_safe("".join(parts))


def sparkline(*, key: str, title: str, desc: str, values: Sequence[Number | None]) -> SafeString:
    """A small line without axes: the shape of the period beside a figure, from its lowest
    value to its highest (not from zero: a sparkline shows movement, the figure the size)."""
    present = [float(v) for v in values if v is not None]
    low, high = min(present, default=0.0), max(present, default=0.0)
    if high == low:
        low, high = low - 1, high + 1  # a flat line, across the middle
    frame = Frame(low, high, left=2, right=SPARK_W - 2, top=3, bottom=SPARK_H - 3)
    xs = _x_positions(len(values), frame.left, frame.right)
    ys = [None if v is None else frame.y(float(v)) for v in values]
    # Stretched to its box's width; the stroke keeps its width (vector-effect in the CSS).
    parts = _open(key, title, desc, SPARK_W, SPARK_H, "an-spark", ' preserveAspectRatio="none"')
    parts += [_path("an-series an-current", run) for run in _segments(xs, ys)]
    parts.append("</svg>")
    return mark_safe("".join(parts))
