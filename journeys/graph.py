"""A journey's graph as a plain value, and the pure rules over it (DESIGN §6). No ORM here.

    Graph(nodes=[GraphNode(key, kind, settings, label, x, y)], edges=[GraphEdge(source, port,
    target)])

    graph_from_json(data) -> Graph      the API's and presets' JSON; GraphError(path, message)
    graph_to_json(graph) -> dict        {"nodes": [{key, kind, label, settings, x, y}],
                                         "edges": [{source, port, target}]}
    validate(graph) -> list[Problem]    every rule a published graph must meet; [] = publishable
    layout(graph) -> {key: (x, y)}      a deterministic layered layout (top-left of each card)
    positions(graph) -> {key: (x, y)}   each node's own x/y where it has both, else layout's
    new_key(existing) -> "n7"           a key not in `existing`
    summary(graph) -> GraphSummary      what publishing denormalises onto the version

`graph_from_json` refuses what cannot be stored (wrong types, a key used twice, two edges on one
port); `validate` reports what cannot be *published*, as Problems a marketer can act on, each
naming the step at fault (`node_key`, "" for the journey as a whole) and, where it helps, the
`field`: a settings field key, "port:<name>" for the connection leaving that port, or "".

The rules: exactly one trigger, with nothing leading into it; each port at most one edge; an
edge leaves by one of its source kind's ports (for its settings) and reaches an existing step
that is not a trigger; no step connects to itself; every step is reachable from the trigger;
every cycle passes a step that waits (`NodeKind.waits`); every step's settings pass its kind's
`validate`; every kind is a registered one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from journeys import node_kinds
from journeys.node_kinds import Category, NodeKind, NodeSettingsError

KEY_MAX = 40  # Node.key / Edge.source / Edge.target / Edge.port lengths
LABEL_MAX = 120

# The editor's card, in canvas pixels, and the gaps the layout leaves between cards.
CARD_WIDTH = 240
CARD_HEIGHT = 96
GAP_X = 60
GAP_Y = 72
MARGIN = 40


class GraphError(ValueError):
    """Graph JSON that cannot be read: `path` says where ("nodes[2].key")."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path, self.message = path, message


@dataclass(frozen=True)
class GraphNode:
    key: str
    kind: str
    settings: dict[str, Any] = field(default_factory=dict)
    label: str = ""
    x: int | None = None
    y: int | None = None


@dataclass(frozen=True)
class GraphEdge:
    source: str
    port: str
    target: str


@dataclass
class Graph:
    nodes: list[GraphNode] = field(default_factory=list)
    edges: list[GraphEdge] = field(default_factory=list)

    def node(self, key: str) -> GraphNode | None:
        return next((n for n in self.nodes if n.key == key), None)

    def node_keys(self) -> list[str]:
        return [n.key for n in self.nodes]

    def trigger(self) -> GraphNode | None:
        """The first trigger node, if any (a valid graph has exactly one)."""
        return next((n for n in self.nodes if _category(n.kind) == Category.TRIGGER), None)


@dataclass(frozen=True)
class Problem:
    node_key: str  # "" for the journey as a whole
    field: str  # a settings field, "port:<name>", or ""
    message: str


@dataclass(frozen=True)
class GraphSummary:
    trigger_kind: str
    trigger_event: str
    goal_events: list[str]


# --- JSON ------------------------------------------------------------------------------------


def _text(value: object, path: str, *, required: bool = True, limit: int = KEY_MAX) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise GraphError(path, "must be a string.")
    if required and not value.strip():
        raise GraphError(path, "must not be empty.")
    if len(value) > limit:
        raise GraphError(path, f"must be at most {limit} characters.")
    return value


COORDINATE_MAX = 1_000_000  # a step's x and y, in canvas pixels
KEY_RE = re.compile(r"[A-Za-z0-9_-]{1,40}")  # a step's key: it is part of the editor's URLs


