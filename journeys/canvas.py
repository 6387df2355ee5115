"""What the journey editor's canvas draws, computed on the server: cards at their (x, y) (the
graph's layout where a step has no position of its own), their ports, the SVG edges between
them, the palette of step kinds and the choices a step's settings form offers. Plain values
for the templates; journeys/views.py renders them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from audience.selectors import event_names_recent
from journeys import forms, graph, selectors
from journeys.node_kinds import Category, NodeKind, is_registered
from journeys.node_kinds import get as kind_get
from journeys.node_kinds import kinds as all_kinds
from messaging.models import Channel
from messaging.selectors import template_list
from segments.selectors import segment_names

COUNT_NAMES = ("entered", "waiting", "completed", "converted", "failed")
COUNT_LABELS = {
    "entered": "entered",
    "waiting": "waiting",
    "completed": "done",
    "converted": "converted",
    "failed": "failed",
}
CATEGORY_ICONS = {
    Category.TRIGGER: "⚡",
    Category.WAIT: "⏱",
    Category.BRANCH: "⑂",
    Category.ACTION: "✉",
    Category.GOAL: "★",
    Category.EXIT: "⏹",
}


@dataclass
class PortView:
    name: str
    label: str  # "" for a kind's single "next" port: nothing to tell apart
    x: int  # the anchor on the card's bottom edge, canvas pixels
    y: int
    ox: int  # the anchor's offset from the card's left edge
    target: str = ""
    target_title: str = ""


@dataclass
class CardView:
    key: str
    kind: str
    kind_label: str
    category: str
    category_label: str
    icon: str
    title: str
    summary: str
    x: int
    y: int
    ports: list[PortView]
    stats: selectors.NodeStats
    problems: list[graph.Problem] = field(default_factory=list)
    selected: bool = False
    incoming: int = 0

    @property
    def counts(self) -> list[tuple[str, str, int]]:
        return [(name, COUNT_LABELS[name], getattr(self.stats, name)) for name in COUNT_NAMES]

    @property
    def problem_text(self) -> str:
        return " ".join(p.message for p in self.problems)


@dataclass
class EdgeView:
    source: str
    port: str
    target: str
    d: str


@dataclass
class Canvas:
    cards: list[CardView]
    edges: list[EdgeView]
    width: int
    height: int
    problems: list[graph.Problem]
    journey_problems: list[graph.Problem]  # not about one step
    has_trigger: bool

    def card(self, key: str) -> CardView | None:
        return next((c for c in self.cards if c.key == key), None)


def node_title(node: graph.GraphNode, kind: NodeKind | None) -> str:
    if node.label:
        return node.label
    return kind.label if kind is not None else node.kind


def _summary(node: graph.GraphNode, kind: NodeKind | None, template_names: dict[str, str]) -> str:
    if kind is None:
        return "This kind of step no longer exists."
    try:
        text = kind.describe(node.settings)
    except Exception:  # unfinished settings: the card says what is missing instead
        text = kind.label
    template = template_names.get(str(node.settings.get("template", "")))
    if text == kind.label and template:  # "Send an email" says less than its template's name
        return f"“{template}”"
    return text


def _edge_path(sx: int, sy: int, tx: int, ty: int) -> str:
    """A cubic from a port (leaving downwards) to the top of the target card."""
    # Back up to an earlier row (a loop): swing out further.
    bend = max(30, (ty - sy) // 2) if ty > sy else 90 + min(200, (sy - ty) // 3)
    return f"M{sx},{sy} C{sx},{sy + bend} {tx},{ty - bend} {tx},{ty - 6}"


def canvas_build(
    g: graph.Graph,
    *,
    stats: dict[str, selectors.NodeStats],
    selected: str = "",
    template_names: dict[str, str] | None = None,
) -> Canvas:
    problems = graph.validate(g)
    where = graph.positions(g)
    by_key = {n.key: n for n in g.nodes}
    edges_by_port = {(e.source, e.port): e.target for e in g.edges}
    cards: list[CardView] = []
    for node in g.nodes:
        kind = kind_get(node.kind) if is_registered(node.kind) else None
        x, y = where[node.key]
        names = graph.node_ports(node)
        ports = []
        for i, name in enumerate(names):
            target = edges_by_port.get((node.key, name), "")
            target_node = by_key.get(target)
            label = kind.port_label(name, node.settings) if kind is not None else name
            if len(names) == 1 and name == "next":
                label = ""
            # Ports spread over the card's whole width (centres of n equal slices), so that
            # two labels such as "Converted" and "Not converted" do not overlap.
            ox = round(graph.CARD_WIDTH * (i + 0.5) / len(names))
            ports.append(
                PortView(
                    name=name,
                    label=label,
                    x=x + ox,
                    y=y + graph.CARD_HEIGHT,
                    ox=ox,
                    target=target,
                    target_title=node_title(target_node, kind_or_none(target_node.kind))
                    if target_node
                    else "",
                )
            )
        cards.append(
            CardView(
                key=node.key,
                kind=node.kind,
                kind_label=kind.label if kind is not None else node.kind,
                category=kind.category if kind is not None else "",
                category_label=Category.LABELS.get(kind.category, "") if kind else "",
                icon=CATEGORY_ICONS.get(kind.category, "•") if kind else "•",
                title=node_title(node, kind),
                summary=_summary(node, kind, template_names or {}),
                x=x,
                y=y,
                ports=ports,
                stats=stats.get(node.key, selectors.EMPTY_STATS),
                problems=[p for p in problems if p.node_key == node.key],
                selected=node.key == selected,
            )
        )
    edges = []
    for e in g.edges:
        source, end = next((c for c in cards if c.key == e.source), None), where.get(e.target)
        port = next((p for p in source.ports if p.name == e.port), None) if source else None
        if port is None or end is None:
            continue
        tx = end[0] + graph.CARD_WIDTH // 2
        edges.append(EdgeView(e.source, e.port, e.target, _edge_path(port.x, port.y, tx, end[1])))
        target_card = next((c for c in cards if c.key == e.target), None)
        if target_card is not None:
            target_card.incoming += 1
    right = max((c.x for c in cards), default=0) + graph.CARD_WIDTH + graph.MARGIN
    bottom = max((c.y for c in cards), default=0) + graph.CARD_HEIGHT + graph.GAP_Y + graph.MARGIN
    return Canvas(
        cards=cards,
        edges=edges,
        width=max(right, 600),
        height=max(bottom, 400),
        problems=problems,
        journey_problems=[p for p in problems if not p.node_key],
        has_trigger=g.trigger() is not None,
    )


def kind_or_none(key: str) -> NodeKind | None:
    return kind_get(key) if is_registered(key) else None


def palette() -> list[tuple[str, str, list[NodeKind]]]:
    """The kinds by category, in the registry's order: (category, label, kinds)."""
    groups: list[tuple[str, str, list[NodeKind]]] = []
    for kind in all_kinds():
        if not groups or groups[-1][0] != kind.category:
            groups.append((kind.category, Category.LABELS[kind.category], []))
        groups[-1][2].append(kind)
    return groups


def event_names(tenant: Any) -> list[str]:
    """Event names to suggest: the tenant's recent ones, then the e-commerce spec's."""
    names = dict.fromkeys(event_names_recent(tenant=tenant))
    names.update(dict.fromkeys(forms.EVENT_SUGGESTIONS))
    return list(names)


def setting_choices(tenant: Any) -> forms.Choices:
    return forms.Choices(
        email_templates=[
            (str(t.public_id), t.name) for t in template_list(tenant=tenant, channel=Channel.EMAIL)
        ],
        push_templates=[
            (str(t.public_id), t.name) for t in template_list(tenant=tenant, channel=Channel.PUSH)
        ],
        segments=sorted(segment_names(tenant=tenant).items(), key=lambda kv: kv[1].lower()),
        events=event_names(tenant),
    )
