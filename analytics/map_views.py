"""The journey map, journey funnels and campaign results (analytics/urls_map.py): read-only pages
any member may open (viewers included), each with its tables as CSV (`?format=csv`, plus
`table=` where a page has two). Every page runs in the team's time zone and names it.

The figures come from analytics.journey_map, analytics.funnels and analytics.campaign_results,
which read through the apps' selectors; a journey of another team is a 404 (journey_get).
"""

from __future__ import annotations

import zoneinfo
from typing import Any
from uuid import UUID

from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from analytics import funnels
from analytics import journey_map as map_data
from analytics import selectors as rollups
from analytics.campaign_results import SORTS, campaign_result_rows, sort_clean
from analytics.csv_export import csv_response
from analytics.flow import NEW, NEW_LABEL, flow_diagram
from analytics.periods import RANGES, period_from
from analytics.team_time import team_time
from journeys import selectors as journey_selectors
from tenants.decorators import TenantRequest


def _zone(request: TenantRequest) -> zoneinfo.ZoneInfo:
    return rollups.tenant_zone(request.tenant)


def _csv(request: TenantRequest) -> bool:
    return request.GET.get("format") == "csv"


def _pct(rate: float | None) -> str:
    return "" if rate is None else f"{rate * 100:.1f}"


# --- the journey map ----------------------------------------------------------------------------


@require_GET
@team_time
def journey_map(request: TenantRequest, tenant_slug: str) -> HttpResponse:
    """The six stages with their counts, the moves between them over the period (a flow
    diagram and its table) and the journeys and campaigns acting on each stage."""
    tenant = request.tenant
    today = rollups.today(tenant)
    period, form = period_from(request.GET, today=today)
    found = map_data.journey_map(tenant=tenant, period=period)
    labels = {NEW: NEW_LABEL, **dict(map_data.stages())}
    if _csv(request) and not form.errors:  # a bad period shows the page and why, not a file
        if request.GET.get("table") == "transitions":
            return csv_response(
                what="stage-transitions",
                tenant=tenant,
                start=period.start,
                end=period.end,
                headers=["From stage", "To stage", "Contacts"],
                rows=[
                    (labels.get(f, f), labels.get(t, t), n)
                    for f, t, n in sorted(found.transitions, key=lambda m: (m[0], m[1]))
                ],
            )
        return csv_response(
            what="lifecycle-stages",
            tenant=tenant,
            start=period.start,
            end=period.end,
            headers=[
                "Stage",
                "Contacts now",
                "Share of contacts (%)",
                "Moved in",
                "Moved out",
                "Journeys acting on it",
                "Campaigns acting on it",
            ],
            rows=[
                (
                    s.label,
                    s.contacts,
                    _pct(s.share),
                    s.moved_in,
                    s.moved_out,
                    "; ".join(j.journey.name for j in s.journeys),
                    "; ".join(c.campaign.name for c in s.campaigns),
                )
                for s in found.stages
            ],
        )
    diagram = flow_diagram(
        stages=map_data.stages(),
        transitions=found.transitions,
        period_words=f"from {period.label}",
    )
    transitions = [
        (labels.get(f, f), labels.get(t, t), n, f or "new")
        for f, t, n in sorted(found.transitions, key=lambda m: -m[2])
    ]
    ctx = {
        "map": found,
        "period": period,
        "form": form,
        "ranges": RANGES,
        "diagram": diagram,
        "transitions": transitions,
        "zone": _zone(request),
        "today": today,
    }
    return render(request, "analytics/journey_map.html", ctx, status=400 if form.errors else 200)


# --- journey funnels ---------------------------------------------------------------------------


@require_GET
@team_time
def journey_funnel_list(request: TenantRequest, tenant_slug: str) -> HttpResponse:
    """Every journey (archived ones left out), each linking to its funnel."""
    journeys = funnels.journey_list_rows(tenant=request.tenant)
    if _csv(request):
        return csv_response(
            what="journeys",
            tenant=request.tenant,
            start=None,
            end=rollups.today(request.tenant),
            headers=["Journey", "Status", "Live version", "In it now", "Conversions"],
            rows=[
                (
                    r.journey.name,
                    r.journey.get_status_display(),
                    r.live_number,
                    r.open_enrollments,
                    r.conversions,
                )
                for r in journeys
            ],
        )
    ctx = {"journeys": journeys, "zone": _zone(request)}
    return render(request, "analytics/funnel_list.html", ctx)