def _coordinate(value: object, path: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise GraphError(path, "must be a number or null.")
    if not -COORDINATE_MAX <= value <= COORDINATE_MAX:
        raise GraphError(path, "is out of range.")
    return int(value)


def graph_from_json(data: object) -> Graph:
    """The Graph in `data` ({"nodes": [...], "edges": [...]}), or GraphError naming the path of
    the first thing wrong with it. Checks shape and what storage needs (unique keys, one edge
    per port); the publishing rules are `validate`'s."""
    if not isinstance(data, Mapping):
        raise GraphError("", "The graph must be an object with “nodes” and “edges”.")
    raw_nodes, raw_edges = data.get("nodes"), data.get("edges", [])
    if not isinstance(raw_nodes, list):
        raise GraphError("nodes", "must be a list.")
    if not isinstance(raw_edges, list):
        raise GraphError("edges", "must be a list.")
    nodes: list[GraphNode] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_nodes):
        path = f"nodes[{i}]"
        if not isinstance(raw, Mapping):
            raise GraphError(path, "must be an object.")
        key = _text(raw.get("key"), f"{path}.key").strip()
        if not KEY_RE.fullmatch(key):
            raise GraphError(
                f"{path}.key", "must be 1 to 40 letters, digits, “-” or “_” (it is part of URLs)."
            )
        if key in seen:
            raise GraphError(f"{path}.key", f"“{key}” is used by another step.")
        seen.add(key)
        settings = raw.get("settings", {})
        if settings is None:
            settings = {}
        if not isinstance(settings, Mapping):
            raise GraphError(f"{path}.settings", "must be an object.")
        nodes.append(
            GraphNode(
                key=key,
                kind=_text(raw.get("kind"), f"{path}.kind").strip(),
                settings=dict(settings),
                label=_text(raw.get("label"), f"{path}.label", required=False, limit=LABEL_MAX),
                x=_coordinate(raw.get("x"), f"{path}.x"),
                y=_coordinate(raw.get("y"), f"{path}.y"),
            )
        )
    edges: list[GraphEdge] = []
    ports: set[tuple[str, str]] = set()
    for i, raw in enumerate(raw_edges):
        path = f"edges[{i}]"
        if not isinstance(raw, Mapping):
            raise GraphError(path, "must be an object.")
        edge = GraphEdge(
            source=_text(raw.get("source"), f"{path}.source").strip(),
            port=_text(raw.get("port"), f"{path}.port").strip(),
            target=_text(raw.get("target"), f"{path}.target").strip(),
        )
        if (edge.source, edge.port) in ports:
            raise GraphError(
                f"{path}.port", f"“{edge.source}” already has a connection on “{edge.port}”."
            )
        ports.add((edge.source, edge.port))
        edges.append(edge)
    return Graph(nodes=nodes, edges=edges)


def graph_to_json(graph: Graph) -> dict[str, Any]:
    return {
        "nodes": [
            {
                "key": n.key,
                "kind": n.kind,
                "label": n.label,
                "settings": n.settings,
                "x": n.x,
                "y": n.y,
            }
            for n in graph.nodes
        ],
        "edges": [{"source": e.source, "port": e.port, "target": e.target} for e in graph.edges],
    }


# --- rules -----------------------------------------------------------------------------------


def _kind(key: str) -> NodeKind | None:
    return node_kinds._KINDS.get(key)


def _category(kind: str) -> str:
    k = _kind(kind)
    return k.category if k is not None else ""


def _waits(kind: str) -> bool:
    k = _kind(kind)
    return bool(k is not None and k.waits)


def node_ports(node: GraphNode) -> list[str]:
    """The ports `node` can leave by, in the kind's order ([] for an unknown kind)."""
    k = _kind(node.kind)
    if k is None:
        return []
    try:
        return list(k.ports(node.settings))
    except Exception:  # settings too broken to count the ports: validate reports them
        return []


