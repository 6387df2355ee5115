"""A journey's funnel: node by node from the trigger along its published version's graph, how
many reached each step, moved on, are waiting there, left the journey there or failed, and the
conversions and revenue of each goal.

    journey_funnel(*, tenant, journey) -> Funnel     eight queries, whatever the journey's size
    funnel_chart(funnel) -> FunnelChart              the bar funnel's geometry (pure)

The counts are journeys.selectors' (`node_stats`: distinct enrollments per node key across
every version, keys being stable through publishes) plus two of this module's own over the same
rows: the port each enrollment left a step by (so a branch shows each path and how many took
it), and which goal each conversion met (a conversion can be recorded wherever the contact
stands, the Step naming its goal).

Reading a row:

    reached   enrollments with any step logged at the node (node_stats.entered)
    moved_on  of those, who left it by a port that leads to another step
    waiting   standing there now (active or waiting)
    failed    stopped there by a failed step (retryable)
    left      the rest: their path ended there, an exit event or archiving ended it, or the goal
              met there ended it. Never below 0 (a loop can take someone through a step twice).
    previous  the count this row is compared with: the step before on the same path, or the
              number who took the branch's port that starts the path. drop_off = previous -
              reached (people who stopped between the two).

The graph is walked depth first from the trigger. A branch (any step with more than one port
leading on) opens one path per port, indented; a step reached again by another path (paths that
join, or a loop) is shown once and the later path says it continues there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import CharField, Count, OuterRef, Subquery, Sum
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Coalesce

from journeys import registry as node_kinds
from journeys import selectors as journey_selectors
from journeys.models import Enrollment, Journey, JourneyVersion, Step
from journeys.registry import Graph, GraphNode
from tenants.models import Tenant

CENT = Decimal("0.01")
# Results that say the enrollment left the node by a port (journeys.engine.run).
PORT_RESULTS = (Step.Result.FOLLOWED, Step.Result.SENT, Step.Result.CONVERTED)


@dataclass(frozen=True)
class FunnelRow:
    """One line of the funnel: a step, or (`port` set) the start of a branch's path."""

    key: str  # the node's key (the branch's, for a path row)
    label: str  # the step's own name or its kind's summary; the port's label for a path row
    kind: str  # node kind ("" for a path row)
    category: str  # trigger, wait, branch, action, goal, exit ("path" for a path row)
    depth: int  # 0 on the main path, +1 per branch
    reached: int = 0
    moved_on: int = 0
    waiting: int = 0
    failed: int = 0
    left: int = 0
    previous: int | None = None
    port: str = ""  # a path row: the branch's port
    ends: bool = False  # a path row whose port leads nowhere: the path ends at the branch
    joins: str = ""  # a step shown above (paths join there, or loop back): its label
    conversions: int | None = None  # goal steps only
    revenue: Decimal | None = None  # goal steps only

    @property
    def is_path(self) -> bool:
        return bool(self.port)

    @property
    def drop_off(self) -> int | None:
        if self.previous is None or self.is_path or self.joins:
            return None
        return max(self.previous - self.reached, 0)

    @property
    def drop_off_rate(self) -> float | None:
        if self.drop_off is None or not self.previous:
            return None
        return self.drop_off / self.previous

    @property
    def drop_off_pct(self) -> str:
        rate = self.drop_off_rate
        return "" if rate is None else f"{rate * 100:.1f} %"

    @property
    def share(self) -> float | None:
        """A path row: the share of the branch's people who took this port."""
        if not self.is_path or not self.previous:
            return None
        return self.reached / self.previous


@dataclass(frozen=True)
class Funnel:
    journey: Journey
    version: JourneyVersion | None  # the published one (else the newest): the graph walked
    rows: list[FunnelRow]
    totals: dict[str, Any]  # journey_selectors.journey_totals
    steps: int = 0  # step rows (not path rows)

    @property
    def top(self) -> int:
        return max((r.reached for r in self.rows), default=0)


def _version(journey: Journey) -> JourneyVersion | None:
    published = journey_selectors.journey_published(journey=journey)
    if published is not None:
        return published
    return journey_selectors.journey_versions(journey=journey).first()


