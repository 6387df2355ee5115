"""The customer journey map: the six lifecycle stages with their counts, how contacts moved
between them over a period, and the journeys and campaigns acting on each stage.

Which journeys and campaigns act on a stage is read from what they are built of (pure functions
below, unit-tested on hand-made settings):

    a journey   its trigger, a branch or a wait/goal on `Lifecycle Stage Changed` whose "to"
                filter names the stage (no "to" filter: every stage); a lifecycle condition in a
                branch's rules; a segment it triggers on, or names in a branch, whose rules hold
                a lifecycle condition (or such a stage-change condition) on the stage
    a campaign  a segment it sends to (not one it excludes) whose rules do

A condition that keeps a stage out ("is not Advocacy", or a group negated) acts on the other
five. A segment inside another segment's rules passes its stages on (followed to any depth,
each segment once). A journey's published version is read (a draft-only journey's draft);
archived journeys and cancelled campaigns are left out.

    journey_map(*, tenant, period) -> JourneyMap          a constant number of queries (see docs)

The period is the dashboards' (analytics.periods.Period and its picker): the same choices,
validation and words on every analytics page.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db.models import Count, Q, Sum

from analytics.campaign_results import campaign_result_rows
from audience import selectors as audience_selectors
from audience.models import LifecycleStage
from campaigns.models import Campaign, CampaignSegment
from journeys import selectors as journey_selectors
from journeys.models import Enrollment, Journey, JourneyVersion, Node
from segments.models import Segment
from tenants.models import Tenant

if TYPE_CHECKING:
    from analytics.periods import Period

# The event every stage change is recorded as (ISSUE15 decision 2; audience owns the name).
STAGE_CHANGED = audience_selectors.STAGE_CHANGED
ALL = frozenset(LifecycleStage.values)


def stages() -> list[tuple[str, str]]:
    """(value, label) of the six stages, in their order."""
    return list(LifecycleStage.choices)


# --- which stages a piece of a journey or a segment acts on (pure) --------------------------


def filters_stages(filters: object) -> frozenset[str]:
    """The stages a `Lifecycle Stage Changed` event with these property filters moves contacts
    into: the "to" filters' (several: all must hold); no "to" filter: every stage."""
    found = ALL
    for f in filters if isinstance(filters, list) else []:
        if not isinstance(f, dict) or str(f.get("property", "")).strip() != "to":
            continue
        operator, value = f.get("operator", "equals"), str(f.get("value", ""))
        if operator == "equals":
            found = found & {value}
        elif operator == "not_equals":
            found = found - {value}
        elif operator == "contains":
            found = frozenset(s for s in found if value.lower() in s)
    return frozenset(found)


def rule_stages(
    tree: object, *, segment_stages: Mapping[str, frozenset[str]] | None = None
) -> frozenset[str]:
    """The stages a segments rule tree acts on: its lifecycle conditions' (the other stages
    where it keeps some out), its stage-change event conditions', and those of the segments it
    names (`segment_stages`, by public id)."""
    known = segment_stages or {}

    def walk(node: object, negated: bool) -> frozenset[str]:
        if not isinstance(node, dict):
            return frozenset()
        kind = node.get("type")
        if kind == "group":
            flip = negated != bool(node.get("negate", False))
            children = node.get("children") or []
            return frozenset().union(*(walk(c, flip) for c in children))
        if kind == "lifecycle":
            named = frozenset(v for v in node.get("value") or [] if v in ALL)
            keep_out = negated != (node.get("operator", "in") == "not_in")
            return ALL - named if keep_out and named else named
        if kind == "event" and node.get("event") == STAGE_CHANGED:
            return filters_stages(node.get("where"))
        if kind == "segment":
            named = known.get(str(node.get("segment", "")), frozenset())
            keep_out = negated != (not node.get("member", True))
            return ALL - named if keep_out and named else named
        return frozenset()

    return walk(tree, False)