def validate(graph: Graph) -> list[Problem]:
    """Every reason `graph` cannot be published, in a stable order: [] when it can."""
    problems: list[Problem] = []
    by_key = {n.key: n for n in graph.nodes}

    # Kinds and settings.
    for n in graph.nodes:
        kind = _kind(n.kind)
        if kind is None:
            problems.append(Problem(n.key, "", f"This kind of step doesn't exist (“{n.kind}”)."))
            continue
        try:
            kind.validate(n.settings)
        except NodeSettingsError as exc:
            for name, message in exc.errors.items():
                problems.append(Problem(n.key, name, message))

    # One trigger.
    triggers = [n for n in graph.nodes if _category(n.kind) == Category.TRIGGER]
    if not triggers:
        problems.append(
            Problem("", "", "The journey needs a trigger: a first step saying who enters.")
        )
    for extra in triggers[1:]:
        problems.append(
            Problem(extra.key, "", "A journey has one trigger; remove this one or the other.")
        )

    # Edges.
    used: set[tuple[str, str]] = set()
    for e in graph.edges:
        source = by_key.get(e.source)
        if source is not None and (e.source, e.port) in used:
            problems.append(
                Problem(e.source, f"port:{e.port}", "This path leads to two steps; keep one.")
            )
        used.add((e.source, e.port))
        if source is None:
            problems.append(
                Problem("", "", f"A connection starts at a step that doesn't exist (“{e.source}”).")
            )
            continue
        where = f"port:{e.port}"
        if _kind(source.kind) is not None and e.port not in node_ports(source):
            problems.append(
                Problem(source.key, where, f"This step has no “{e.port}” path to connect.")
            )
        if e.target == e.source:
            problems.append(Problem(source.key, where, "A step can't lead to itself."))
            continue
        target = by_key.get(e.target)
        if target is None:
            problems.append(
                Problem(source.key, where, "This path leads to a step that doesn't exist.")
            )
        elif _category(target.kind) == Category.TRIGGER:
            problems.append(
                Problem(source.key, where, "This path leads back into the trigger; it can't.")
            )

    # Reachability from the trigger(s); a graph without one has said so already.
    if triggers:
        reached = reachable(graph, [t.key for t in triggers])
        for n in graph.nodes:
            if n.key not in reached:
                problems.append(Problem(n.key, "", "This step can't be reached from the trigger."))

    # Cycles with no wait in them.
    looping = instant_cycle_nodes(graph)
    for n in graph.nodes:
        if n.key in looping:
            problems.append(
                Problem(
                    n.key,
                    "",
                    "This step is in a loop with no wait: people would go round it without end."
                    " Add a wait to the loop.",
                )
            )
    return problems


def _successors(graph: Graph) -> dict[str, list[str]]:
    """Key → targets of its edges (between existing steps, no self-edges), in port order."""
    keys = {n.key for n in graph.nodes}
    order = {n.key: node_ports(n) for n in graph.nodes}
    out: dict[str, list[tuple[tuple[int, str], str]]] = {k: [] for k in keys}
    for e in graph.edges:
        if e.source in keys and e.target in keys and e.source != e.target:
            ports = order[e.source]
            rank = (ports.index(e.port), "") if e.port in ports else (len(ports), e.port)
            out[e.source].append((rank, e.target))
    return {k: [t for _, t in sorted(v)] for k, v in out.items()}


def reachable(graph: Graph, starts: Iterable[str]) -> set[str]:
    succ = _successors(graph)
    seen: set[str] = set()
    stack = [s for s in starts if s in succ]
    while stack:
        key = stack.pop()
        if key in seen:
            continue
        seen.add(key)
        stack.extend(succ[key])
    return seen


def instant_cycle_nodes(graph: Graph) -> set[str]:
    """Keys of the steps on a cycle none of whose steps waits (self-edges are a rule of their
    own). Such a cycle is a strongly connected component of more than one step in the graph
    of non-waiting steps (Tarjan's algorithm, iterative)."""
    waiting = {n.key for n in graph.nodes if _waits(n.kind)}
    succ = {
        k: [t for t in targets if t not in waiting]
        for k, targets in _successors(graph).items()
        if k not in waiting
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: set[str] = set()
    counter = 0
    for root in succ:
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            key, i = work.pop()
            if i == 0:
                index[key] = low[key] = counter
                counter += 1
                stack.append(key)
                on_stack.add(key)
            targets = succ[key]
            if i < len(targets):
                work.append((key, i + 1))
                t = targets[i]
                if t not in index:
                    work.append((t, 0))
                elif t in on_stack:
                    low[key] = min(low[key], index[t])
                continue
            if low[key] == index[key]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == key:
                        break
                if len(component) > 1:
                    found.update(component)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[key])
    return found


# --- layout ----------------------------------------------------------------------------------


