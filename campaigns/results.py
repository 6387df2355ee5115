"""What a campaign's occurrence earned, per variant and against the hold-out; and the winner.

Outcomes are the contacts' events that messaging records (messaging/outcomes.py), each naming
its message in `properties.delivery_id` (the Delivery's public id); a Recipient names its
Delivery. So every count here is "recipients of this occurrence with such an event about their
own message", aggregated in SQL (GROUP BY variant), a handful of queries whatever the number
of recipients:

    recipients     frozen into the variant (or the hold-out)
    sent           their message left (Delivery status sent)
    bounces        … with `Email Bounced`;   delivered = sent - bounces
    opens          … with `Email Opened` (unique contacts; a click proves an open, and the
                   click recorder records one). Push has no opens: a click on a notification
                   is its open, so push opens count `Push Clicked`.
    clicks         … with a click (unique contacts); links: per URL, unique contacts and clicks
    unsubscribes   `Unsubscribed` (on the campaign's channel) within the goal window after their
                   message was sent. The event does not name the message that caused it, so the
                   window after sending stands in for "because of it".
    conversions    recipients with `goal_event` within `goal_window_hours` after their message
                   was sent (hold-out: after the occurrence started); revenue is the sum of
                   `properties[goal_revenue_property]` over those events, JSON numbers only.

Rates are fractions (0-1, None when the denominator is 0): opens, clicks and bounces over sent,
unsubscribes over delivered, conversions over sent for a variant and over recipients for the
hold-out (who were never sent anything). `lift` compares a variant's conversion rate with the
hold-out's: relative (0.25 is +25 %, None without a hold-out or when it converted nobody) and in
percentage points.

`winner_choose` is pure: the variant with the highest rate on the metric (count / recipients),
ties to the one with more recipients, then to the earlier key.

Kept results. Retention (audience/retention.py) removes raw events older than each team's
cutoff, and with them what these counts are made of. So an occurrence's results are computed
once more and kept on it (`Occurrence.results`, JSON, with `results_frozen_at`), and from then
on read from there instead of counted (`results_kept`):

    results_freeze_due     the campaigns tick: finished occurrences whose goal window after the
                           finish has passed (the results are final), a few per tick
    results_freeze_before  retention's hook (audience.registry.before_events_removed, registered
                           in CampaignsConfig.ready): every occurrence of the team started
                           before the cutoff, final or not, before its events go

The first copy kept stays (`results_freeze` writes only where none is). One kept before its
window ended (by the hook) says so: "as of" its date rather than final.
"""

from __future__ import annotations

import logging
import time as clock
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from django.db import transaction
from django.db.models import (
    Case,
    Count,
    DateTimeField,
    DurationField,
    F,
    FloatField,
    Func,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    TextField,
    Value,
    When,
)
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import TruncDay, TruncHour
from django.utils.timezone import now

from audience.models import Event
from campaigns.models import Campaign, Occurrence, Recipient, Variant
from core import rls
from core.expressions import JSONNumber
from messaging.models import Channel, Delivery
from messaging.selectors import (  # outcome events' names
    EMAIL_BOUNCED,
    EMAIL_CLICKED,
    EMAIL_OPENED,
    PUSH_CLICKED,
    UNSUBSCRIBED,
)

log = logging.getLogger(__name__)

METRICS = ("opens", "clicks", "conversions")
HOLDOUT = "holdout"  # the hold-out's row key (variants are "A", "B", …)
HOURLY_FOR = timedelta(hours=48)  # the chart goes by the hour this long, then by the day
MAX_DAYS = 90  # a daily chart's points at most


# --- The winner (pure) ------------------------------------------------------------------------


@dataclass(frozen=True)
class VariantStats:
    recipients: int = 0
    sent: int = 0
    opens: int = 0
    clicks: int = 0
    conversions: int = 0


