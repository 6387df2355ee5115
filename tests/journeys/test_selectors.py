"""Journey reads: the gatekeepers, the list, the graph of a version, the counts per step."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from django.http import Http404

from audience.models import Contact
from journeys import selectors, services
from journeys.graph import GraphEdge
from journeys.models import Enrollment, Journey, JourneyVersion, Step
from journeys.selectors import EMPTY_STATS, NodeStats
from tests.journeys.conftest import CART_TEMPLATE

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("cart_templates")]

GRAPH = {
    "nodes": [
        {"key": "t", "kind": "trigger_event", "settings": {"event": "Product Added"}},
        {"key": "w", "kind": "wait_delay", "settings": {"amount": 30, "unit": "minutes"}},
        {
            "key": "m",
            "kind": "action_email",
            "settings": {"template": CART_TEMPLATE},
            "x": 10,
            "y": 20,
        },
    ],
    "edges": [
        {"source": "t", "port": "next", "target": "w"},
        {"source": "w", "port": "next", "target": "m"},
    ],
}


def make(world: Any, name: str = "Cart", tenant: Any = None, publish: bool = True) -> Journey:
    journey = services.journey_create(tenant=tenant or world.acme, name=name, graph=GRAPH)
    if publish:
        services.journey_publish(journey=journey)
    return journey


def person(tenant: Any, name: str) -> Contact:
    return Contact.objects.create(tenant=tenant, email=f"{name}@example.com")


def enrollment(
    journey: Journey, contact: Contact, at: str, state: str, *steps: tuple[str, str], **kw: Any
) -> Enrollment:
    """An enrollment standing at `at`, with Steps (node_key, result) on its log."""
    version = kw.pop("version", None) or selectors.journey_published(journey=journey)
    e = Enrollment.objects.create(
        tenant=journey.tenant,
        journey=journey,
        version=version,
        contact=contact,
        node_key=at,
        state=state,
        **kw,
    )
    Step.objects.bulk_create(
        Step(tenant=journey.tenant, enrollment=e, version=version, node_key=k, result=r)
        for k, r in steps
    )
    return e


# --- gatekeepers -----------------------------------------------------------------------------


def test_it_finds_a_journey_by_its_public_id(world: Any) -> None:
    journey = make(world)
    assert selectors.journey_get(tenant=world.acme, public_id=str(journey.public_id)) == journey


@pytest.mark.parametrize("whose", ["other tenant", "unknown", "malformed"])
def test_it_answers_404_for_a_journey_that_is_not_the_tenants(world: Any, whose: str) -> None:
    journey = make(world)
    tenant, public_id = {
        "other tenant": (world.globex, journey.public_id),
        "unknown": (world.acme, uuid.uuid4()),
        "malformed": (world.acme, "1 OR 1=1"),
    }[whose]
    with pytest.raises(Http404):
        selectors.journey_get(tenant=tenant, public_id=public_id)


def test_it_answers_404_for_an_enrollment_that_is_not_the_tenants_or_the_journeys(
    world: Any,
) -> None:
    journey, other = make(world), make(world, name="Other")
    e = enrollment(journey, person(world.acme, "ann"), "w", "waiting")
    assert selectors.enrollment_get(tenant=world.acme, public_id=e.public_id) == e
    assert selectors.enrollment_get(tenant=world.acme, public_id=e.public_id, journey=journey) == e
    for kwargs in (
        {"tenant": world.globex},
        {"tenant": world.acme, "journey": other},
    ):
        with pytest.raises(Http404):
            selectors.enrollment_get(public_id=e.public_id, **kwargs)


def test_its_reads_refuse_a_journey_of_another_tenant(world: Any) -> None:
    journey = make(world)
    for read in (
        lambda: selectors.node_stats(tenant=world.globex, journey=journey),
        lambda: selectors.journey_stats(tenant=world.globex, journey=journey),
        lambda: selectors.journey_draft(tenant=world.globex, journey=journey),
        lambda: selectors.node_enrollments(tenant=world.globex, journey=journey, node_key="w"),
        lambda: selectors.journey_enrollments(tenant=world.globex, journey=journey),
        lambda: selectors.version_graph(
            tenant=world.globex, version=selectors.journey_published(journey=journey)
        ),
    ):
        with pytest.raises(Http404):
            read()


# --- the list --------------------------------------------------------------------------------


def test_it_lists_the_tenants_journeys_with_versions_and_open_counts(world: Any) -> None:
    live = make(world, name="Live")
    services.node_move(journey=live, key="w", x=1, y=1)  # a draft v2 beside v1
    make(world, name="Draft", publish=False)
    archived = make(world, name="Gone")
    services.journey_archive(journey=archived)
    make(world, name="Theirs", tenant=world.globex)
    for i, state in enumerate(["active", "waiting", "completed"]):
        enrollment(live, person(world.acme, f"p{i}"), "w", state)

    enrollment(live, person(world.acme, "conv"), "m", "converted")
    rows = {
        j.name: (j.status, j.live_number, j.draft_number, j.open_enrollments, j.conversions)
        for j in selectors.journey_list(tenant=world.acme)
    }
    assert rows == {"Live": ("live", 1, 2, 2, 1), "Draft": ("draft", None, 1, 0, 0)}
    assert [j.name for j in selectors.journey_list(tenant=world.acme, include_archived=True)] == [
        "Draft",
        "Gone",
        "Live",
    ]
    assert [j.name for j in selectors.journey_list(tenant=world.acme, status="archived")] == [
        "Gone"
    ]


def test_it_lists_journeys_in_one_query_however_many(
    world: Any, django_assert_num_queries: Any
) -> None:
    for n in range(2):
        make(world, name=f"J{n}")
    with django_assert_num_queries(1):
        assert len(list(selectors.journey_list(tenant=world.acme))) == 2
    for n in range(2, 6):
        journey = make(world, name=f"J{n}")
        enrollment(journey, person(world.acme, f"c{n}"), "w", "waiting")
    with django_assert_num_queries(1):
        assert len(list(selectors.journey_list(tenant=world.acme))) == 6


# --- versions and graphs ---------------------------------------------------------------------


def test_it_reads_a_versions_graph(world: Any) -> None:
    journey = make(world)
    graph = selectors.version_graph(version=selectors.journey_published(journey=journey))
    assert graph.node_keys() == ["t", "w", "m"]
    assert graph.edges == [GraphEdge("t", "next", "w"), GraphEdge("w", "next", "m")]
    assert (graph.node("m").x, graph.node("m").y) == (10, 20)  # type: ignore[union-attr]


def test_it_shows_the_draft_else_the_published_version(world: Any) -> None:
    journey = make(world)
    assert selectors.journey_current(journey=journey).state == "published"  # type: ignore[union-attr]
    services.node_move(journey=journey, key="w", x=1, y=1)
    current = selectors.journey_current(journey=journey)
    assert (current.number, current.state) == (2, "draft")  # type: ignore[union-attr]
    assert [v.number for v in selectors.journey_versions(journey=journey)] == [2, 1]


def test_it_lists_the_problems_of_the_draft(world: Any) -> None:
    journey = make(world)
    assert selectors.journey_problems(journey=journey) == []
    services.node_update(journey=journey, key="m", settings={})
    assert [(p.node_key, p.field) for p in selectors.journey_problems(journey=journey)] == [
        ("m", "template")
    ]


# --- counts ----------------------------------------------------------------------------------


@pytest.fixture
def counted(world: Any) -> dict[str, Any]:
    """v1 and v2 of one journey with people at every stage, and another journey's people."""
    journey = make(world)
    v1 = selectors.journey_published(journey=journey)
    people = [person(world.acme, f"p{i}") for i in range(6)]
    # ann passed t and w on v1 and is at m, failed.
    ann = enrollment(
        journey,
        people[0],
        "m",
        "failed",
        ("t", "entered"),
        ("t", "followed"),
        ("w", "waiting"),
        ("w", "followed"),
        ("m", "failed"),
        version=v1,
    )
    # bob waits at w on v1 (two Steps there: entered it, waiting).
    bob = enrollment(journey, people[1], "w", "waiting", ("t", "followed"), ("w", "waiting"))
    services.node_move(journey=journey, key="w", x=1, y=1)
    v2 = services.journey_publish(journey=journey)
    # cy on v2: sent the email, then converted at the goal.
    cy = enrollment(
        journey,
        people[2],
        "g",
        "converted",
        ("t", "followed"),
        ("w", "followed"),
        ("m", "sent"),  # counts as completed: the action went on by its port
        ("g", "converted"),
        version=v2,
        converted_at=v2.published_at,
        revenue=Decimal("19.90"),
    )
    # dee just entered v2, active at t.
    dee = enrollment(journey, people[3], "t", "active", ("t", "entered"), version=v2)
    # Another journey's people count nowhere here.
    other = make(world, name="Other")
    enrollment(other, people[4], "w", "waiting", ("t", "followed"), ("w", "waiting"))
    return {"journey": journey, "v1": v1, "v2": v2, "ann": ann, "bob": bob, "cy": cy, "dee": dee}


