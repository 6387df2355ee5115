"""The team's home page (its dashboard) and the analytics dashboards, one page per theme.

    dashboard              /t/<slug>/                      this week at a glance, getting started
    analytics_traffic      /t/<slug>/analytics/traffic/    visitors, identified, new vs returning
    analytics_sales        /t/<slug>/analytics/sales/      conversion, cart abandonment, AOV, CLV…
    analytics_retention    /t/<slug>/analytics/retention/  churn and retention (stage history)
    analytics_messages     /t/<slug>/analytics/messages/   email and push rates
    analytics_nps          /t/<slug>/analytics/nps/        Net Promoter Score

The dashboards take `?range=7|30|90` or `?range=custom&start=…&end=…` (the team's local
days) and compare with the previous period of the same length. `?format=csv` answers the
page's table (`&chart=<key>`: one chart's table) as a download. Every member may read them.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django.http import HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_GET

from analytics import charts, dashboards, home, periods, selectors
from analytics.csv_export import csv_response
from analytics.dashboard_read import PageData, page_read
from analytics.dashboards import PAGES, Page
from analytics.periods import Period, date_label
from analytics.team_time import team_time
from tenants import selectors as tenant_selectors
from tenants.decorators import TenantRequest
from tenants.registry import SETUP_STEPS


def _setup_steps(tenant: Any, member_count: int) -> list[dict[str, Any]]:
    kinds = set(tenant_selectors.api_key_list(tenant=tenant).values_list("kind", flat=True))
    steps: list[dict[str, Any]] = [
        {"key": "write_key", "done": "write" in kinds},
        {"key": "secret_key", "done": "secret" in kinds},
        {"key": "members", "done": member_count > 1},
    ]
    # The other apps' steps (messaging: set the sender).
    steps += [
        {
            "text": step.text,
            "link_text": step.link_text,
            "url": reverse(step.url_name, kwargs={"tenant_slug": tenant.slug}),
            "done": step.done(tenant=tenant),
        }
        for step in SETUP_STEPS
    ]
    return steps


@require_GET
@team_time
def dashboard(request: TenantRequest, tenant_slug: str) -> HttpResponse:
    """The team's home page: this week's figures; the checklist leads while there is no data."""
    tenant = request.tenant
    data = home.home_read(tenant=tenant)
    member_count = tenant_selectors.membership_list(tenant=tenant).count()
    steps = _setup_steps(tenant, member_count)
    zone = tenant.timezone
    cards = [
        {
            "figure": f,
            "spark": charts.sparkline(
                key=f"spark-{f.measure.key}",
                title=f"{f.measure.label}, {data.period.label}",
                desc=_spark_desc(
                    f.measure.label, f.daily, f.measure.format, zone, data.period.dates()
                ),
                values=f.daily,
            ),
            "comparison": "yesterday" if f.measure.key == "events_today" else "the 7 days before",
        }
        for f in data.figures
    ]
    journeys = [
        {
            "row": j,
            "spark": charts.sparkline(
                key=f"spark-journey-{j.public_id}",
                title=f"{j.name}: conversions per day, {data.period.label}",
                desc=_spark_desc(
                    "Conversions", j.daily, dashboards.format_count, zone, data.period.dates()
                ),
                values=j.daily,
            ),
        }
        for j in data.journeys
    ]
    ctx = {
        "home": data,
        "cards": cards,
        "journeys": journeys,
        "setup_steps": steps,
        "steps_left": sum(1 for s in steps if not s["done"]),
        "member_count": member_count,
    }
    return render(request, "analytics/dashboard.html", ctx)


def _spark_desc(
    label: str, values: Sequence[Decimal | None], fmt: Any, zone: str, dates: Sequence[date]
) -> str:
    """Every value for a week or a month; for longer periods the first, last, highest and
    lowest (a screen reader reading 365 numbers helps nobody)."""
    if len(values) <= 31:
        shown = ", ".join(fmt(v) for v in values)
        return f"{label} day by day ({zone}), oldest first: {shown}."
    present = [(d, v) for d, v in zip(dates, values, strict=True) if v is not None]
    if not present:
        return f"{label}: no day has a value."
    (first_day, first), (last_day, last) = present[0], present[-1]
    high_day, high = max(present, key=lambda p: p[1])
    low_day, low = min(present, key=lambda p: p[1])
    return (
        f"{label} day by day ({zone}): {fmt(first)} on {date_label(first_day)}, "
        f"{fmt(last)} on {date_label(last_day)}; highest {fmt(high)} on {date_label(high_day)}, "
        f"lowest {fmt(low)} on {date_label(low_day)}."
    )


# --- the dashboards ----------------------------------------------------------------------------


def _query(period: Period, **extra: str) -> str:
    params = {"range": period.range}
    if period.range == "custom":
        params.update(start=period.start.isoformat(), end=period.end.isoformat())
    params.update(extra)
    return "?" + urlencode(params)


def _chart_desc(spec: dashboards.ChartSpec, data: PageData, zone: str) -> str:
    period = data.period
    if spec.kind == "line":
        key = spec.measures[0]
        measure = dashboards.measure_get(key)
        daily = data.daily[key]
        present = [(d, v) for d, v in daily.current if v is not None]
        words = [
            f"{spec.title}, {period.label}, days in {zone}. The solid line is this period, "
            f"the dashed one {period.comparison_words} (day against day)."
        ]
        if present:
            high_day, high = max(present, key=lambda p: p[1])
            low_day, low = min(present, key=lambda p: p[1])
            words.append(
                f"Highest {measure.format(high)} on {date_label(high_day)}; "
                f"lowest {measure.format(low)} on {date_label(low_day)}."
            )
        else:
            words.append("No day has a value yet.")
        return " ".join(words)
    names = ", ".join(dashboards.series_label(k) for k in spec.measures)
    return f"{spec.title}, {period.label}, days in {zone}: stacked bars of {names}."


def _chart(spec: dashboards.ChartSpec, data: PageData, zone: str) -> dict[str, Any]:
    period = data.period
    dates = period.dates()
    if spec.kind == "line":
        key = spec.measures[0]
        measure = dashboards.measure_get(key)
        daily = data.daily[key]
        svg = charts.line_chart(
            key=f"chart-{spec.key}",
            title=spec.title,
            desc=_chart_desc(spec, data, zone),
            dates=dates,
            current=[v for _, v in daily.current],
            previous=[v for _, v in daily.previous],
            formatter=measure.format,
        )
        headers = ["Day", measure.label, "Compared with", f"{measure.label} then"]
        rows: list[tuple[str, ...]] = [
            (
                date_label(d, year=False),
                measure.format(v),
                date_label(pd, year=False),
                measure.format(pv),
            )
            for (d, v), (pd, pv) in zip(daily.current, daily.previous, strict=True)
        ]
        legend = [("an-current", f"{period.label}"), ("an-previous", period.previous.label)]
    else:
        fmt = dashboards.format_count
        series = [
            (dashboards.series_label(k), [v for _, v in data.daily[k].current])
            for k in spec.measures
        ]
        svg = charts.stack_chart(
            key=f"chart-{spec.key}",
            title=spec.title,
            desc=_chart_desc(spec, data, zone),
            dates=dates,
            series=series,
            formatter=fmt,
        )
        headers = ["Day", *(name for name, _ in series)]
        rows = [
            (date_label(d, year=False), *(fmt(values[i]) for _, values in series))
            for i, d in enumerate(dates)
        ]
        legend = [(f"an-s{n}", name) for n, (name, _) in enumerate(series)]
    return {
        "spec": spec,
        "svg": svg,
        "legend": legend,
        "headers": headers,
        "tbody": _tbody(rows),
        "csv_url": _query(period, format="csv", chart=spec.key),
    }


def _tbody(rows: Sequence[Sequence[str]]) -> SafeString:
    """A table's rows as HTML, built here rather than by template loops: a year's chart is 365
    rows of 3-5 cells, and the template language took a second over a page's six
    (bench/analytics.py). Every cell is escaped (the standard library's escape: Django's lazy
    wrappers cost more than the escaping on thousands of cells)."""
    return mark_safe(  # every cell goes through html.escape
        "".join(
            f'<tr><th scope="row">{html.escape(first)}</th>'
            + "".join(f'<td class="num">{html.escape(cell)}</td>' for cell in rest)
            + "</tr>"
            for first, *rest in rows
        )
    )


def _csv_number(measure: dashboards.Measure, value: Decimal | None) -> Decimal | None:
    """A spreadsheet's number: rates as percentages, money to the cent, counts whole."""
    if value is None:
        return None
    if measure.kind == "rate":
        return (value * 100).quantize(Decimal("0.01"))
    if measure.kind == "money":
        return value.quantize(Decimal("0.01"))
    return value.quantize(Decimal(1) if measure.kind == "count" else Decimal("0.1"))