def metric_rate(stats: VariantStats, metric: str) -> Fraction:
    """`metric`'s count over the variant's recipients, exactly (0 without recipients)."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}")
    if not stats.recipients:
        return Fraction(0)
    return Fraction(getattr(stats, metric), stats.recipients)


def winner_choose(stats_by_variant: Mapping[str, VariantStats], metric: str) -> str:
    """The key of the variant best on `metric` (highest rate over its recipients); a tie goes
    to more recipients, then to the earlier key ("A" before "B"). Exact (fractions, no float
    noise) and independent of the mapping's order."""
    if not stats_by_variant:
        raise ValueError("no variants to choose from")
    return min(
        stats_by_variant,
        key=lambda key: (
            -metric_rate(stats_by_variant[key], metric),
            -stats_by_variant[key].recipients,
            key,
        ),
    )


# --- What the results page shows ----------------------------------------------------------------


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True)
class LinkClicks:
    url: str
    unique: int  # contacts who clicked it
    total: int  # clicks


@dataclass
class ResultRow:
    key: str  # "A", "B", … or HOLDOUT
    label: str
    template: str = ""  # the variant's template's name
    recipients: int = 0
    sent: int = 0
    bounces: int = 0
    opens: int = 0
    clicks: int = 0
    unsubscribes: int = 0
    conversions: int = 0
    revenue: Decimal = Decimal("0.00")
    links: list[LinkClicks] = field(default_factory=list)
    winner: bool = False
    lift: float | None = None  # conversion rate vs the hold-out's, relative
    lift_points: float | None = None  # … in percentage points

    @property
    def holdout(self) -> bool:
        return self.key == HOLDOUT

    @property
    def delivered(self) -> int:
        return max(self.sent - self.bounces, 0)

    @property
    def open_rate(self) -> float | None:
        return _rate(self.opens, self.sent)

    @property
    def click_rate(self) -> float | None:
        return _rate(self.clicks, self.sent)

    @property
    def click_to_open_rate(self) -> float | None:
        return _rate(self.clicks, self.opens)

    @property
    def bounce_rate(self) -> float | None:
        return _rate(self.bounces, self.sent)

    @property
    def unsubscribe_rate(self) -> float | None:
        return _rate(self.unsubscribes, self.delivered)

    @property
    def conversion_rate(self) -> float | None:
        return _rate(self.conversions, self.recipients if self.holdout else self.sent)

    @property
    def revenue_per_recipient(self) -> Decimal | None:
        if not self.recipients:
            return None
        return (self.revenue / self.recipients).quantize(Decimal("0.01"))


@dataclass(frozen=True)
class SeriesPoint:
    at: datetime  # the bucket's start, in the team's time zone
    opens: int = 0
    clicks: int = 0
    conversions: int = 0


@dataclass(frozen=True)
class Series:
    bucket: str  # "hour" or "day"
    points: list[SeriesPoint]

    @property
    def peak(self) -> int:
        return max((max(p.opens, p.clicks, p.conversions) for p in self.points), default=0)


@dataclass(frozen=True)
class Results:
    occurrence: Occurrence
    variants: list[ResultRow]  # in key order
    holdout: ResultRow | None  # None: the campaign kept no hold-out
    total: ResultRow  # every variant together
    waiting: int  # recipients of the test's rest, waiting for the winner (no variant yet)
    series: Series
    goal_event: str
    goal_window_hours: int
    frozen_at: datetime | None = None  # None: counted from the events now
    final: bool = False  # kept after the goal window ended (else: as they stood then)

    @property
    def rows(self) -> list[ResultRow]:
        return [*self.variants, *([self.holdout] if self.holdout else [])]


# --- SQL ---------------------------------------------------------------------------------------


class UUIDText(Func):
    """A UUID column as the text events carry (str(uuid), dashed): PostgreSQL casts uuid to
    that form; SQLite stores UUIDField as 32 bare hex digits, so the events' side drops its
    dashes there instead (`EventUUIDText`). No replace() on PostgreSQL: this runs on every one
    of an occurrence's deliveries."""

    output_field = TextField()
    template = "(%(expressions)s)::text"

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(compiler, connection, template="%(expressions)s", **extra)