FUNNEL_HEADERS = [
    "Depth",
    "Step",
    "Kind",
    "Reached",
    "Moved on",
    "Waiting",
    "Failed",
    "Left the journey here",
    "Dropped off since the step before",
    "Drop-off (%)",
    "Conversions",
    "Revenue",
]


def _funnel_csv_row(row: funnels.FunnelRow) -> tuple[Any, ...]:
    if row.is_path:
        name = f"Path: {row.label}{' (ends)' if row.ends else ''}"
        took = "" if row.unknown else row.reached
        return (row.depth, name, "path", took, "", "", "", "", "", "", "", "")
    if row.joins:
        name = f"Continues at: {row.joins}"
        return (row.depth, name, row.kind, "", "", "", "", "", "", "", "", "")
    return (
        row.depth,
        row.label,
        row.kind,
        row.reached,
        row.moved_on,
        row.waiting,
        row.failed,
        row.left,
        row.drop_off,
        _pct(row.drop_off_rate),
        row.conversions,
        row.revenue,
    )


@require_GET
@team_time
def journey_funnel(request: TenantRequest, tenant_slug: str, journey_id: UUID) -> HttpResponse:
    """One journey node by node from its trigger: reached, moved on, waiting, left, the
    drop-off from the step before, and each goal's conversions and revenue."""
    journey = journey_selectors.journey_get(tenant=request.tenant, public_id=journey_id)
    funnel = funnels.journey_funnel(tenant=request.tenant, journey=journey)
    if _csv(request):
        return csv_response(
            what=f"funnel-{journey.name}",
            tenant=request.tenant,
            start=timezone.localtime(journey.created_at).date(),
            end=rollups.today(request.tenant),
            headers=FUNNEL_HEADERS,
            rows=[_funnel_csv_row(r) for r in funnel.rows],
        )
    ctx = {
        "journey": journey,
        "funnel": funnel,
        "chart": funnels.funnel_chart(funnel),
        "zone": _zone(request),
    }
    return render(request, "analytics/funnel.html", ctx)


# Soft hyphens where a long heading may break, so eleven columns fit a laptop's width.
BREAKS = {"Conversions": "Conver\u00adsions", "Unsubscribe": "Unsub\u00adscribe"}


def _breakable(label: str) -> str:
    return " ".join(BREAKS.get(word, word) for word in label.split())


# --- campaign results ---------------------------------------------------------------------------


@require_GET
@team_time
def campaign_results_list(request: TenantRequest, tenant_slug: str) -> HttpResponse:
    """Every campaign that has sent, with its latest send's results; `sort` orders the table
    (a column key, "-" first for the highest first)."""
    sort = sort_clean(request.GET.get("sort", ""))
    rows = campaign_result_rows(tenant=request.tenant, sort=sort)
    if _csv(request):
        first = min((r.sent_at for r in rows), default=None)
        return csv_response(
            what="campaign-results",
            tenant=request.tenant,
            start=timezone.localtime(first).date() if first else None,
            end=rollups.today(request.tenant),
            headers=[
                "Campaign",
                "Channel",
                "Last sent",
                "Sends",
                "Audience",
                "Sent",
                "Delivered",
                "Opens",
                "Open rate (%)",
                "Clicks",
                "Click rate (%)",
                "Unsubscribes",
                "Unsubscribe rate (%)",
                "Bounces",
                "Bounce rate (%)",
                "Conversions",
                "Revenue",
            ],
            rows=[
                (
                    r.campaign.name,
                    r.campaign.get_channel_display(),
                    timezone.localtime(r.sent_at).replace(microsecond=0, tzinfo=None),
                    r.sends,
                    r.audience,
                    r.sent,
                    r.delivered,
                    r.opens,
                    _pct(r.open_rate),
                    r.clicks,
                    _pct(r.click_rate),
                    r.unsubscribes,
                    _pct(r.unsubscribe_rate),
                    r.bounces,
                    _pct(r.bounce_rate),
                    r.conversions,
                    r.revenue,
                )
                for r in rows
            ],
        )
    key, descending = sort.removeprefix("-"), sort.startswith("-")
    columns = [
        {
            "key": k,
            "label": _breakable(label),
            "current": k == key,
            "descending": descending,
            # A click on the current column turns its order round; numbers start highest first.
            "next": (k if descending else f"-{k}") if k == key else (k if k == "name" else f"-{k}"),
        }
        for k, label in SORTS.items()
    ]
    ctx = {"rows": rows, "columns": columns, "sort": sort, "zone": _zone(request)}
    return render(request, "analytics/campaign_results_list.html", ctx)