def _port_counts(journey: Journey) -> dict[tuple[str, str], int]:
    """{(node key, port): distinct enrollments that left the node by it}, every version."""
    rows = (
        Step.objects.filter(
            tenant_id=journey.tenant_id,
            version__journey=journey,
            result__in=PORT_RESULTS,
        )
        .exclude(port="")
        .order_by()
        .values("node_key", "port")
        .annotate(n=Count("enrollment", distinct=True))
    )
    return {(r["node_key"], r["port"]): r["n"] for r in rows}


def _goal_counts(journey: Journey) -> dict[str, tuple[int, Decimal]]:
    """{goal key: (conversions, revenue)}: each converted enrollment under the goal its first
    conversion step names (the step's own node when it names none)."""
    first_goal = (
        Step.objects.filter(
            tenant_id=journey.tenant_id,
            enrollment=OuterRef("pk"),
            result=Step.Result.CONVERTED,
        )
        .order_by("id")
        .annotate(
            goal=Coalesce(KeyTextTransform("goal", "detail"), "node_key", output_field=CharField())
        )
        .values("goal")[:1]
    )
    rows = (
        Enrollment.objects.filter(journey_selectors.CONVERTED, tenant_id=journey.tenant_id)
        .filter(journey=journey)
        .annotate(goal=Subquery(first_goal, output_field=CharField()))
        .order_by()
        .values("goal")
        .annotate(n=Count("pk"), revenue=Sum("revenue"))
    )
    # Quantized: SQLite sums decimals without their places.
    return {
        r["goal"]: (r["n"], Decimal(r["revenue"] or 0).quantize(CENT)) for r in rows if r["goal"]
    }


def _label(node: GraphNode) -> str:
    if node.label:
        return node.label
    if node_kinds.is_registered(node.kind):
        return node_kinds.get(node.kind).describe(node.settings)
    return node.kind


def _ports(node: GraphNode) -> list[tuple[str, str]]:
    """(port, label) in the kind's order."""
    if not node_kinds.is_registered(node.kind):
        return []
    kind = node_kinds.get(node.kind)
    return [(p, kind.port_label(p, node.settings)) for p in kind.ports(node.settings)]


def _category(node: GraphNode) -> str:
    if not node_kinds.is_registered(node.kind):
        return ""
    return node_kinds.get(node.kind).category


def funnel_rows(
    *,
    graph: Graph,
    stats: dict[str, journey_selectors.NodeStats],
    ports: dict[tuple[str, str], int],
    goals: dict[str, tuple[int, Decimal]],
) -> list[FunnelRow]:
    """The funnel's rows from a graph and its counts (pure: the walk described above)."""
    nodes = {n.key: n for n in graph.nodes}
    targets = {(e.source, e.port): e.target for e in graph.edges}
    trigger = next((n for n in graph.nodes if n.kind.startswith("trigger_")), None)
    rows: list[FunnelRow] = []
    shown: set[str] = set()
    if trigger is None:
        return rows

    def walk(key: str, depth: int, previous: int | None) -> None:
        # Iterative along a single path, recursive at branches (depth is at most the number
        # of branches on a path, small).
        while True:
            node = nodes.get(key)
            if node is None:
                return
            if key in shown:
                rows.append(
                    FunnelRow(
                        key=key,
                        label=_label(node),
                        kind=node.kind,
                        category=_category(node),
                        depth=depth,
                        previous=previous,
                        joins=_label(node),
                    )
                )
                return
            shown.add(key)
            s = stats.get(key, journey_selectors.EMPTY_STATS)
            node_ports = _ports(node)
            leading = [(p, label) for p, label in node_ports if (key, p) in targets]
            moved_on = sum(ports.get((key, p), 0) for p, _ in leading)
            goal = goals.get(key, (0, Decimal("0.00"))) if node.kind == "goal" else None
            rows.append(
                FunnelRow(
                    key=key,
                    label=_label(node),
                    kind=node.kind,
                    category=_category(node),
                    depth=depth,
                    reached=s.entered,
                    moved_on=moved_on,
                    waiting=s.waiting,
                    failed=s.failed,
                    left=max(s.entered - moved_on - s.waiting - s.failed, 0),
                    previous=previous,
                    conversions=goal[0] if goal else None,
                    revenue=goal[1] if goal else None,
                )
            )
            if len(node_ports) <= 1:
                if not leading:
                    return
                key, previous = targets[(key, leading[0][0])], s.entered
                continue
            # A branch (or a goal / a wait with two ways out): one path per port.
            for port, label in node_ports:
                took = ports.get((key, port), 0)
                if goal is not None and port == "converted":
                    # A goal met while the journey exits on it finishes there, by no port.
                    took = max(took, goal[0])
                target = targets.get((key, port))
                rows.append(
                    FunnelRow(
                        key=key,
                        label=label,
                        kind="",
                        category="path",
                        depth=depth + 1,
                        reached=took,
                        previous=s.entered,
                        port=port,
                        ends=target is None,
                    )
                )
                if target is not None:
                    walk(target, depth + 1, took)
            return

    walk(trigger.key, 0, None)
    return rows