def _csv_header(measure: dashboards.Measure) -> str:
    return f"{measure.label} (%)" if measure.kind == "rate" else measure.label


def _page_csv(request: TenantRequest, data: PageData, chart: str) -> HttpResponse:
    page, period = data.page, data.period
    tenant = request.tenant
    if chart == "transitions":
        return csv_response(
            what=f"{page.key}-stage-changes",
            tenant=tenant,
            start=period.start,
            end=period.end,
            headers=["From", "To", "Contacts"],
            rows=_moves(data),
        )
    specs = [c for c in page.charts if c.key == chart]
    keys = list(specs[0].measures) if specs else _page_keys(page)
    headers = ["Period", "Day"] + [
        _csv_header(dashboards.measure_get(k))
        if k not in dashboards.STAGE_LABELS
        else dashboards.STAGE_LABELS[k]
        for k in keys
    ]
    rows: list[list[Any]] = []
    for name, which in (("previous", "previous"), ("this", "current")):
        columns = [getattr(data.daily[k], which) for k in keys]
        for i, (day, _) in enumerate(columns[0]):
            row: list[Any] = [name, day]
            for k, column in zip(keys, columns, strict=True):
                value = column[i][1]
                if k in dashboards.STAGE_LABELS:
                    row.append(None if value is None else int(value))
                else:
                    row.append(_csv_number(dashboards.measure_get(k), value))
            rows.append(row)
    what = f"{page.key}-{chart}" if specs else page.key
    return csv_response(
        what=what,
        tenant=tenant,
        start=period.start,
        end=period.end,
        headers=headers,
        rows=rows,
    )


