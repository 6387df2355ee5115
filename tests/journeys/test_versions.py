"""Publishing: versions, the rules that refuse a graph, and the people in flight."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from audience.models import Contact
from journeys import selectors, services
from journeys.models import Enrollment, Journey, JourneyVersion, Step
from journeys.services import JourneyConflict, JourneyGraphInvalid
from tests.journeys.conftest import CART_TEMPLATE

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("cart_templates")]

CART = {
    "nodes": [
        {"key": "t", "kind": "trigger_event", "settings": {"event": "Product Added"}},
        {"key": "w", "kind": "wait_delay", "settings": {"amount": 30, "unit": "minutes"}},
        {"key": "x", "kind": "wait_event", "settings": {"event": "Order Completed"}},
        {"key": "m", "kind": "action_email", "settings": {"template": CART_TEMPLATE}},
        {"key": "g", "kind": "goal", "settings": {"event": "Order Completed"}},
    ],
    "edges": [
        {"source": "t", "port": "next", "target": "w"},
        {"source": "w", "port": "next", "target": "x"},
        {"source": "x", "port": "timeout", "target": "m"},
        {"source": "m", "port": "next", "target": "g"},
    ],
}


def make(world: Any, graph: dict[str, Any] | None = None, name: str = "Cart") -> Journey:
    return services.journey_create(
        tenant=world.acme, name=name, actor=world.dave, graph=graph or CART
    )


def states(journey: Journey) -> list[tuple[int, str]]:
    return list(
        JourneyVersion.objects.filter(journey=journey)
        .order_by("number")
        .values_list("number", "state")
    )


# --- refusing --------------------------------------------------------------------------------


def test_it_refuses_to_publish_an_invalid_graph_naming_the_steps(world: Any) -> None:
    journey = make(world)
    services.node_update(journey=journey, key="m", settings={})
    services.node_add(journey=journey, kind="exit")  # unreachable
    with pytest.raises(JourneyGraphInvalid) as caught:
        services.journey_publish(journey=journey, actor=world.dave)
    assert caught.value.node_keys == ["m", "n1"]
    assert {(p.node_key, p.field) for p in caught.value.problems} == {
        ("m", "template"),
        ("n1", ""),
    }
    assert "can't be published yet" in caught.value.message
    assert states(journey) == [(1, "draft")]
    assert Journey.objects.get(pk=journey.pk).status == "draft"


def test_it_refuses_to_publish_without_changes(world: Any) -> None:
    journey = make(world)
    services.journey_publish(journey=journey)
    with pytest.raises(JourneyConflict, match="no changes"):
        services.journey_publish(journey=journey)


# --- versions --------------------------------------------------------------------------------


def test_it_publishes_the_draft_and_freezes_what_the_engine_needs(world: Any) -> None:
    journey = make(world)
    version = services.journey_publish(journey=journey, actor=world.dave)
    assert (version.number, version.state, version.published_by) == (1, "published", world.dave)
    assert version.published_at is not None
    assert (version.trigger_kind, version.trigger_event, version.goal_events) == (
        "trigger_event",
        "Product Added",
        ["Order Completed"],
    )
    assert journey.status == Journey.Status.LIVE
    assert Journey.objects.get(pk=journey.pk).status == "live"
    # The kinds' normalised settings are what is frozen.
    goal = version.nodes.get(key="g").settings
    assert (goal["amount"], goal["unit"]) == (7, "days")


def test_it_keeps_one_draft_and_one_published_version(world: Any) -> None:
    journey = make(world)
    services.journey_publish(journey=journey)
    services.node_update(journey=journey, key="w", settings={"amount": 1, "unit": "hours"})
    assert states(journey) == [(1, "published"), (2, "draft")]
    services.journey_publish(journey=journey)
    assert states(journey) == [(1, "archived"), (2, "published")]
    services.node_move(journey=journey, key="w", x=5, y=5)
    services.journey_publish(journey=journey)
    assert states(journey) == [(1, "archived"), (2, "archived"), (3, "published")]
    assert selectors.journey_published(journey=journey).number == 3  # type: ignore[union-attr]


def test_it_keeps_a_paused_journey_paused_when_publishing(world: Any) -> None:
    journey = make(world)
    services.journey_publish(journey=journey)
    services.journey_pause(journey=journey)
    services.node_move(journey=journey, key="w", x=5, y=5)
    services.journey_publish(journey=journey)
    assert Journey.objects.get(pk=journey.pk).status == "paused"


def test_it_publishes_settings_with_the_graph(world: Any) -> None:
    journey = make(world)
    services.journey_publish(journey=journey)
    services.journey_settings_update(journey=journey, exit_events=["Unsubscribed"])
    assert selectors.journey_published(journey=journey).exit_events == []  # type: ignore[union-attr]
    v2 = services.journey_publish(journey=journey)
    assert v2.exit_events == ["Unsubscribed"]


# --- people in flight ------------------------------------------------------------------------


@pytest.fixture
def in_flight(world: Any) -> dict[str, Any]:
    """A journey published as v1 with people at w (waiting, due later), at x (waiting for an
    event), at m (active) and one finished; then a draft v2 with `m` deleted and the wait
    changed."""
    journey = make(world)
    v1 = services.journey_publish(journey=journey)
    later = timezone.now() + timedelta(minutes=20)
    people = {}
    for name, at, state in [
        ("wanda", "w", "waiting"),
        ("xavier", "x", "waiting"),
        ("mia", "m", "active"),
        ("fin", "g", "completed"),
    ]:
        contact = Contact.objects.create(tenant=world.acme, email=f"{name}@example.com")
        people[name] = Enrollment.objects.create(
            tenant=world.acme,
            journey=journey,
            version=v1,
            contact=contact,
            node_key=at,
            state=state,
            due_at=later,
            wait_event="Order Completed" if at == "x" else "",
            wait_match={"cart_id": "c1"} if at == "x" else {},
        )
    services.node_update(journey=journey, key="w", settings={"amount": 10, "unit": "minutes"})
    services.node_delete(journey=journey, key="m")
    return {"journey": journey, "v1": v1, **people}


def test_it_moves_people_waiting_at_steps_that_still_exist(in_flight: dict[str, Any]) -> None:
    journey, v1 = in_flight["journey"], in_flight["v1"]
    before = timezone.now()
    v2 = services.journey_publish(journey=journey, move_waiting=True)
    for name in ("wanda", "xavier", "mia", "fin"):
        in_flight[name].refresh_from_db()
    wanda, xavier, mia, fin = (in_flight[n] for n in ("wanda", "xavier", "mia", "fin"))
    # At kept steps: on v2, due now so the engine runs the step again (the new wait applies).
    for moved in (wanda, xavier):
        assert (moved.version, moved.state) == (v2, "active")
        assert moved.due_at is not None and moved.due_at >= before
        assert (moved.wait_event, moved.wait_match) == ("", {})
    assert (wanda.node_key, xavier.node_key) == ("w", "x")
    # At a deleted step, and finished: they stay on v1.
    assert (mia.version, mia.state, mia.node_key) == (v1, "active", "m")
    assert (fin.version, fin.state) == (v1, "completed")
    # Every move is on the step log.
    assert sorted(
        Step.objects.values_list("enrollment", "version", "node_key", "result", "detail")
    ) == sorted(
        [
            (wanda.pk, v2.pk, "w", "moved", {"from": 1, "to": 2}),
            (xavier.pk, v2.pk, "x", "moved", {"from": 1, "to": 2}),
        ]
    )


def test_it_leaves_everyone_on_their_version_unless_asked(in_flight: dict[str, Any]) -> None:
    journey, v1 = in_flight["journey"], in_flight["v1"]
    services.journey_publish(journey=journey, move_waiting=False)
    for name in ("wanda", "xavier", "mia"):
        enrollment = in_flight[name]
        due = enrollment.due_at
        enrollment.refresh_from_db()
        assert (enrollment.version, enrollment.due_at) == (v1, due)
    assert in_flight["xavier"].wait_event == "Order Completed"
    assert not Step.objects.exists()


def test_it_moves_people_from_every_older_version_and_says_from_which(
    in_flight: dict[str, Any],
) -> None:
    journey = in_flight["journey"]
    services.journey_publish(journey=journey)  # v2: nobody moves
    services.node_update(journey=journey, key="w", settings={"amount": 5, "unit": "minutes"})
    v3 = services.journey_publish(journey=journey, move_waiting=True)
    details = dict(Step.objects.values_list("enrollment", "detail"))
    assert details == {
        in_flight["wanda"].pk: {"from": 1, "to": 3},
        in_flight["xavier"].pk: {"from": 1, "to": 3},
    }
    assert set(Enrollment.objects.filter(version=v3).values_list("node_key", flat=True)) == {
        "w",
        "x",
    }


def test_it_moves_no_one_from_another_journey(world: Any, in_flight: dict[str, Any]) -> None:
    other = make(world, name="Other")
    v1 = services.journey_publish(journey=other)
    contact = Contact.objects.create(tenant=world.acme, email="o@example.com")
    elsewhere = Enrollment.objects.create(
        tenant=world.acme, journey=other, version=v1, contact=contact, node_key="w", state="waiting"
    )
    services.journey_publish(journey=in_flight["journey"], move_waiting=True)
    elsewhere.refresh_from_db()
    assert elsewhere.version == v1
    assert not Step.objects.filter(enrollment=elsewhere).exists()


def test_it_refuses_to_publish_steps_naming_templates_or_segments_the_team_lacks(
    world: Any,
) -> None:
    from messaging.models import Template

    theirs = Template.objects.create(
        tenant=world.globex, name="Theirs", channel="email", subject="Hi", html="<p>Hi</p>"
    )
    push = Template.objects.create(
        tenant=world.acme, name="A push", channel="push", title="Hey", body="Back?"
    )
    graph = {
        "nodes": [
            {"key": "t", "kind": "trigger_segment", "settings": {"segment": str(theirs.public_id)}},
            {"key": "a", "kind": "action_email", "settings": {"template": str(theirs.public_id)}},
            {"key": "b", "kind": "action_email", "settings": {"template": str(push.public_id)}},
            {"key": "c", "kind": "action_push", "settings": {"template": "not-an-id"}},
        ],
        "edges": [
            {"source": "t", "port": "next", "target": "a"},
            {"source": "a", "port": "next", "target": "b"},
            {"source": "b", "port": "next", "target": "c"},
        ],
    }
    journey = make(world, graph=graph)
    with pytest.raises(JourneyGraphInvalid) as caught:
        services.journey_publish(journey=journey)
    assert {(p.node_key, p.field) for p in caught.value.problems} == {
        ("t", "segment"),
        ("a", "template"),  # another team's
        ("b", "template"),  # a push template in an email step
        ("c", "template"),
    }
    # The editor shows the same on the cards before anyone tries to publish.
    assert {p.node_key for p in selectors.journey_problems(journey=journey)} == {"t", "a", "b", "c"}
    assert Journey.objects.get(pk=journey.pk).status == Journey.Status.DRAFT