class EventUUIDText(Func):
    """`properties.<key>` as text, spelled as UUIDText spells a UUID on this database."""

    output_field = TextField()
    template = "%(expressions)s"

    def __init__(self, key: str) -> None:
        super().__init__(KeyTextTransform(key, "properties"))

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(
            compiler, connection, template="replace(%(expressions)s, '-', '')", **extra
        )


class _Scope:
    """One occurrence's recipients and the queries about their messages' outcomes."""

    def __init__(self, campaign: Campaign, occurrence: Occurrence) -> None:
        self.campaign, self.occurrence = campaign, occurrence
        self.tenant_id = occurrence.tenant_id
        self.recipients = Recipient.objects.filter(tenant_id=self.tenant_id, occurrence=occurrence)
        push = campaign.channel == Channel.PUSH
        self.opened = [PUSH_CLICKED] if push else [EMAIL_OPENED]
        self.clicked = [PUSH_CLICKED] if push else [EMAIL_CLICKED]
        # Group of a recipient: its variant's id; 0 for the hold-out; NULL waiting for a winner.
        self.group = Case(
            When(holdout=True, then=Value(0)), default=F("variant_id"), output_field=IntegerField()
        )

    def events(self, names: list[str]) -> QuerySet[Event]:
        """The tenant's events called `names` about this occurrence's messages."""
        deliveries = (
            self.recipients.filter(delivery__isnull=False)
            .annotate(uid=UUIDText("delivery__public_id"))
            .values("uid")
        )
        return (
            Event.objects.filter(
                tenant_id=self.tenant_id,
                name__in=names,
                occurred_at__gte=self.occurrence.started_at,
            )
            .annotate(delivery_uid=EventUUIDText("delivery_id"))
            .filter(delivery_uid__in=deliveries)
        )

    def of_recipient(self, expression: Any, output_field: Any) -> Subquery:
        """`expression` over the event's contact's Recipient row in this occurrence."""
        row = self.recipients.filter(contact_id=OuterRef("contact_id"))
        return Subquery(row.annotate(v=expression).values("v")[:1], output_field=output_field)

    def windowed(self, name: str, *, holdout: bool, **properties: str) -> QuerySet[Any]:
        """Events `name` of the recipients within the goal window after their message was sent
        (with `holdout`, the hold-out's after the occurrence started), annotated with `grp`."""
        start = self.occurrence.started_at
        anchor = (
            Case(
                When(holdout=True, then=Value(start, output_field=DateTimeField())),
                default=F("delivery__sent_at"),
                output_field=DateTimeField(),
            )
            if holdout
            else Case(
                When(holdout=False, then=F("delivery__sent_at")), output_field=DateTimeField()
            )
        )
        window = Value(
            timedelta(hours=self.campaign.goal_window_hours), output_field=DurationField()
        )
        found = Event.objects.filter(
            tenant_id=self.tenant_id,
            name=name,
            occurred_at__gte=start,
            contact_id__in=self.recipients.values("contact_id"),
        )
        for key, value in properties.items():
            found = found.filter(**{f"properties__{key}": value})
        return (
            found.annotate(
                anchor=self.of_recipient(anchor, DateTimeField()),
                grp=self.of_recipient(self.group, IntegerField()),
            )
            .filter(anchor__lte=F("occurred_at"), anchor__gt=F("occurred_at") - window)
            .order_by()
        )

    def counts(self, *, bounces: bool = True) -> dict[int | None, dict[str, int]]:
        """Per group: recipients, sent, opens, clicks (unique), bounces."""

        def having(names: list[str]) -> Q:
            return Q(contact_id__in=self.events(names).values("contact_id"))

        aggregates: dict[str, Any] = {
            "recipients": Count("pk"),
            "sent": Count("pk", filter=Q(delivery__status=Delivery.Status.SENT)),
            "opens": Count("pk", filter=having(self.opened)),
            "clicks": Count("pk", filter=having(self.clicked)),
        }
        if bounces:
            aggregates["bounces"] = Count("pk", filter=having([EMAIL_BOUNCED]))
        rows: Any = self.recipients.annotate(grp=self.group).values("grp").annotate(**aggregates)
        return {r["grp"]: {k: int(r[k]) for k in aggregates} for r in rows.order_by()}

    def conversions(self) -> dict[int | None, tuple[int, Decimal]]:
        """Per group: converted recipients and their revenue in the goal window."""
        goal = self.campaign.goal_event
        if not goal:
            return {}
        prop = self.campaign.goal_revenue_property
        revenue: Any = JSONNumber("properties", prop) if prop else Value(0.0, FloatField())
        rows = (
            self.windowed(goal, holdout=True)
            .values("grp")
            .annotate(n=Count("contact_id", distinct=True), revenue=Sum(revenue))
        )
        return {
            r["grp"]: (r["n"], Decimal(str(r["revenue"] or 0)).quantize(Decimal("0.01")))
            for r in rows
        }

    def unsubscribes(self) -> dict[int | None, int]:
        rows = (
            self.windowed(UNSUBSCRIBED, holdout=False, channel=self.campaign.channel)
            .values("grp")
            .annotate(n=Count("contact_id", distinct=True))
        )
        return {r["grp"]: r["n"] for r in rows}

    def links(self) -> dict[int | None, list[LinkClicks]]:
        rows = (
            self.events(self.clicked)
            .annotate(
                grp=self.of_recipient(self.group, IntegerField()),
                url=KeyTextTransform("url", "properties"),
            )
            .values("grp", "url")
            .annotate(unique=Count("contact_id", distinct=True), total=Count("pk"))
            .order_by()
        )
        found: dict[int | None, list[LinkClicks]] = {}
        for r in rows:
            found.setdefault(r["grp"], []).append(
                LinkClicks(r["url"] or "", r["unique"], r["total"])
            )
        return {g: _links_sorted(v) for g, v in found.items()}

    def series(self, zone: zoneinfo.ZoneInfo, at: datetime) -> Series:
        start = self.occurrence.started_at
        hourly = at - start <= HOURLY_FOR
        trunc: Any = TruncHour if hourly else TruncDay
        buckets: dict[datetime, dict[str, int]] = {}
        events = (
            self.events([*self.opened, *self.clicked])
            .annotate(bucket=trunc("occurred_at", tzinfo=zone))
            .values("bucket", "name")
            .annotate(n=Count("pk"))
            .order_by()
        )
        for r in events:
            slot = buckets.setdefault(r["bucket"], {})
            # Push: one click event stands for both the open and the click.
            if r["name"] in self.opened:
                slot["opens"] = slot.get("opens", 0) + r["n"]
            if r["name"] in self.clicked:
                slot["clicks"] = slot.get("clicks", 0) + r["n"]
        if self.campaign.goal_event:
            conversions = (
                self.windowed(self.campaign.goal_event, holdout=False)
                .annotate(bucket=trunc("occurred_at", tzinfo=zone))
                .values("bucket")
                .annotate(n=Count("pk"))
            )
            for c in conversions:
                buckets.setdefault(c["bucket"], {})["conversions"] = c["n"]
        return Series(
            bucket="hour" if hourly else "day",
            points=_filled(buckets, start, at, zone, hourly),
        )


