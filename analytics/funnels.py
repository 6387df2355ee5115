"""A journey's funnel: node by node from the trigger along its published version's graph, how
many reached each step, moved on, are waiting there, left the journey there or failed, and the
conversions and revenue of each goal.

    journey_funnel(*, tenant, journey) -> Funnel     five queries, whatever the journey's size
    journey_list_rows(*, tenant) -> [JourneyListRow] the list's figures, three queries
    funnel_chart(funnel) -> FunnelChart              the bar funnel's geometry (pure)

How it counts. Most journeys are trees: branches whose paths never join again, no loop. Then
where each enrollment stands now (its node and state, one GROUP BY on the enrollments' index)
says every step it passed: the one path from the trigger to its node. A step's "reached" is
everyone standing at it or anywhere below it, a branch path's takers its first step's reached:
the usual "furthest step reached" funnel, at the cost of one index read whatever the number of
enrollments or steps. A journey whose paths join or loop is counted from the steps logged
instead (journeys.selectors.node_stats: distinct enrollments with a step at each node, plus the
port each left by), which reads every step of the journey. Conversions and revenue are
journey_totals'; with several goals, each conversion is counted under the goal its step names.
Enrollments standing on a step the walked version does not have (finished on an older version
whose step was removed) are counted apart ("elsewhere").

Reading a row:

    reached   enrollments that reached the step (standing at it or beyond it; or, counted from
              the steps, with any step logged there: node_stats.entered)
    moved_on  of those, who went on to another step
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
    unknown: bool = False  # a path row whose takers cannot be told apart from another's
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
    elsewhere: int = 0  # enrollments standing on steps this version does not have
    counted_by: str = "standing"  # or "steps" (paths that join or loop)

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


@dataclass(frozen=True)
class Figures:
    """One step's counts, however they were counted."""

    reached: int = 0
    waiting: int = 0
    failed: int = 0
    left: int = 0

    @property
    def moved_on(self) -> int:
        return max(self.reached - self.waiting - self.failed - self.left, 0)


NO_FIGURES = Figures()


def is_tree(graph: Graph) -> bool:
    """Whether every step is reached from the trigger by one path only (no two ways into a
    step, no loop): then where each enrollment stands says every step it passed."""
    trigger = next((n.key for n in graph.nodes if n.kind.startswith("trigger_")), None)
    if trigger is None:
        return False
    into: dict[str, int] = {}
    for e in graph.edges:
        into[e.target] = into.get(e.target, 0) + 1
    return into.get(trigger, 0) == 0 and all(n == 1 for n in into.values())


def tree_figures(
    *, graph: Graph, standing: dict[str, dict[str, int]]
) -> tuple[dict[str, Figures], dict[tuple[str, str], int | None], int]:
    """Figures of a tree-shaped graph from where enrollments stand ({node key: {state: n}}):
    a step's reached is everyone standing at it or anywhere below it; a port's takers are its
    target's reached. Also the enrollments standing on keys the graph does not have."""
    children: dict[str, list[tuple[str, str]]] = {}
    for e in graph.edges:
        children.setdefault(e.source, []).append((e.port, e.target))
    below: dict[str, int] = {}

    def reached(key: str) -> int:
        if key not in below:
            here = sum(standing.get(key, {}).values())
            below[key] = here + sum(reached(t) for _, t in children.get(key, []))
        return below[key]

    figures: dict[str, Figures] = {}
    ports: dict[tuple[str, str], int | None] = {}
    for node in graph.nodes:
        at = standing.get(node.key, {})
        figures[node.key] = Figures(
            reached=reached(node.key),
            waiting=at.get("active", 0) + at.get("waiting", 0),
            failed=at.get("failed", 0),
            left=at.get("completed", 0) + at.get("converted", 0) + at.get("exited", 0),
        )
        names = [p for p, _ in _ports(node)]
        leading = {p for p, _ in children.get(node.key, [])}
        ending = [p for p in names if p not in leading]
        for port, target in children.get(node.key, []):
            ports[(node.key, port)] = reached(target)
        if node.kind == "goal":
            # Met the goal and finished there, or ran out of time with nowhere to go.
            ports.setdefault((node.key, "converted"), at.get("converted", 0))
            ports.setdefault((node.key, "timeout"), at.get("completed", 0))
        elif len(ending) == 1:
            ports[(node.key, ending[0])] = at.get("completed", 0)  # the one way out to nowhere
        else:
            for port in ending:
                ports[(node.key, port)] = None  # several ways to nowhere: not told apart
    known = {n.key for n in graph.nodes}
    elsewhere = sum(sum(v.values()) for k, v in standing.items() if k not in known)
    return figures, ports, elsewhere


