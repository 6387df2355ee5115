"""The team's home page: this week's headline figures, the journeys and campaigns at work and
what they earned, and (while the team has no data yet) the getting-started list.

    home_read(*, tenant) -> Home

"This week" is the last 7 of the team's local days, today included; every change compares
with the 7 days before. A constant handful of queries: one rollup read, the stage counts and
their nightly history, the live journeys with their conversions, the campaigns' latest sends.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from typing import Any

from django.db.models import Count, Sum
from django.db.models.functions import TruncDate

from analytics import selectors
from analytics.campaign_results import CampaignResultRow, campaign_result_rows
from analytics.dashboard_read import Figure, Rollups
from analytics.dashboards import MEASURES, ZERO, Change, Measure, change_of
from analytics.periods import Period
from audience import selectors as audience_selectors
from campaigns.models import Occurrence
from journeys.models import Enrollment, Journey

WEEK = 7
HOME_MEASURES = (
    "identified_share",
    "messages_sent",
    "email_open_rate",
    "email_click_rate",
    "email_bounce_rate",
    "email_unsubscribe_rate",
)
CONTACTS = Measure(
    "contacts",
    "Contacts",
    "count",
    "Every contact, known or anonymous; the line is the count at the end of each day.",
    (),
    lambda t: t["contacts"],
)
EVENTS_TODAY = Measure(
    "events_today",
    "Events today",
    "count",
    "Events recorded today so far; compared with the whole of yesterday.",
    ("events",),
    lambda t: t["events"],
)


@dataclass(frozen=True)
class Earning:
    """A journey's or campaign's week: conversions and revenue, and the week before."""

    name: str
    url_name: str
    public_id: Any
    status: str
    conversions: int
    revenue: Decimal
    previous_revenue: Decimal
    previous_conversions: int
    change: Change
    daily: list[Decimal | None]  # conversions per day (the sparkline)


@dataclass(frozen=True)
class Home:
    period: Period
    figures: list[Figure]
    has_data: bool
    journeys: list[Earning]
    campaigns: list[CampaignResultRow]  # the campaigns whose latest send started this week


def _day_start(day: date, zone: tzinfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=zone)


REVENUE_CHANGE = MEASURES["revenue"]
CONVERSIONS_CHANGE = Measure("conversions", "Conversions", "count", "", (), lambda t: None)


def journey_earnings(*, tenant: Any, period: Period) -> list[Earning]:
    """The live journeys, with the conversions (goal reached) and their revenue per local day
    of `period` and the one before: two queries whatever the number of journeys."""
    zone = selectors.tenant_zone(tenant)
    before = period.previous
    journeys = list(
        Journey.objects.filter(tenant=tenant, status=Journey.Status.LIVE).order_by("name")[:20]
    )
    rows = (
        Enrollment.objects.filter(
            tenant=tenant,
            journey__in=[j.pk for j in journeys],
            converted_at__gte=_day_start(before.start, zone),
            converted_at__lt=_day_start(period.end + timedelta(days=1), zone),
        )
        .annotate(day=TruncDate("converted_at", tzinfo=zone))
        .values("journey_id", "day")
        .annotate(n=Count("pk"), revenue=Sum("revenue"))
        .order_by()
    )
    by_journey: dict[int, dict[date, tuple[int, Decimal]]] = defaultdict(dict)
    for row in rows:
        by_journey[row["journey_id"]][row["day"]] = (row["n"], row["revenue"] or ZERO)
    found = []
    for journey in journeys:
        days = by_journey.get(journey.pk, {})

        def total(p: Period, days: dict[date, tuple[int, Decimal]] = days) -> tuple[int, Decimal]:
            picked = [days.get(d, (0, ZERO)) for d in p.dates()]
            return sum(n for n, _ in picked), sum((r for _, r in picked), ZERO)

        conversions, revenue = total(period)
        previous_conversions, previous_revenue = total(before)
        change = (
            change_of(REVENUE_CHANGE, revenue, previous_revenue)
            if revenue or previous_revenue
            else change_of(CONVERSIONS_CHANGE, Decimal(conversions), Decimal(previous_conversions))
        )
        found.append(
            Earning(
                name=journey.name,
                url_name="journey_editor",
                public_id=journey.public_id,
                status=journey.get_status_display(),
                conversions=conversions,
                revenue=revenue,
                previous_conversions=previous_conversions,
                previous_revenue=previous_revenue,
                change=change,
                daily=[Decimal(days.get(d, (0, ZERO))[0]) for d in period.dates()],
            )
        )
    return found


def campaigns_sent(*, tenant: Any, period: Period) -> list[CampaignResultRow]:
    """The campaigns whose latest send started in `period`, newest first, with that send's
    results as its own results page counts them (H-map's analytics.campaign_results)."""
    since = _day_start(period.start, selectors.tenant_zone(tenant))
    # Newest sends first, so a campaign that recurs many times a week cannot crowd out others.
    newest = Occurrence.objects.filter(tenant=tenant, started_at__gte=since).order_by("-started_at")
    ids = list(dict.fromkeys(newest.values_list("campaign_id", flat=True)[:200]))[:10]
    rows = campaign_result_rows(tenant=tenant, campaign_ids=ids) if ids else []
    return [r for r in rows if r.sent_at >= since][:10]


def _contacts_figure(*, tenant: Any, period: Period) -> tuple[Figure, int]:
    counts = audience_selectors.lifecycle_stage_counts(tenant=tenant)
    total = sum(counts.values())
    history = selectors.stage_history(tenant=tenant, start=period.previous.end, end=period.end)
    per_day: dict[date, int] = defaultdict(int)
    for points in history.values():
        for day, n in points:
            per_day[day] += n
    previous = per_day.get(period.previous.end)
    daily: list[Decimal | None] = [
        Decimal(per_day[d]) if d in per_day else None for d in period.dates()
    ]
    if daily and daily[-1] is None:
        daily[-1] = Decimal(total)  # today's snapshot is taken tonight: today is the live count
    value = Decimal(total)
    prev = None if previous is None else Decimal(previous)
    return Figure(CONTACTS, value, prev, change_of(CONTACTS, value, prev), daily), total


def home_read(*, tenant: Any) -> Home:
    today = selectors.today(tenant)
    period = Period(today - timedelta(days=WEEK - 1), today, "7")
    measures = [MEASURES[k] for k in HOME_MEASURES]
    metrics = list(dict.fromkeys(m for ms in measures for m in ms.metrics))
    if "events" not in metrics:
        metrics.append("events")
    rollups = Rollups(tenant=tenant, period=period, metrics=metrics, cumulative=False)

    contacts, contact_total = _contacts_figure(tenant=tenant, period=period)
    events_today = rollups.days[today]["events"]
    events_yesterday = rollups.days[today - timedelta(days=1)]["events"]
    figures = [
        contacts,
        Figure(
            EVENTS_TODAY,
            events_today,
            events_yesterday,
            change_of(EVENTS_TODAY, events_today, events_yesterday),
            [rollups.days[d]["events"] for d in period.dates()],
        ),
    ]
    for m in measures:
        value, previous = rollups.value(m, period), rollups.value(m, period.previous)
        figures.append(
            Figure(
                m,
                value,
                previous,
                change_of(m, value, previous),
                [v for _, v in rollups.daily(m, period)],
            )
        )
    return Home(
        period=period,
        figures=figures,
        has_data=contact_total > 0 or any(v for day in rollups.days.values() for v in day.values()),
        journeys=journey_earnings(tenant=tenant, period=period),
        campaigns=campaigns_sent(tenant=tenant, period=period),
    )