def _links_sorted(links: list[LinkClicks]) -> list[LinkClicks]:
    return sorted(links, key=lambda link: (-link.unique, -link.total, link.url))


def _filled(
    buckets: dict[datetime, dict[str, int]],
    start: datetime,
    end: datetime,
    zone: zoneinfo.ZoneInfo,
    hourly: bool,
) -> list[SeriesPoint]:
    """One point per hour (or day) from the occurrence's start to `end`, zeros included."""
    local = start.astimezone(zone)
    if hourly:
        at, step, count = local.replace(minute=0, second=0, microsecond=0), timedelta(hours=1), 48
    else:
        at, step, count = local.replace(hour=0, minute=0, second=0, microsecond=0), None, MAX_DAYS
    # Keys compared in UTC: the database answers in the zone, but the same instant is equal.
    by_instant = {k.astimezone(UTC): v for k, v in buckets.items()}
    points: list[SeriesPoint] = []
    while at <= end and len(points) < count:
        values = by_instant.pop(at.astimezone(UTC), {})
        points.append(SeriesPoint(at=at, **values))
        if step is not None:
            at = (at.astimezone(UTC) + step).astimezone(zone)
        else:  # a day in the zone: 23 or 25 hours across a DST change
            day = at.date() + timedelta(days=1)
            at = datetime(day.year, day.month, day.day, tzinfo=zone)
    # Anything past the last point (clock skew, a chart capped at MAX_DAYS) is not dropped.
    for instant, values in sorted(by_instant.items()):
        points.append(SeriesPoint(at=instant.astimezone(zone), **values))
    return points