def step_figures(
    *,
    graph: Graph,
    stats: dict[str, journey_selectors.NodeStats],
    ports: dict[tuple[str, str], int],
) -> tuple[dict[str, Figures], dict[tuple[str, str], int | None]]:
    """Figures of any graph from the steps logged (node_stats, and the ports taken): for paths
    that join or loop, where standing alone cannot say which way people came."""
    targets = {(e.source, e.port) for e in graph.edges}
    figures = {}
    for node in graph.nodes:
        s = stats.get(node.key, journey_selectors.EMPTY_STATS)
        moved = sum(
            ports.get((node.key, p), 0) for p, _ in _ports(node) if (node.key, p) in targets
        )
        figures[node.key] = Figures(
            reached=s.entered,
            waiting=s.waiting,
            failed=s.failed,
            left=max(s.entered - moved - s.waiting - s.failed, 0),
        )
    return figures, dict(ports)


def funnel_rows(
    *,
    graph: Graph,
    figures: dict[str, Figures],
    ports: dict[tuple[str, str], int | None],
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
            f = figures.get(key, NO_FIGURES)
            node_ports = _ports(node)
            leading = [(p, label) for p, label in node_ports if (key, p) in targets]
            goal = goals.get(key, (0, Decimal("0.00"))) if node.kind == "goal" else None
            rows.append(
                FunnelRow(
                    key=key,
                    label=_label(node),
                    kind=node.kind,
                    category=_category(node),
                    depth=depth,
                    reached=f.reached,
                    moved_on=f.moved_on,
                    waiting=f.waiting,
                    failed=f.failed,
                    left=f.left,
                    previous=previous,
                    conversions=goal[0] if goal else None,
                    revenue=goal[1] if goal else None,
                )
            )
            if len(node_ports) <= 1:
                if not leading:
                    return
                key, previous = targets[(key, leading[0][0])], f.reached
                continue
            # A branch (or a goal / a wait with two ways out): one path per port.
            for port, label in node_ports:
                took = ports.get((key, port), 0)
                if goal is not None and port == "converted" and took is not None:
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
                        reached=took or 0,
                        unknown=took is None,
                        previous=f.reached,
                        port=port,
                        ends=target is None,
                    )
                )
                if target is not None:
                    walk(target, depth + 1, took)
            return

    walk(trigger.key, 0, None)
    return rows


def _standing(journey: Journey) -> dict[str, dict[str, int]]:
    """{node key: {state: enrollments}}: where the journey's enrollments stand, one GROUP BY
    served by the (tenant, version, node key, state) index."""
    versions = JourneyVersion.objects.filter(tenant_id=journey.tenant_id, journey=journey)
    rows = (
        Enrollment.objects.filter(tenant_id=journey.tenant_id, version_id__in=versions.values("pk"))
        .order_by()
        .values("node_key", "state")
        .annotate(n=Count("*"))  # not the id: the index alone answers
    )
    standing: dict[str, dict[str, int]] = {}
    for r in rows:
        standing.setdefault(r["node_key"], {})[r["state"]] = r["n"]
    return standing


def _totals(journey: Journey, standing: dict[str, dict[str, int]]) -> dict[str, Any]:
    """journey_totals' figures with the enrolled and open counts taken from where enrollments
    stand (read already), so only the converted enrollments are read: a converted enrollment
    always has `converted_at` (journeys' conversion_record sets it before any state), which
    the conversions' partial index finds."""
    found = Enrollment.objects.filter(
        tenant_id=journey.tenant_id, journey=journey, converted_at__isnull=False
    ).aggregate(conversions=Count("*"), revenue=Sum("revenue"))
    return {
        "enrolled": sum(n for states in standing.values() for n in states.values()),
        "open": sum(
            states.get(s, 0) for states in standing.values() for s in ("active", "waiting")
        ),
        "conversions": found["conversions"],
        "revenue": Decimal(found["revenue"] or 0).quantize(CENT),
    }