def _moves(data: PageData) -> list[tuple[str, str, int]]:
    """The period's stage changes, most first, with the stages' names ("" from: new contacts)."""
    labels = dashboards.STAGE_LABELS
    return [
        (labels.get(a, "New contact") if a else "New contact", labels.get(b, b), n)
        for a, b, n in sorted(data.transitions, key=lambda t: -t[2])
    ]


def _page_keys(page: Page) -> list[str]:
    keys = dict.fromkeys(page.cards)
    for spec in page.charts:
        keys.update(dict.fromkeys(spec.measures))
    return list(keys)


def _dashboard_page(request: TenantRequest, key: str) -> HttpResponse:
    tenant = request.tenant
    page = PAGES[key]
    period, form = periods.period_from(request.GET, today=selectors.today(tenant))
    data = page_read(tenant=tenant, page=page, period=period)
    if request.GET.get("format") == "csv" and not form.errors:
        return _page_csv(request, data, request.GET.get("chart", ""))
    zone = tenant.timezone
    cards = [
        {
            "figure": f,
            "spark": charts.sparkline(
                key=f"spark-{f.measure.key}",
                title=f"{f.measure.label}, {period.label}",
                desc=_spark_desc(
                    f.measure.label, f.daily, f.measure.format, zone, data.period.dates()
                ),
                values=f.daily,
            ),
            "comparison": period.comparison_words,
        }
        for f in data.figures
    ]
    ctx = {
        "page": page,
        "data": data,
        "period": period,
        "form": form,
        "ranges": periods.RANGES,
        "cards": cards,
        "charts": [_chart(spec, data, zone) for spec in page.charts],
        "period_query": _query(period),
        "csv_url": _query(period, format="csv"),
        "transitions_csv_url": _query(period, format="csv", chart="transitions"),
        "today": selectors.today(tenant),
        "stages": [
            (dashboards.STAGE_LABELS[s], dashboards.format_count(Decimal(n)))
            for s, n in data.stages_at_end
        ],
        "moves": [(a, b, dashboards.format_count(Decimal(n))) for a, b, n in _moves(data)],
    }
    return render(request, "analytics/dashboard_page.html", ctx, status=400 if form.errors else 200)


@require_GET
def analytics_traffic(request: TenantRequest, tenant_slug: str) -> HttpResponse:
    return _dashboard_page(request, "traffic")


@require_GET
def analytics_sales(request: TenantRequest, tenant_slug: str) -> HttpResponse:
    return _dashboard_page(request, "sales")


@require_GET
def analytics_retention(request: TenantRequest, tenant_slug: str) -> HttpResponse:
    return _dashboard_page(request, "retention")


@require_GET
def analytics_messages(request: TenantRequest, tenant_slug: str) -> HttpResponse:
    return _dashboard_page(request, "messages")


@require_GET
def analytics_nps(request: TenantRequest, tenant_slug: str) -> HttpResponse:
    return _dashboard_page(request, "nps")