def test_it_counts_each_step_across_versions(counted: dict[str, Any]) -> None:
    stats = selectors.node_stats(journey=counted["journey"])
    assert stats == {
        "t": NodeStats(entered=4, waiting=1, completed=3, converted=0, failed=0),
        "w": NodeStats(entered=3, waiting=1, completed=2, converted=0, failed=0),
        "m": NodeStats(entered=2, waiting=0, completed=1, converted=0, failed=1),
        "g": NodeStats(entered=1, converted=1),
    }
    assert stats.get("nowhere", EMPTY_STATS) == NodeStats()


def test_it_counts_one_version(counted: dict[str, Any]) -> None:
    stats = selectors.node_stats(journey=counted["journey"], version=counted["v1"])
    assert stats["w"] == NodeStats(entered=2, waiting=1, completed=1)
    assert stats["m"] == NodeStats(entered=1, failed=1)


def test_it_counts_the_journeys_totals(counted: dict[str, Any], world: Any) -> None:
    totals = selectors.journey_stats(journey=counted["journey"]).totals
    assert totals == {
        "enrolled": 4,
        "open": 2,
        "conversions": 1,
        "revenue": Decimal("19.90"),
    }
    assert selectors.journey_totals(journey=counted["journey"]) == totals
    empty = selectors.journey_totals(journey=make(world, name="Empty"))
    assert empty == {"enrolled": 0, "open": 0, "conversions": 0, "revenue": Decimal("0.00")}