def _zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def results_compute(
    *, campaign: Campaign, occurrence: Occurrence, at: datetime | None = None, detail: bool = True
) -> Results:
    """The results page's figures for one occurrence, counted from the events (the chart up to
    `at`, default now). `detail=False` leaves out the clicks per link and the chart (empty):
    a list of campaigns shows neither, and they are a third of the counting."""
    scope = _Scope(campaign, occurrence)
    variants = list(
        Variant.objects.filter(tenant_id=campaign.tenant_id, campaign=campaign)
        .select_related("template")
        .order_by("key")
    )
    counts = scope.counts()
    conversions = scope.conversions()
    unsubscribes = scope.unsubscribes()
    links = scope.links() if detail else {}

    def row(group: int, key: str, label: str, template: str = "") -> ResultRow:
        c = counts.get(group, {})
        n, revenue = conversions.get(group, (0, Decimal("0.00")))
        return ResultRow(
            key=key,
            label=label,
            template=template,
            recipients=c.get("recipients", 0),
            sent=c.get("sent", 0),
            bounces=c.get("bounces", 0),
            opens=c.get("opens", 0),
            clicks=c.get("clicks", 0),
            unsubscribes=unsubscribes.get(group, 0),
            conversions=n,
            revenue=revenue,
            links=links.get(group, []),
            winner=occurrence.winner_id == group,
        )

    rows = [row(v.pk, v.key, f"Variant {v.key}", v.template.name) for v in variants]
    kept = bool(campaign.holdout_percent) or 0 in counts
    holdout = row(0, HOLDOUT, "Hold-out") if kept else None
    total = _total(rows)
    if holdout is not None:
        for r in [*rows, total]:
            _lift(r, holdout)
    waiting = counts.get(None, {}).get("recipients", 0)
    tenant_zone = _zone(getattr(campaign.tenant, "timezone", "") or "UTC")
    return Results(
        occurrence=occurrence,
        variants=rows,
        holdout=holdout,
        total=total,
        waiting=waiting,
        series=scope.series(tenant_zone, at or now()) if detail else Series("day", []),
        goal_event=campaign.goal_event,
        goal_window_hours=campaign.goal_window_hours,
    )


def _total(rows: list[ResultRow]) -> ResultRow:
    merged: dict[str, LinkClicks] = {}
    for r in rows:
        for link in r.links:
            seen = merged.get(link.url)
            # A contact is in one variant only: unique counts add up across variants.
            merged[link.url] = (
                LinkClicks(link.url, seen.unique + link.unique, seen.total + link.total)
                if seen
                else link
            )
    names = ("recipients", "sent", "bounces", "opens", "clicks", "unsubscribes", "conversions")
    sums = {n: sum(getattr(r, n) for r in rows) for n in names}
    return ResultRow(
        key="total",
        label="All variants",
        revenue=sum((r.revenue for r in rows), Decimal("0.00")),
        links=_links_sorted(list(merged.values())),
        **sums,
    )


def _lift(row: ResultRow, holdout: ResultRow) -> None:
    mine, base = row.conversion_rate, holdout.conversion_rate
    if mine is None or base is None:
        return
    row.lift_points = round(100 * (mine - base), 2)
    row.lift = (mine - base) / base if base else None