def rule_segments(tree: object) -> set[str]:
    """Public ids of the segments a rule tree names (to follow them first)."""
    if not isinstance(tree, dict):
        return set()
    if tree.get("type") == "group":
        return {ref for c in tree.get("children") or [] for ref in rule_segments(c)}
    if tree.get("type") == "segment":
        return {str(tree.get("segment", ""))}
    return set()


def segments_stages(rules_by_id: Mapping[str, object]) -> dict[str, frozenset[str]]:
    """{segment public id: the stages its rules act on}, segments inside segments followed
    (each once: a cycle, which segments refuse anyway, cannot loop)."""
    done: dict[str, frozenset[str]] = {}
    visiting: set[str] = set()

    def resolve(public_id: str) -> frozenset[str]:
        if public_id in done:
            return done[public_id]
        if public_id in visiting or public_id not in rules_by_id:
            return frozenset()
        visiting.add(public_id)
        tree = rules_by_id[public_id]
        inner = {ref: resolve(ref) for ref in rule_segments(tree)}
        visiting.discard(public_id)
        done[public_id] = rule_stages(tree, segment_stages=inner)
        return done[public_id]

    for public_id in rules_by_id:
        resolve(public_id)
    return done


@dataclass(frozen=True)
class Reason:
    """Why a journey or campaign acts on some stages: what part of it, in words."""

    stages: frozenset[str]
    text: str


EVENT_KINDS = {
    "trigger_event": "Trigger",
    "branch_event": "Branch",
    "wait_event": "Wait",
    "goal": "Goal",
}


def node_reasons(
    *,
    kind: str,
    settings: Mapping[str, Any],
    label: str = "",
    segment_stages: Mapping[str, frozenset[str]],
    segment_names: Mapping[str, str],
) -> list[Reason]:
    """The stages one journey step acts on, with why."""
    found: list[Reason] = []
    name = f"“{label}”" if label else ""
    if kind in EVENT_KINDS and settings.get("event") == STAGE_CHANGED:
        to = filters_stages(settings.get("filters"))
        what = EVENT_KINDS[kind]
        where = f"{what} {name}" if name else what
        found.append(Reason(to, f"{where}: stage changed to {_names(to)}"))
    elif kind == "trigger_segment":
        segment = str(settings.get("segment", ""))
        on = segment_stages.get(segment, frozenset())
        verb = "leaving" if settings.get("direction") == "exited" else "entering"
        seg_name = segment_names.get(segment, "a segment")
        found.append(Reason(on, f"Trigger: {verb} segment “{seg_name}”"))
    elif kind == "branch_condition":
        rules = settings.get("rules")
        on = rule_stages(rules, segment_stages=segment_stages)
        found.append(Reason(on, f"Branch{' ' + name if name else ''}: condition on the stage"))
    return [r for r in found if r.stages]


def _names(values: Iterable[str]) -> str:
    labels = dict(LifecycleStage.choices)
    chosen = [labels[v] for v in LifecycleStage.values if v in set(values)]
    return "any stage" if len(chosen) == len(labels) else " or ".join(chosen)


# --- the map -------------------------------------------------------------------------------------


@dataclass
class JourneyOnStage:
    journey: Journey
    reasons: list[str]
    enrolled: int = 0
    active: int = 0
    converted: int = 0
    revenue: Decimal = Decimal("0.00")


@dataclass
class CampaignOnStage:
    campaign: Campaign
    reasons: list[str]
    sent: int | None = None  # None: not sent yet
    conversions: int | None = None
    revenue: Decimal | None = None


@dataclass
class StageRow:
    key: str
    label: str
    contacts: int
    share: float | None  # of every contact
    moved_in: int = 0  # over the period
    moved_out: int = 0
    journeys: list[JourneyOnStage] = field(default_factory=list)
    campaigns: list[CampaignOnStage] = field(default_factory=list)

    @property
    def share_text(self) -> str:
        return "—" if self.share is None else f"{self.share * 100:.1f} %"