def layout(graph: Graph) -> dict[str, tuple[int, int]]:
    """Top-left (x, y) of every node's card: the trigger on top, each row one step further by
    the longest path from the trigger (back edges of loops ignored), children spread under
    their parent in port order. Steps the trigger doesn't reach start trees of their own to
    the right. Cards never overlap: each node owns a band of columns its subtree shares out."""
    succ = _successors(graph)
    trigger = graph.trigger()
    roots = ([trigger.key] if trigger else []) + [n.key for n in graph.nodes]

    # A depth-first walk in port order: its tree gives each node one parent, and the edges to a
    # node still on the walk's path are the loops' back edges.
    children: dict[str, list[str]] = {k: [] for k in succ}
    back: set[tuple[str, str]] = set()
    top_roots: list[str] = []
    seen: set[str] = set()
    for root in roots:
        if root in seen:
            continue
        top_roots.append(root)
        seen.add(root)
        path: set[str] = {root}
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            key, i = work.pop()
            if i < len(succ[key]):
                work.append((key, i + 1))
                t = succ[key][i]
                if t in path:
                    back.add((key, t))
                elif t not in seen:
                    seen.add(t)
                    children[key].append(t)
                    path.add(t)
                    work.append((t, 0))
            else:
                path.discard(key)

    # The trigger stays on top even when something (wrongly) leads into it.
    if trigger is not None:
        back.update((k, trigger.key) for k, targets in succ.items() if trigger.key in targets)
    # Rows: longest path over the edges that are not back edges (a DAG), in topological order.
    indegree = dict.fromkeys(succ, 0)
    for k, targets in succ.items():
        for t in targets:
            if (k, t) not in back:
                indegree[t] += 1
    depth = dict.fromkeys(succ, 0)
    ready = [k for k in graph.node_keys() if indegree[k] == 0]
    while ready:
        k = ready.pop(0)
        for t in succ[k]:
            if (k, t) in back:
                continue
            depth[t] = max(depth[t], depth[k] + 1)
            indegree[t] -= 1
            if indegree[t] == 0:
                ready.append(t)

    # Columns: a subtree is as wide as its children's together (at least one column); a node
    # sits over the middle of its band.
    width: dict[str, int] = {}
    for key in reversed(_preorder(top_roots, children)):
        width[key] = max(1, sum(width[c] for c in children[key]))
    centre: dict[str, float] = {}
    left = 0
    for root in top_roots:
        stack = [(root, left)]
        while stack:
            key, start = stack.pop()
            centre[key] = start + width[key] / 2
            offset = start
            for c in children[key]:
                stack.append((c, offset))
                offset += width[c]
        left += width[root]

    step_x, step_y = CARD_WIDTH + GAP_X, CARD_HEIGHT + GAP_Y
    return {
        k: (MARGIN + round((centre[k] - 0.5) * step_x), MARGIN + depth[k] * step_y)
        for k in graph.node_keys()
    }


def _preorder(roots: list[str], children: Mapping[str, list[str]]) -> list[str]:
    order: list[str] = []
    stack = list(reversed(roots))
    while stack:
        key = stack.pop()
        order.append(key)
        stack.extend(reversed(children[key]))
    return order


def positions(graph: Graph) -> dict[str, tuple[int, int]]:
    """Where to draw each card: its own x/y when it has both (dragged there), else layout's."""
    computed = layout(graph)
    return {
        n.key: (n.x, n.y) if n.x is not None and n.y is not None else computed[n.key]
        for n in graph.nodes
    }


# --- small helpers ---------------------------------------------------------------------------

_NUMBERED = re.compile(r"^n(\d+)$")


def new_key(existing: Iterable[str]) -> str:
    """ "n<k>" with k one more than the highest such key in `existing` (never reused while the
    higher one exists, and short enough to read in URLs and logs)."""
    highest = 0
    for key in existing:
        m = _NUMBERED.match(key)
        if m:
            highest = max(highest, int(m.group(1)))
    return f"n{highest + 1}"


# Event names the engine matches for triggers that are events underneath.
SIGNUP_EVENT = "Signed Up"


def summary(graph: Graph) -> GraphSummary:
    """What publishing copies onto the version for the engine: the trigger's kind, the event
    that starts it (trigger_event: its event; trigger_signup: "Signed Up"; others: ""), and the
    events the goal steps listen for (sorted, unique)."""
    trigger = graph.trigger()
    kind = trigger.kind if trigger else ""
    event = ""
    if trigger is not None and kind == "trigger_event":
        event = str(trigger.settings.get("event") or "")
    elif kind == "trigger_signup":
        event = SIGNUP_EVENT
    goals = sorted(
        {
            str(n.settings["event"])
            for n in graph.nodes
            if _category(n.kind) == Category.GOAL and n.settings.get("event")
        }
    )
    return GraphSummary(trigger_kind=kind, trigger_event=event, goal_events=goals)