def variant_metric_stats(*, occurrence: Occurrence) -> dict[str, VariantStats]:
    """Per variant key, what `winner_choose` reads (the hold-out and the rest waiting for the
    winner left out): three queries."""
    campaign = occurrence.campaign
    scope = _Scope(campaign, occurrence)
    counts = scope.counts(bounces=False)
    conversions = scope.conversions()
    keys = dict(
        Variant.objects.filter(tenant_id=occurrence.tenant_id, campaign=campaign).values_list(
            "pk", "key"
        )
    )
    stats: dict[str, VariantStats] = {}
    for pk, key in keys.items():
        c = counts.get(pk, {})
        stats[key] = VariantStats(
            recipients=c.get("recipients", 0),
            sent=c.get("sent", 0),
            opens=c.get("opens", 0),
            clicks=c.get("clicks", 0),
            conversions=conversions.get(pk, (0, Decimal(0)))[0],
        )
    return stats


# --- Kept results ------------------------------------------------------------------------------

KEPT_VERSION = 1  # the JSON's shape; a copy of another shape is not read (counted instead)
FREEZE_SECONDS = 2.0  # the tick's time for keeping results, of its 10 s
FREEZE_LOOK = 200  # due occurrences looked at per tick


def results_final_at(*, campaign: Campaign, occurrence: Occurrence) -> datetime | None:
    """When the occurrence's results stop changing: the goal window after its last message
    (it finished once every message had left the outbox). None while it has not finished."""
    if occurrence.finished_at is None:
        return None
    return occurrence.finished_at + timedelta(hours=campaign.goal_window_hours)


def _row_json(row: ResultRow) -> dict[str, Any]:
    return {
        "key": row.key,
        "label": row.label,
        "template": row.template,
        "recipients": row.recipients,
        "sent": row.sent,
        "bounces": row.bounces,
        "opens": row.opens,
        "clicks": row.clicks,
        "unsubscribes": row.unsubscribes,
        "conversions": row.conversions,
        "revenue": str(row.revenue),
        "links": [[link.url, link.unique, link.total] for link in row.links],
        "winner": row.winner,
        "lift": row.lift,
        "lift_points": row.lift_points,
    }


def _row_read(data: dict[str, Any]) -> ResultRow:
    return ResultRow(
        **{
            **data,
            "revenue": Decimal(data["revenue"]),
            "links": [LinkClicks(url, unique, total) for url, unique, total in data["links"]],
        }
    )


def results_json(results: Results, *, final: bool) -> dict[str, Any]:
    """What `results_read` makes the same Results of again (every figure the page, its charts
    and the API show; rates and the like are derived from these)."""
    return {
        "version": KEPT_VERSION,
        "final": final,
        "goal_event": results.goal_event,
        "goal_window_hours": results.goal_window_hours,
        "waiting": results.waiting,
        "variants": [_row_json(r) for r in results.variants],
        "holdout": _row_json(results.holdout) if results.holdout else None,
        "total": _row_json(results.total),
        "series": {
            "bucket": results.series.bucket,
            "points": [
                [p.at.isoformat(), p.opens, p.clicks, p.conversions] for p in results.series.points
            ],
        },
    }


def results_read(occurrence: Occurrence, data: Any, frozen_at: datetime) -> Results | None:
    """The Results kept as `data` (results_json), or None for a shape this code does not know."""
    if not isinstance(data, dict) or data.get("version") != KEPT_VERSION:
        return None
    series = data["series"]
    return Results(
        occurrence=occurrence,
        variants=[_row_read(r) for r in data["variants"]],
        holdout=_row_read(data["holdout"]) if data["holdout"] else None,
        total=_row_read(data["total"]),
        waiting=data["waiting"],
        # Each point at its instant in the zone the chart was drawn in, as it was labelled.
        series=Series(
            bucket=series["bucket"],
            points=[
                SeriesPoint(datetime.fromisoformat(at), opens, clicks, conversions)
                for at, opens, clicks, conversions in series["points"]
            ],
        ),
        goal_event=data["goal_event"],
        goal_window_hours=data["goal_window_hours"],
        frozen_at=frozen_at,
        final=bool(data["final"]),
    )