@dataclass(frozen=True)
class JourneyMap:
    period: Period
    stages: list[StageRow]
    transitions: list[tuple[str, str, int]]  # (from, to, contacts), "" from: a new contact
    total: int  # every contact

    @property
    def moved(self) -> int:
        return sum(n for _, _, n in self.transitions)


def _journey_figures(tenant: Tenant, journey_ids: list[int]) -> dict[int, dict[str, Any]]:
    """{journey id: enrolled, active, converted, revenue}, as journeys.selectors.journey_totals
    counts them, in two GROUP BYs that never read every enrollment: states per version from the
    (tenant, version, node, state) index alone, and only the converted enrollments, through
    their partial index (a converted enrollment always has `converted_at`)."""
    versions = dict(
        JourneyVersion.objects.filter(tenant=tenant, journey_id__in=journey_ids).values_list(
            "pk", "journey_id"
        )
    )
    figures: dict[int, dict[str, Any]] = {
        j: {"enrolled": 0, "active": 0, "converted": 0, "revenue": Decimal("0.00")}
        for j in journey_ids
    }
    states = (
        Enrollment.objects.filter(tenant=tenant, version_id__in=list(versions))
        .order_by()
        .values("version_id", "state")
        .annotate(n=Count("*"))
    )
    for r in states:
        f = figures[versions[r["version_id"]]]
        f["enrolled"] += r["n"]
        if r["state"] in journey_selectors.OPEN_STATES:
            f["active"] += r["n"]
    conversions = (
        Enrollment.objects.filter(
            tenant=tenant, journey_id__in=journey_ids, converted_at__isnull=False
        )
        .order_by()
        .values("journey_id")
        .annotate(n=Count("*"), revenue=Sum("revenue"))
    )
    for c in conversions:
        f = figures[c["journey_id"]]
        f["converted"] = c["n"]
        f["revenue"] = Decimal(c["revenue"] or 0).quantize(Decimal("0.01"))
    return figures


def _journeys_acting(
    tenant: Tenant,
    segment_stages: Mapping[str, frozenset[str]],
    segment_names: Mapping[str, str],
) -> dict[str, list[JourneyOnStage]]:
    """{stage: journeys acting on it}: one query for the steps, one for the journeys, three
    for their figures."""
    nodes = (
        Node.objects.filter(
            tenant=tenant,
            version__state__in=(JourneyVersion.State.PUBLISHED, JourneyVersion.State.DRAFT),
        )
        .exclude(version__journey__status=Journey.Status.ARCHIVED)
        .filter(
            Q(kind="trigger_segment")
            | Q(kind="branch_condition")
            | Q(kind__in=list(EVENT_KINDS), settings__event=STAGE_CHANGED)
        )
        .values("version__journey_id", "version__state", "kind", "label", "settings")
        .order_by()
    )
    # Per journey, the published version's steps; the draft's only when none is published.
    by_journey: dict[int, dict[str, list[dict[str, Any]]]] = {}
    for n in nodes:
        by_journey.setdefault(n["version__journey_id"], {}).setdefault(
            n["version__state"], []
        ).append(dict(n))
    reasons: dict[int, dict[str, list[str]]] = {}
    for journey_id, versions in by_journey.items():
        steps = versions.get(JourneyVersion.State.PUBLISHED) or versions.get(
            JourneyVersion.State.DRAFT, []
        )
        for step in steps:
            settings = step["settings"] if isinstance(step["settings"], dict) else {}
            for reason in node_reasons(
                kind=step["kind"],
                settings=settings,
                label=step["label"],
                segment_stages=segment_stages,
                segment_names=segment_names,
            ):
                for stage in reason.stages:
                    reasons.setdefault(journey_id, {}).setdefault(stage, []).append(reason.text)
    if not reasons:
        return {}
    journeys = {
        j.pk: j
        for j in Journey.objects.filter(tenant=tenant, pk__in=list(reasons)).order_by("name")
    }
    figures = _journey_figures(tenant, list(journeys))
    acting: dict[str, list[JourneyOnStage]] = {}
    for journey_id, journey in journeys.items():
        f = figures.get(journey_id, {})
        for stage, texts in reasons[journey_id].items():
            acting.setdefault(stage, []).append(
                JourneyOnStage(
                    journey=journey,
                    reasons=sorted(set(texts)),
                    enrolled=f.get("enrolled", 0),
                    active=f.get("active", 0),
                    converted=f.get("converted", 0),
                    revenue=f.get("revenue") or Decimal("0.00"),
                )
            )
    for items in acting.values():
        items.sort(key=lambda j: j.journey.name.casefold())
    return acting