def test_it_counts_in_two_queries_however_many_steps_and_versions(
    counted: dict[str, Any], django_assert_num_queries: Any, world: Any
) -> None:
    journey = counted["journey"]
    with django_assert_num_queries(2):
        selectors.node_stats(journey=journey)
    services.node_move(journey=journey, key="m", x=1, y=1)
    v3 = services.journey_publish(journey=journey)
    for i in range(5):
        enrollment(
            journey, person(world.acme, f"x{i}"), "w", "waiting", ("w", "waiting"), version=v3
        )
    with django_assert_num_queries(2):
        assert selectors.node_stats(journey=journey)["w"].waiting == 6
    with django_assert_num_queries(3):
        selectors.journey_stats(journey=journey)


@pytest.mark.parametrize(
    ("node_key", "state", "names"),
    [
        ("m", None, {"ann", "cy"}),
        ("m", "entered", {"ann", "cy"}),
        ("m", "failed", {"ann"}),
        ("g", "converted", {"cy"}),
        ("m", "converted", set()),
        ("m", "completed", {"cy"}),
        ("w", "waiting", {"bob"}),
        ("t", "waiting", {"dee"}),
        ("t", None, {"ann", "bob", "cy", "dee"}),
        ("w", "completed", {"ann", "cy"}),
    ],
)
def test_it_lists_the_people_behind_each_count(
    counted: dict[str, Any], world: Any, node_key: str, state: str | None, names: set[str]
) -> None:
    found = selectors.node_enrollments(
        tenant=world.acme, journey=counted["journey"], node_key=node_key, state=state
    )
    by_pk = {counted[n].pk: n for n in ("ann", "bob", "cy", "dee")}
    assert {by_pk[e.pk] for e in found} == names


def test_it_refuses_a_count_it_does_not_know(counted: dict[str, Any], world: Any) -> None:
    with pytest.raises(ValueError, match="unknown node count"):
        selectors.node_enrollments(
            tenant=world.acme, journey=counted["journey"], node_key="m", state="lost"
        )


def test_it_lists_a_journeys_enrollments_by_state_and_node(
    counted: dict[str, Any], world: Any
) -> None:
    journey = counted["journey"]

    def names(**kw: Any) -> set[str]:
        by_pk = {counted[n].pk: n for n in ("ann", "bob", "cy", "dee")}
        found = selectors.journey_enrollments(tenant=world.acme, journey=journey, **kw)
        return {by_pk[e.pk] for e in found}

    assert names() == {"ann", "bob", "cy", "dee"}
    assert names(state="open") == {"bob", "dee"}
    assert names(state="waiting") == {"bob"}
    assert names(state="failed", node_key="m") == {"ann"}
    assert names(node_key="t") == {"dee"}


def test_it_reads_an_enrollments_log_in_order(counted: dict[str, Any]) -> None:
    steps = selectors.enrollment_steps(enrollment=counted["ann"])
    assert [(s.node_key, s.result, s.version.number) for s in steps] == [
        ("t", "entered", 1),
        ("t", "followed", 1),
        ("w", "waiting", 1),
        ("w", "followed", 1),
        ("m", "failed", 1),
    ]
    assert JourneyVersion.objects.filter(journey=counted["journey"]).count() == 2