def journey_funnel(*, tenant: Tenant, journey: Journey) -> Funnel:
    """The funnel of `journey` (Http404 for another team's): the published version's graph
    (else the newest version's) walked with its counts. Eight queries (the totals, the version,
    its graph's two, node_stats' two, the ports taken, the goals met), whatever its size."""
    totals = journey_selectors.journey_totals(tenant=tenant, journey=journey)
    version = _version(journey)
    if version is None:
        return Funnel(journey=journey, version=None, rows=[], totals=totals)
    graph = journey_selectors.version_graph(tenant=tenant, version=version)
    rows = funnel_rows(
        graph=graph,
        stats=journey_selectors.node_stats(tenant=tenant, journey=journey),
        ports=_port_counts(journey),
        goals=_goal_counts(journey),
    )
    return Funnel(
        journey=journey,
        version=version,
        rows=rows,
        totals=totals,
        steps=sum(1 for r in rows if not r.is_path and not r.joins),
    )


# --- the bar funnel (SVG geometry; the template draws it) -------------------------------------

CHART_WIDTH = 420
ROW_HEIGHT = 40
INDENT = 18
BAR_HEIGHT = 14
NUMBER_ROOM = 64  # right of the longest bar, for its number


@dataclass(frozen=True)
class FunnelBar:
    y: int  # the row's top
    x: int
    width: float
    label: str
    number: str
    text_y: int
    bar_y: int
    number_x: float
    category: str
    title: str
    bar_height: int = BAR_HEIGHT

    @property
    def number_y(self) -> int:
        return self.bar_y + 11


@dataclass(frozen=True)
class FunnelChart:
    width: int
    height: int
    bars: list[FunnelBar] = field(default_factory=list)
    summary: str = ""


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def funnel_chart(funnel: Funnel) -> FunnelChart:
    """One bar per row (path rows as thin bars), as long as its count against the trigger's,
    indented per branch; the label above the bar, the number at its end."""
    top = funnel.top or 1
    bars = []
    for i, row in enumerate(funnel.rows):
        y = i * ROW_HEIGHT
        x = row.depth * INDENT
        room = CHART_WIDTH - x - NUMBER_ROOM
        width = round(room * row.reached / top, 1) if row.reached else 0.0
        if row.joins:
            label, number = f"↩ continues at “{_short(row.label, 30)}”", ""
            title = f"This path continues at “{row.label}”, shown above."
        elif row.is_path:
            label = f"{row.label} path{' (ends there)' if row.ends else ''}"
            number = f"{row.reached:,}"
            title = f"{row.reached:,} took the “{row.label}” path"
        else:
            label, number = _short(row.label, 48 - 2 * row.depth), f"{row.reached:,}"
            title = f"{row.label}: {row.reached:,} reached"
            if row.drop_off:
                title += f", {row.drop_off:,} dropped off before it"
        bars.append(
            FunnelBar(
                y=y,
                x=x,
                width=max(width, 2.0) if row.reached else 0.0,
                label=label,
                number=number,
                text_y=y + 14,
                bar_y=y + 20,
                number_x=x + max(width, 2.0) + 6,
                category=row.category or "step",
                title=title,
                bar_height=6 if row.is_path else BAR_HEIGHT,
            )
        )
    first = funnel.rows[0].reached if funnel.rows else 0
    return FunnelChart(
        width=CHART_WIDTH,
        height=max(len(funnel.rows) * ROW_HEIGHT, ROW_HEIGHT),
        bars=bars,
        summary=(
            f"{first:,} entered; {funnel.totals.get('conversions', 0):,} converted"
            f" over {funnel.steps} steps"
        ),
    )