def _campaigns_acting(
    tenant: Tenant,
    segment_stages: Mapping[str, frozenset[str]],
    segment_names: Mapping[str, str],
) -> dict[str, list[CampaignOnStage]]:
    """{stage: campaigns acting on it}: one query for their segments, two for the campaigns
    and their latest sends (plus the count of a send whose results are not kept yet)."""
    chosen = (
        CampaignSegment.objects.filter(tenant=tenant, exclude=False)
        .exclude(campaign__state=Campaign.State.CANCELLED)
        .values_list("campaign_id", "segment__public_id")
        .order_by()
    )
    reasons: dict[int, dict[str, list[str]]] = {}
    for campaign_id, segment_id in chosen:
        on = segment_stages.get(str(segment_id), frozenset())
        for stage in on:
            text = f"Sends to segment “{segment_names.get(str(segment_id), '?')}”"
            reasons.setdefault(campaign_id, {}).setdefault(stage, []).append(text)
    if not reasons:
        return {}
    campaigns = {c.pk: c for c in Campaign.objects.filter(tenant=tenant, pk__in=list(reasons))}
    results = {
        row.campaign.pk: row
        for row in campaign_result_rows(tenant=tenant, campaign_ids=list(campaigns))
    }
    acting: dict[str, list[CampaignOnStage]] = {}
    for campaign_id, campaign in campaigns.items():
        row = results.get(campaign_id)
        for stage, texts in reasons[campaign_id].items():
            acting.setdefault(stage, []).append(
                CampaignOnStage(
                    campaign=campaign,
                    reasons=sorted(set(texts)),
                    sent=row.sent if row else None,
                    conversions=row.conversions if row else None,
                    revenue=row.revenue if row else None,
                )
            )
    for items in acting.values():
        items.sort(key=lambda c: c.campaign.name.casefold())
    return acting


def journey_map(*, tenant: Tenant, period: Period) -> JourneyMap:
    """Everything the map page shows for `tenant` over `period`."""
    from analytics import selectors as rollups

    counts = audience_selectors.lifecycle_stage_counts(tenant=tenant)
    transitions = [
        (f, t, n)
        for f, t, n in rollups.stage_transitions(tenant=tenant, start=period.start, end=period.end)
        if n
    ]
    segments = list(Segment.objects.filter(tenant=tenant).values_list("public_id", "name", "rules"))
    segment_stages = segments_stages({str(p): rules for p, _, rules in segments})
    segment_names = {str(p): name for p, name, _ in segments}
    journeys = _journeys_acting(tenant, segment_stages, segment_names)
    campaigns = _campaigns_acting(tenant, segment_stages, segment_names)
    total = sum(counts.values())
    rows = []
    for key, label in stages():
        n = counts.get(key, 0)
        rows.append(
            StageRow(
                key=key,
                label=label,
                contacts=n,
                share=n / total if total else None,
                moved_in=sum(c for f, t, c in transitions if t == key and f != key),
                moved_out=sum(c for f, t, c in transitions if f == key and t != key),
                journeys=journeys.get(key, []),
                campaigns=campaigns.get(key, []),
            )
        )
    return JourneyMap(period=period, stages=rows, transitions=transitions, total=total)