def results_kept(*, occurrence: Occurrence) -> Results | None:
    """The occurrence's kept results, or None when none are kept (count them instead)."""
    if occurrence.results_frozen_at is None:
        return None
    return results_read(occurrence, occurrence.results, occurrence.results_frozen_at)


def results_freeze(*, occurrence: Occurrence, at: datetime | None = None) -> bool:
    """Count the occurrence's results now and keep them on it, unless a copy is kept already
    (the first stays: later counts may have lost events to retention). Final when its goal
    window had ended; otherwise they read "as of" `at`. True when this call kept them."""
    at = at or now()
    if occurrence.results_frozen_at is not None:
        return False
    campaign = Campaign.objects.select_related("tenant").get(
        tenant_id=occurrence.tenant_id, pk=occurrence.campaign_id
    )
    computed = results_compute(campaign=campaign, occurrence=occurrence, at=at)
    final_at = results_final_at(campaign=campaign, occurrence=occurrence)
    data = results_json(computed, final=final_at is not None and final_at <= at)
    # Only where none is kept yet: two freezes at once keep the first one written.
    kept = Occurrence.objects.filter(
        tenant_id=occurrence.tenant_id, pk=occurrence.pk, results_frozen_at__isnull=True
    ).update(results=data, results_frozen_at=at)
    if kept:
        occurrence.results, occurrence.results_frozen_at = data, at
    return bool(kept)


def _due(at: datetime) -> QuerySet[Occurrence]:
    """Finished occurrences without kept results whose goal window after the finish has passed
    (through the partial index on finished_at of those not kept), oldest first."""
    pending = Occurrence.objects.filter(results_frozen_at__isnull=True, finished_at__isnull=False)
    # One test per goal window in use among them (a handful): plain comparisons with the
    # finish, the same on PostgreSQL and SQLite, no interval arithmetic.
    windows = set(
        pending.filter(finished_at__lte=at - timedelta(hours=1))
        .values_list("campaign__goal_window_hours", flat=True)
        .order_by()
        .distinct()
    )
    if not windows:
        return Occurrence.objects.none()
    passed = Q()
    for hours in windows:
        passed |= Q(campaign__goal_window_hours=hours, finished_at__lte=at - timedelta(hours=hours))
    return pending.filter(passed).order_by("finished_at", "pk")


def results_freeze_due(*, at: datetime | None = None, seconds: float = FREEZE_SECONDS) -> int:
    """The campaigns tick's part: keep the final results of finished occurrences whose goal
    window has passed, for up to `seconds` (at least one), oldest first. Returns how many."""
    at = at or now()
    started, kept = clock.monotonic(), 0
    for occurrence in _due(at)[:FREEZE_LOOK]:
        # One occurrence's failure is logged and tried again next tick; it stops no other.
        try:
            with transaction.atomic():
                # A big send takes a while to count: a tick that overlaps this one (every 10 s)
                # passes over it rather than counting it again.
                mine = (
                    Occurrence.objects.select_for_update(skip_locked=True)
                    .filter(
                        tenant_id=occurrence.tenant_id,
                        pk=occurrence.pk,
                        results_frozen_at__isnull=True,
                    )
                    .first()
                )
                if mine is not None:
                    kept += results_freeze(occurrence=mine, at=at)
        except Exception:
            log.exception("occurrence %s: its results were not kept", occurrence.pk)
        if clock.monotonic() - started > seconds:
            break
    return kept


def results_freeze_before(*, tenant_id: int, cutoff: datetime) -> int:
    """Retention's hook (audience.registry): keep the results of every occurrence of the team
    started before `cutoff`, whose events are about to go, final or not. Returns how many."""
    kept = 0
    with rls.tenant_scope(tenant_id):
        pending = Occurrence.objects.filter(
            tenant_id=tenant_id, results_frozen_at__isnull=True, started_at__lt=cutoff
        ).order_by("started_at", "pk")
        for occurrence in pending:
            kept += results_freeze(occurrence=occurrence)
    return kept