@dataclass(frozen=True)
class JourneyListRow:
    """A line of the funnels' list: a journey, its live version's number, who is in it now and
    its conversions (journeys.selectors.journey_list's figures)."""

    journey: Journey
    live_number: int | None
    open_enrollments: int
    conversions: int


def journey_list_rows(*, tenant: Tenant) -> list[JourneyListRow]:
    """The team's journeys (archived ones aside) by name, with journey_list's figures in three
    queries whatever the number of journeys or enrollments: the journeys with their live
    version, then one GROUP BY journey of the open enrollments (the index of open enrollments,
    (tenant, journey, contact) WHERE state is active or waiting, answers it alone) and one of the
    converted ones (their (tenant, journey) partial index: a converted enrollment always has
    `converted_at`). No per-journey subquery counting over every enrollment of the journey."""
    live = JourneyVersion.objects.filter(
        tenant=tenant, journey=OuterRef("pk"), state=JourneyVersion.State.PUBLISHED
    ).order_by("-number")
    journeys = list(
        Journey.objects.filter(tenant=tenant)
        .exclude(status=Journey.Status.ARCHIVED)
        .annotate(live=Subquery(live.values("number")[:1]))
        .order_by("name", "pk")
    )
    ids = [j.pk for j in journeys]
    open_counts = dict(
        Enrollment.objects.filter(
            tenant=tenant, journey_id__in=ids, state__in=journey_selectors.OPEN_STATES
        )
        .order_by()
        .values("journey_id")
        .annotate(n=Count("*"))  # not the id: the index alone answers
        .values_list("journey_id", "n")
    )
    converted = dict(
        Enrollment.objects.filter(tenant=tenant, journey_id__in=ids, converted_at__isnull=False)
        .order_by()
        .values("journey_id")
        .annotate(n=Count("*"))
        .values_list("journey_id", "n")
    )
    return [
        JourneyListRow(
            journey=j,
            live_number=j.live,
            open_enrollments=open_counts.get(j.pk, 0),
            conversions=converted.get(j.pk, 0),
        )
        for j in journeys
    ]


def journey_funnel(*, tenant: Tenant, journey: Journey) -> Funnel:
    """The funnel of `journey` (Http404 for another team's): the published version's graph
    (else the newest version's) walked with its counts. A tree-shaped journey (the usual:
    branches whose paths do not join again) is counted from where its enrollments stand: five
    queries (the version, its graph's two, where enrollments stand, the conversions), none of
    which reads every enrollment or step. Paths that join or
    loop are counted from the steps logged instead (node_stats): three queries more, each
    reading every step of the journey. A journey with several goals reads the steps once more,
    to tell which goal each conversion met."""
    version = _version(journey)
    if version is None:
        totals = journey_selectors.journey_totals(tenant=tenant, journey=journey)
        return Funnel(journey=journey, version=None, rows=[], totals=totals)
    graph = journey_selectors.version_graph(tenant=tenant, version=version)
    tree = is_tree(graph)
    standing = _standing(journey) if tree else {}
    totals = (
        _totals(journey, standing)
        if tree
        else journey_selectors.journey_totals(tenant=tenant, journey=journey)
    )
    goal_keys = [n.key for n in graph.nodes if n.kind == "goal"]
    if len(goal_keys) == 1:
        goals = {goal_keys[0]: (totals["conversions"], Decimal(totals["revenue"]).quantize(CENT))}
    else:
        goals = _goal_counts(journey) if goal_keys else {}
    elsewhere = 0
    if tree:
        figures, ports, elsewhere = tree_figures(graph=graph, standing=standing)
    else:
        figures, ports = step_figures(
            graph=graph,
            stats=journey_selectors.node_stats(tenant=tenant, journey=journey),
            ports=_port_counts(journey),
        )
    rows = funnel_rows(graph=graph, figures=figures, ports=ports, goals=goals)
    return Funnel(
        journey=journey,
        version=version,
        rows=rows,
        totals=totals,
        steps=sum(1 for r in rows if not r.is_path and not r.joins),
        elsewhere=elsewhere,
        counted_by="standing" if tree else "steps",
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
