"""The graph rules, the layout and the JSON format (journeys/graph.py): pure, no database."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest

from journeys.graph import (
    CARD_HEIGHT,
    CARD_WIDTH,
    Graph,
    GraphEdge,
    GraphError,
    GraphNode,
    Problem,
    graph_from_json,
    graph_to_json,
    instant_cycle_nodes,
    layout,
    new_key,
    positions,
    summary,
    validate,
)

# Settings each kind accepts as they are.
OK: dict[str, dict[str, Any]] = {
    "trigger_event": {"event": "Product Added"},
    "trigger_api": {},
    "trigger_signup": {},
    "wait_delay": {"amount": 30, "unit": "minutes"},
    "wait_event": {"event": "Order Completed", "amount": 1, "unit": "days"},
    "branch_event": {"event": "Order Completed", "since": "entered"},
    "action_email": {"template": "t-1"},
    "action_push": {"template": "t-2"},
    "action_update": {"field": "first_name", "value": "Ann"},
    "goal": {"event": "Order Completed", "amount": 7, "unit": "days"},
    "exit": {},
}


def node(key: str, kind: str, **settings: Any) -> GraphNode:
    return GraphNode(key=key, kind=kind, settings={**OK.get(kind, {}), **settings})


def edge(spec: str) -> GraphEdge:
    """ "n1.next>n2" → GraphEdge("n1", "next", "n2")."""
    source, rest = spec.split(".")
    port, target = rest.split(">")
    return GraphEdge(source, port, target)


def graph(nodes: list[GraphNode], *edges: str) -> Graph:
    return Graph(nodes=nodes, edges=[edge(e) for e in edges])


def chain() -> Graph:
    """trigger → wait for order (event: email, timeout: push → exit)."""
    return graph(
        [
            node("n1", "trigger_event"),
            node("n2", "wait_event"),
            node("n3", "action_email"),
            node("n4", "action_push"),
            node("n5", "exit"),
        ],
        "n1.next>n2",
        "n2.event>n3",
        "n2.timeout>n4",
        "n4.next>n5",
    )


def keyed(problems: list[Problem]) -> set[tuple[str, str]]:
    return {(p.node_key, p.field) for p in problems}


# --- validate: each rule alone ---------------------------------------------------------------


def test_it_accepts_a_valid_graph() -> None:
    assert validate(chain()) == []


def test_it_accepts_a_lone_trigger() -> None:
    assert validate(graph([node("n1", "trigger_api")])) == []


def test_it_requires_a_trigger() -> None:
    problems = validate(graph([node("n1", "action_email")]))
    assert keyed(problems) == {("", "")}
    assert "trigger" in problems[0].message


def test_it_refuses_an_empty_graph() -> None:
    assert keyed(validate(Graph())) == {("", "")}


def test_it_refuses_a_second_trigger_and_names_it() -> None:
    g = graph([node("n1", "trigger_event"), node("n2", "trigger_api")])
    problems = validate(g)
    assert keyed(problems) == {("n2", "")}
    assert "one trigger" in problems[0].message


def test_it_refuses_a_path_into_the_trigger() -> None:
    g = graph(
        [node("n1", "trigger_event"), node("n2", "wait_delay")],
        "n1.next>n2",
        "n2.next>n1",
    )
    assert keyed(validate(g)) == {("n2", "port:next")}


def test_it_refuses_a_port_the_kind_does_not_have() -> None:
    g = graph([node("n1", "trigger_event"), node("n2", "exit")], "n1.yes>n2")
    problems = validate(g)
    assert keyed(problems) == {("n1", "port:yes")}
    assert "no “yes” path" in problems[0].message


def test_it_refuses_a_port_that_exists_only_for_other_settings() -> None:
    g = graph(
        [node("n1", "trigger_event"), node("n2", "wait_delay"), node("n3", "exit")],
        "n1.next>n2",
        "n2.timeout>n3",
    )
    assert ("n2", "port:timeout") in keyed(validate(g))


def test_it_refuses_an_edge_to_a_missing_step() -> None:
    g = graph([node("n1", "trigger_event")], "n1.next>n9")
    assert keyed(validate(g)) == {("n1", "port:next")}


def test_it_refuses_an_edge_from_a_missing_step() -> None:
    g = graph([node("n1", "trigger_event"), node("n2", "exit")], "n1.next>n2", "n9.next>n2")
    problems = validate(g)
    assert keyed(problems) == {("", "")}
    assert "n9" in problems[0].message


def test_it_refuses_a_step_leading_to_itself() -> None:
    g = graph(
        [node("n1", "trigger_event"), node("n2", "wait_event")],
        "n1.next>n2",
        "n2.timeout>n2",
    )
    problems = validate(g)
    assert keyed(problems) == {("n2", "port:timeout")}
    assert "itself" in problems[0].message


def test_it_refuses_two_edges_on_one_port() -> None:
    # graph_from_json refuses this already; a Graph built in code can still hold it.
    g = graph(
        [node("n1", "trigger_event"), node("n2", "exit"), node("n3", "exit")],
        "n1.next>n2",
        "n1.next>n3",
    )
    assert ("n1", "port:next") in keyed(validate(g))


def test_it_refuses_a_step_the_trigger_cannot_reach() -> None:
    g = graph([node("n1", "trigger_event"), node("n2", "action_email")])
    problems = validate(g)
    assert keyed(problems) == {("n2", "")}
    assert problems[0].message == "This step can't be reached from the trigger."


def test_it_refuses_a_loop_without_a_wait_and_names_every_step_in_it() -> None:
    g = graph(
        [
            node("n1", "trigger_event"),
            node("n2", "action_email"),
            node("n3", "branch_event"),
        ],
        "n1.next>n2",
        "n2.next>n3",
        "n3.no>n2",
    )
    problems = validate(g)
    assert keyed(problems) == {("n2", ""), ("n3", "")}
    assert all("loop with no wait" in p.message for p in problems)


def test_it_accepts_a_loop_through_a_wait() -> None:
    g = graph(
        [
            node("n1", "trigger_event"),
            node("n2", "action_email"),
            node("n3", "wait_delay"),
            node("n4", "branch_event"),
        ],
        "n1.next>n2",
        "n2.next>n3",
        "n3.next>n4",
        "n4.no>n2",
    )
    assert validate(g) == []


def test_it_refuses_settings_the_kind_refuses_naming_each_field() -> None:
    g = graph(
        [
            node("n1", "trigger_event", event=""),
            GraphNode("n2", "action_email", {}),
        ],
        "n1.next>n2",
    )
    problems = validate(g)
    assert keyed(problems) == {("n1", "event"), ("n2", "template")}
    assert {p.message for p in problems} == {"Event is required.", "Template is required."}


def test_it_refuses_an_unknown_kind() -> None:
    g = graph([node("n1", "trigger_event"), node("n2", "action_fax")], "n1.next>n2")
    problems = validate(g)
    assert keyed(problems) == {("n2", "")}
    assert "action_fax" in problems[0].message


def test_it_does_not_judge_the_ports_of_an_unknown_kind() -> None:
    g = graph(
        [node("n1", "trigger_event"), node("n2", "action_fax"), node("n3", "exit")],
        "n1.next>n2",
        "n2.whatever>n3",
    )
    assert keyed(validate(g)) == {("n2", "")}


def test_it_says_only_once_that_a_trigger_is_missing() -> None:
    # Without a trigger nothing is "unreachable": one problem, not one per step.
    g = graph([node("n1", "action_email"), node("n2", "exit")], "n1.next>n2")
    assert keyed(validate(g)) == {("", "")}


# --- validate: rules together ----------------------------------------------------------------


def test_it_reports_every_broken_rule_at_once() -> None:
    g = graph(
        [
            node("n1", "trigger_event", event=""),  # settings
            node("n2", "action_email"),
            node("n3", "action_push"),  # in a loop with n2, no wait
            node("n4", "trigger_api"),  # second trigger
            node("n5", "exit"),  # unreachable
            node("n6", "nonsense"),  # unknown kind, unreachable
            node("n7", "wait_delay"),
        ],
        "n1.next>n2",
        "n2.next>n3",
        "n3.next>n2",
        "n1.bogus>n7",  # port
        "n7.next>n1",  # into the trigger
        "n7.timeout>n7",  # self-edge, and no such port
        "n4.next>n8",  # missing target
    )
    assert keyed(validate(g)) == {
        ("n1", "event"),
        ("n4", ""),
        ("n1", "port:bogus"),
        ("n7", "port:next"),
        ("n7", "port:timeout"),
        ("n4", "port:next"),
        ("n5", ""),
        ("n6", ""),
        ("n2", ""),
        ("n3", ""),
    }


@pytest.mark.parametrize("rule", ["trigger", "port", "reach", "cycle", "settings", "self"])
def test_it_finds_each_rule_broken_in_an_otherwise_valid_graph(rule: str) -> None:
    g = chain()
    if rule == "trigger":
        g.nodes[0] = node("n1", "action_email")
    elif rule == "port":
        g.edges[0] = edge("n1.yes>n2")
    elif rule == "reach":
        g.edges.pop()
    elif rule == "cycle":
        g.edges.append(edge("n5.next>n4"))  # exit has no port: port problem, no cycle via waits
        g.nodes[4] = node("n5", "action_update")
    elif rule == "settings":
        g.nodes[1] = node("n2", "wait_event", event="")
    elif rule == "self":
        g.edges.append(edge("n3.next>n3"))
    problems = validate(g)
    assert problems, rule
    expected = {
        "trigger": ("", ""),
        "port": ("n1", "port:yes"),
        "reach": ("n5", ""),
        "cycle": ("n4", ""),
        "settings": ("n2", "event"),
        "self": ("n3", "port:next"),
    }[rule]
    assert expected in keyed(problems)


# --- validate: reachability and cycles against a reference, on random graphs -----------------

KINDS = ["action_email", "wait_delay", "branch_event", "action_update"]


def reference_reachable(nodes: dict[str, str], edges: list[GraphEdge], start: str) -> set[str]:
    """Reachable by repeated relaxation: keys that some chain of edges leads to."""
    seen = {start}
    changed = True
    while changed:
        changed = False
        for e in edges:
            if e.source in seen and e.target in nodes and e.target not in seen:
                seen.add(e.target)
                changed = True
    return seen


def reference_looping(nodes: dict[str, str], edges: list[GraphEdge]) -> set[str]:
    """Keys k that are not waits and from which a path of two or more edges through non-wait
    steps leads back to k: every path enumerated (tiny graphs only)."""
    instant = {k for k, kind in nodes.items() if kind != "wait_delay"}
    succ = {
        k: {e.target for e in edges if e.source == k and e.target in instant and e.target != k}
        for k in instant
    }
    found = set()
    for k in instant:
        for length in range(2, len(instant) + 1):
            for middle in itertools.permutations(instant - {k}, length - 1):
                path = [k, *middle, k]
                if all(b in succ[a] for a, b in itertools.pairwise(path)):
                    found.add(k)
    return found


def random_graph(rng: random.Random) -> Graph:
    size = rng.randint(1, 6)
    kinds = {"n0": "trigger_event"} | {f"n{i}": rng.choice(KINDS) for i in range(1, size)}
    nodes = [node(k, kind) for k, kind in kinds.items()]
    ports = {
        "trigger_event": ["next"],
        "action_email": ["next"],
        "action_update": ["next"],
        "wait_delay": ["next"],
        "branch_event": ["yes", "no"],
    }
    edges = []
    for k, kind in kinds.items():
        for port in ports[kind]:
            if rng.random() < 0.7:
                edges.append(GraphEdge(k, port, rng.choice(list(kinds))))
    return Graph(nodes=nodes, edges=edges)


def test_it_agrees_with_a_reference_on_reachability_and_loops_for_random_graphs() -> None:
    rng = random.Random(13)
    for _ in range(1500):
        g = random_graph(rng)
        kinds = {n.key: n.kind for n in g.nodes}
        problems = validate(g)
        unreachable = {p.node_key for p in problems if "can't be reached" in p.message}
        looping = {p.node_key for p in problems if "loop with no wait" in p.message}
        assert unreachable == set(kinds) - reference_reachable(kinds, g.edges, "n0"), g
        assert looping == reference_looping(kinds, g.edges), g
        assert instant_cycle_nodes(g) == looping
        self_edges = {e.source for e in g.edges if e.source == e.target}
        into_trigger = {e.source for e in g.edges if e.target == "n0" and e.source != "n0"}
        flagged = {p.node_key for p in problems if p.field.startswith("port:") and p.node_key}
        assert flagged == self_edges | into_trigger, g
        assert (problems == []) == (
            not unreachable and not looping and not self_edges and not into_trigger
        )


# --- layout ----------------------------------------------------------------------------------


def overlapping(pos: dict[str, tuple[int, int]]) -> list[tuple[str, str]]:
    return [
        (a, b)
        for (a, (ax, ay)), (b, (bx, by)) in itertools.combinations(pos.items(), 2)
        if abs(ax - bx) < CARD_WIDTH and abs(ay - by) < CARD_HEIGHT
    ]


def test_it_lays_out_the_trigger_on_top_and_children_below_their_parents() -> None:
    pos = layout(chain())
    assert pos["n1"][1] < pos["n2"][1] < pos["n3"][1]
    assert pos["n3"][1] == pos["n4"][1]  # siblings share a row
    assert pos["n3"][0] < pos["n4"][0]  # port order: event left of timeout
    assert pos["n5"][1] > pos["n4"][1]
    assert overlapping(pos) == []


def test_it_puts_a_step_below_its_longest_path() -> None:
    g = graph(
        [
            node("n1", "trigger_event"),
            node("n2", "branch_event"),
            node("n3", "action_email"),
            node("n4", "exit"),
        ],
        "n1.next>n2",
        "n2.yes>n3",
        "n2.no>n4",
        "n3.next>n4",
    )
    pos = layout(g)
    assert pos["n4"][1] > pos["n3"][1]


def test_it_lays_out_loops_and_unreachable_steps() -> None:
    g = graph(
        [
            node("n1", "trigger_event"),
            node("n2", "wait_delay"),
            node("n3", "branch_event"),
            node("n4", "action_email"),
        ],
        "n1.next>n2",
        "n2.next>n3",
        "n3.no>n2",
    )
    pos = layout(g)
    assert pos["n1"][1] < pos["n2"][1] < pos["n3"][1]
    assert set(pos) == {"n1", "n2", "n3", "n4"}
    assert overlapping(pos) == []


def test_its_layout_never_overlaps_and_is_deterministic_on_random_graphs() -> None:
    rng = random.Random(7)
    for _ in range(500):
        g = random_graph(rng)
        pos = layout(g)
        assert set(pos) == set(g.node_keys())
        assert overlapping(pos) == [], g
        assert layout(g) == pos
        assert min(x for x, _ in pos.values()) >= 0
        assert pos["n0"][1] == min(y for _, y in pos.values())
        # Without loops, every step is below every step that leads to it (but the trigger,
        # which stays on top even when a path wrongly leads into it).
        if not reference_looping({n.key: "any" for n in g.nodes}, g.edges):
            for e in g.edges:
                if e.source != e.target and e.target != "n0":
                    assert pos[e.target][1] > pos[e.source][1], g


def test_it_keeps_positions_the_marketer_chose() -> None:
    g = chain()
    g.nodes[2] = GraphNode("n3", "action_email", OK["action_email"], x=900, y=15)
    pos = positions(g)
    assert pos["n3"] == (900, 15)
    assert pos["n1"] == layout(g)["n1"]


# --- JSON, keys, summary ---------------------------------------------------------------------


def test_it_reads_back_what_it_writes() -> None:
    g = chain()
    g.nodes[0] = GraphNode("n1", "trigger_event", {"event": "X"}, label="Start", x=1, y=2)
    assert graph_from_json(graph_to_json(g)) == g


def test_it_reads_a_minimal_graph() -> None:
    g = graph_from_json({"nodes": [{"key": "a", "kind": "trigger_api"}]})
    assert g == Graph(nodes=[GraphNode("a", "trigger_api", {}, "", None, None)], edges=[])


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ([], ""),
        ({}, "nodes"),
        ({"nodes": {}}, "nodes"),
        ({"nodes": [], "edges": {}}, "edges"),
        ({"nodes": ["x"]}, "nodes[0]"),
        ({"nodes": [{"kind": "exit"}]}, "nodes[0].key"),
        ({"nodes": [{"key": " ", "kind": "exit"}]}, "nodes[0].key"),
        ({"nodes": [{"key": "k" * 41, "kind": "exit"}]}, "nodes[0].key"),
        ({"nodes": [{"key": "a/b", "kind": "exit"}]}, "nodes[0].key"),  # a key is in URLs
        ({"nodes": [{"key": "a b", "kind": "exit"}]}, "nodes[0].key"),
        ({"nodes": [{"key": "a", "kind": 3}]}, "nodes[0].kind"),
        ({"nodes": [{"key": "a", "kind": "exit", "settings": []}]}, "nodes[0].settings"),
        ({"nodes": [{"key": "a", "kind": "exit", "label": 5}]}, "nodes[0].label"),
        ({"nodes": [{"key": "a", "kind": "exit", "x": "1"}]}, "nodes[0].x"),
        ({"nodes": [{"key": "a", "kind": "exit", "y": True}]}, "nodes[0].y"),
        (
            {"nodes": [{"key": "a", "kind": "exit"}, {"key": "a", "kind": "exit"}]},
            "nodes[1].key",
        ),
        ({"nodes": [], "edges": [1]}, "edges[0]"),
        ({"nodes": [], "edges": [{"source": "a", "port": "next"}]}, "edges[0].target"),
        (
            {
                "nodes": [],
                "edges": [
                    {"source": "a", "port": "next", "target": "b"},
                    {"source": "a", "port": "next", "target": "c"},
                ],
            },
            "edges[1].port",
        ),
    ],
)
def test_it_refuses_malformed_json_naming_the_path(data: Any, path: str) -> None:
    with pytest.raises(GraphError) as caught:
        graph_from_json(data)
    assert caught.value.path == path


def test_it_makes_new_keys_that_are_not_taken() -> None:
    assert new_key([]) == "n1"
    assert new_key(["n1", "n2"]) == "n3"
    assert new_key(["n1", "n7", "start", "n03x"]) == "n8"
    keys: list[str] = []
    for _ in range(20):
        keys.append(new_key(keys))
    assert len(set(keys)) == 20


def test_it_summarises_the_trigger_and_the_goals() -> None:
    g = chain()
    g.nodes.append(node("n6", "goal", event="Order Completed"))
    g.nodes.append(node("n7", "goal", event="Checkout Started"))
    g.nodes.append(node("n8", "goal", event="Order Completed"))
    s = summary(g)
    assert (s.trigger_kind, s.trigger_event) == ("trigger_event", "Product Added")
    assert s.goal_events == ["Checkout Started", "Order Completed"]


def test_it_summarises_signup_and_api_triggers() -> None:
    assert summary(graph([node("n1", "trigger_signup")])).trigger_event == "Signed Up"
    s = summary(graph([node("n1", "trigger_api")]))
    assert (s.trigger_kind, s.trigger_event, s.goal_events) == ("trigger_api", "", [])
    assert summary(Graph()).trigger_kind == ""
