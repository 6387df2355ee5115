"""Journey services: creating, editing the draft, the journey's life, enrolling, tenancy."""

from __future__ import annotations

from typing import Any

import pytest
from django.http import Http404

from audience.models import Contact
from journeys import selectors, services
from journeys.models import Edge, Enrollment, Journey, JourneyVersion, Node, Step
from journeys.services import JourneyConflict, JourneyError
from tests.journeys.conftest import CART_TEMPLATE

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("cart_templates")]

CART = {
    "nodes": [
        {"key": "t", "kind": "trigger_event", "settings": {"event": "Product Added"}},
        {"key": "w", "kind": "wait_delay", "settings": {"amount": 30, "unit": "minutes"}},
        {"key": "m", "kind": "action_email", "settings": {"template": CART_TEMPLATE}},
    ],
    "edges": [
        {"source": "t", "port": "next", "target": "w"},
        {"source": "w", "port": "next", "target": "m"},
    ],
}


def make(world: Any, name: str = "Cart", graph: dict[str, Any] | None = None, **kw: Any) -> Journey:
    return services.journey_create(
        tenant=kw.pop("tenant", world.acme), name=name, actor=world.dave, graph=graph, **kw
    )


def draft_of(journey: Journey) -> JourneyVersion:
    draft = selectors.journey_draft(journey=journey)
    assert draft is not None
    return draft


def edges(journey: Journey) -> set[tuple[str, str, str]]:
    return set(
        Edge.objects.filter(version=draft_of(journey)).values_list("source", "port", "target")
    )


def keys(journey: Journey) -> list[str]:
    return list(
        Node.objects.filter(version=draft_of(journey)).order_by("id").values_list("key", flat=True)
    )


def node(journey: Journey, key: str) -> Node:
    return Node.objects.get(version=draft_of(journey), key=key)


# --- creating --------------------------------------------------------------------------------


def test_it_creates_a_journey_with_a_draft_holding_a_lone_trigger(world: Any) -> None:
    journey = make(world)
    draft = draft_of(journey)
    assert (journey.status, journey.created_by, draft.number) == ("draft", world.dave, 1)
    assert list(Node.objects.filter(version=draft).values_list("key", "kind")) == [
        ("n1", "trigger_event")
    ]


def test_it_creates_a_journey_from_graph_json_with_settings(world: Any) -> None:
    journey = make(
        world,
        graph=CART,
        preset="cart_abandonment",
        settings={"reentry": "after", "reentry_days": 3, "exit_events": ["Order Completed"]},
    )
    draft = draft_of(journey)
    assert keys(journey) == ["t", "w", "m"]
    assert edges(journey) == {("t", "next", "w"), ("w", "next", "m")}
    assert (draft.reentry, draft.reentry_days, draft.exit_events) == (
        "after",
        3,
        ["Order Completed"],
    )
    assert journey.preset == "cart_abandonment"


@pytest.mark.parametrize(
    ("name", "graph", "field"),
    [
        ("  ", None, "name"),
        ("x" * 121, None, "name"),
        ("Fine", {"nodes": [{"key": "a"}]}, "nodes[0].kind"),
        ("Fine", "nonsense", "graph"),
    ],
)
def test_it_refuses_a_journey_naming_the_field(
    world: Any, name: str, graph: Any, field: str
) -> None:
    with pytest.raises(JourneyError) as caught:
        make(world, name=name, graph=graph)
    assert caught.value.field == field
    assert not Journey.objects.exists()


def test_it_refuses_a_second_journey_of_the_same_name_but_not_in_another_team(world: Any) -> None:
    make(world)
    with pytest.raises(JourneyError) as caught:
        make(world)
    assert caught.value.fields == {"name": "A journey with this name already exists."}
    assert make(world, tenant=world.globex).tenant == world.globex


def test_it_renames_and_redescribes(world: Any) -> None:
    journey = make(world)
    make(world, name="Other")
    services.journey_update(journey=journey, name=" Carts ", description="Bring them back")
    journey.refresh_from_db()
    assert (journey.name, journey.description) == ("Carts", "Bring them back")
    services.journey_update(journey=journey, description="")
    assert Journey.objects.get(pk=journey.pk).name == "Carts"
    with pytest.raises(JourneyError, match="already exists"):
        services.journey_update(journey=journey, name="Other")


# --- settings --------------------------------------------------------------------------------


def test_it_saves_the_journey_settings_on_the_draft(world: Any) -> None:
    journey = make(world)
    draft = services.journey_settings_update(
        journey=journey,
        reentry="after",
        reentry_days=7,
        max_enrollments=100,
        exit_on_goal=False,
        exit_events=[" Order Completed ", "Order Completed", "Unsubscribed"],
    )
    draft.refresh_from_db()
    assert (draft.reentry, draft.reentry_days, draft.max_enrollments, draft.exit_on_goal) == (
        "after",
        7,
        100,
        False,
    )
    assert draft.exit_events == ["Order Completed", "Unsubscribed"]
    # Omitted settings are kept; leaving "after" forgets the days.
    services.journey_settings_update(journey=journey, reentry="never")
    draft.refresh_from_db()
    assert (draft.reentry, draft.reentry_days, draft.max_enrollments) == ("never", None, 100)


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"reentry": "sometimes"}, "reentry"),
        ({"reentry": "after"}, "reentry_days"),
        ({"reentry": "after", "reentry_days": 0}, "reentry_days"),
        ({"max_enrollments": -1}, "max_enrollments"),
        ({"max_enrollments": True}, "max_enrollments"),
        ({"exit_on_goal": "yes"}, "exit_on_goal"),
        ({"exit_events": ["ok", ""]}, "exit_events"),
        ({"exit_events": "Order Completed"}, "exit_events"),
    ],
)
def test_it_refuses_settings_naming_the_field(
    world: Any, values: dict[str, Any], field: str
) -> None:
    journey = make(world)
    with pytest.raises(JourneyError) as caught:
        services.journey_settings_update(journey=journey, **values)
    assert field in caught.value.fields
    assert draft_of(journey).reentry == "never"


# --- adding steps ----------------------------------------------------------------------------


def test_it_adds_a_step_after_a_port_with_the_kinds_defaults(world: Any) -> None:
    journey = make(world)
    wait = services.node_add(journey=journey, kind="wait_delay", after=("n1", "next"))
    assert (wait.key, wait.settings) == ("n2", {"amount": 1, "unit": "days"})
    email = services.node_add(
        journey=journey,
        kind="action_email",
        after=("n2", "next"),
        settings={"template": CART_TEMPLATE},
        label="Your cart",
    )
    assert (email.key, email.label, email.settings["template"]) == (
        "n3",
        "Your cart",
        CART_TEMPLATE,
    )
    assert edges(journey) == {("n1", "next", "n2"), ("n2", "next", "n3")}


def test_it_inserts_a_step_between_a_port_and_where_it_led(world: Any) -> None:
    journey = make(world, graph=CART)
    branch = services.node_add(journey=journey, kind="branch_event", after=("w", "next"))
    assert edges(journey) == {
        ("t", "next", "w"),
        ("w", "next", branch.key),
        (branch.key, "yes", "m"),
    }


def test_it_inserting_a_step_without_ports_leaves_the_rest_unconnected(world: Any) -> None:
    journey = make(world, graph=CART)
    services.node_add(journey=journey, kind="exit", after=("w", "next"))
    assert edges(journey) == {("t", "next", "w"), ("w", "next", "n1")}
    problems = selectors.journey_problems(journey=journey)
    assert ("m", "This step can't be reached from the trigger.") in {
        (p.node_key, p.message) for p in problems
    }


def test_it_adds_a_loose_step_where_it_was_dropped(world: Any) -> None:
    journey = make(world)
    loose = services.node_add(journey=journey, kind="exit", x=400, y=300)
    assert (loose.x, loose.y) == (400, 300)
    assert edges(journey) == set()


@pytest.mark.parametrize(
    ("kind", "after", "field"),
    [
        ("fax", ("n1", "next"), "kind"),
        ("trigger_api", None, "kind"),  # a second trigger
        ("wait_delay", ("n1", "yes"), "port"),
        ("wait_delay", ("n9", "next"), "key"),
    ],
)
def test_it_refuses_a_step_it_could_never_publish(
    world: Any, kind: str, after: tuple[str, str] | None, field: str
) -> None:
    journey = make(world)
    with pytest.raises(JourneyError) as caught:
        services.node_add(journey=journey, kind=kind, after=after)
    assert caught.value.field == field
    assert keys(journey) == ["n1"]


# --- changing steps --------------------------------------------------------------------------


def test_it_saves_settings_the_kind_refuses_and_reports_them_on_the_step(world: Any) -> None:
    journey = make(world, graph=CART)
    services.node_update(journey=journey, key="w", settings={"amount": "", "unit": "days"})
    assert node(journey, "w").settings == {"amount": "", "unit": "days"}
    problems = selectors.journey_problems(journey=journey)
    assert [(p.node_key, p.field) for p in problems] == [("w", "amount")]


def test_it_saves_settings_the_kind_accepts_normalised(world: Any) -> None:
    journey = make(world, graph=CART)
    updated = services.node_update(
        journey=journey, key="w", settings={"amount": 2, "unit": "hours"}, label=" Breathe "
    )
    assert (updated.settings, updated.label) == ({"amount": 2, "unit": "hours"}, "Breathe")
    assert selectors.journey_problems(journey=journey) == []


def test_it_drops_paths_of_ports_a_step_no_longer_has(world: Any) -> None:
    journey = make(world, graph=CART)
    split = services.node_add(
        journey=journey,
        kind="branch_split",
        after=("m", "next"),
        settings={"percentages": [40, 30, 30]},
    )
    for port in ("a", "b", "c"):
        end = services.node_add(journey=journey, kind="exit")
        services.edge_connect(journey=journey, source=split.key, port=port, target=end.key)
    services.node_update(journey=journey, key=split.key, settings={"percentages": [50, 50]})
    assert {port for source, port, _ in edges(journey) if source == split.key} == {"a", "b"}


def test_it_changes_the_triggers_kind(world: Any) -> None:
    journey = make(world, graph=CART)
    trigger = services.node_update(journey=journey, key="t", kind="trigger_api")
    assert (trigger.kind, trigger.settings) == ("trigger_api", {})
    assert ("t", "next", "w") in edges(journey)
    with pytest.raises(JourneyError, match="trigger already"):
        services.node_update(journey=journey, key="m", kind="trigger_signup")


def test_it_keeps_the_trigger_a_trigger(world: Any) -> None:
    journey = make(world, graph=CART)
    with pytest.raises(JourneyError, match="another kind of trigger"):
        services.node_update(journey=journey, key="t", kind="wait_delay")
    with pytest.raises(JourneyError, match="trigger already"):
        services.node_update(journey=journey, key="w", kind="trigger_api")
    assert node(journey, "t").kind == "trigger_event"
    services.graph_replace(
        journey=journey, graph={"nodes": CART["nodes"][1:], "edges": CART["edges"][1:]}
    )
    with pytest.raises(JourneyError, match="others lead to"):
        services.node_update(journey=journey, key="m", kind="trigger_api")
    assert services.node_update(journey=journey, key="w", kind="trigger_api").settings == {}


def test_it_never_reuses_a_key_an_earlier_version_had(world: Any) -> None:
    journey = make(
        world,
        graph={
            "nodes": [*CART["nodes"], {"key": "n4", "kind": "exit"}],
            "edges": [*CART["edges"], {"source": "m", "port": "next", "target": "n4"}],
        },
    )
    services.journey_publish(journey=journey)
    services.node_delete(journey=journey, key="n4")
    added = services.node_add(journey=journey, kind="action_push", after=("m", "next"))
    assert added.key == "n5"


def test_it_moves_a_step_and_back_to_the_layout(world: Any) -> None:
    journey = make(world, graph=CART)
    services.node_move(journey=journey, key="m", x=12, y=34)
    assert (node(journey, "m").x, node(journey, "m").y) == (12, 34)
    services.node_move(journey=journey, key="m", x=None, y=None)
    assert node(journey, "m").x is None


# --- deleting steps --------------------------------------------------------------------------


def test_it_deletes_a_step_from_a_chain_and_closes_the_gap(world: Any) -> None:
    journey = make(world, graph=CART)
    services.node_delete(journey=journey, key="w")
    assert keys(journey) == ["t", "m"]
    assert edges(journey) == {("t", "next", "m")}


def test_it_deletes_a_step_with_two_ways_on_and_the_paths_to_it(world: Any) -> None:
    journey = make(world, graph=CART)
    branch = services.node_add(journey=journey, kind="branch_event", after=("w", "next"))
    end = services.node_add(journey=journey, kind="exit", after=(branch.key, "no"))
    services.node_delete(journey=journey, key=branch.key)
    assert edges(journey) == {("t", "next", "w")}
    assert set(keys(journey)) == {"t", "w", "m", end.key}


def test_it_deletes_the_last_step_of_a_path(world: Any) -> None:
    journey = make(world, graph=CART)
    services.node_delete(journey=journey, key="m")
    assert edges(journey) == {("t", "next", "w")}


def test_it_keeps_the_trigger(world: Any) -> None:
    journey = make(world, graph=CART)
    with pytest.raises(JourneyError, match="trigger can't be deleted"):
        services.node_delete(journey=journey, key="t")
    with pytest.raises(JourneyError):
        services.node_delete(journey=journey, key="nope")


# --- connecting ------------------------------------------------------------------------------


def test_it_connects_and_reconnects_a_port(world: Any) -> None:
    journey = make(world, graph=CART)
    end = services.node_add(journey=journey, kind="exit")
    services.edge_connect(journey=journey, source="w", port="next", target=end.key)
    assert edges(journey) == {("t", "next", "w"), ("w", "next", end.key)}
    services.edge_connect(journey=journey, source="m", port="next", target=end.key)
    assert ("m", "next", end.key) in edges(journey)


@pytest.mark.parametrize(
    ("source", "port", "target", "field"),
    [
        ("w", "next", "w", "target"),
        ("w", "next", "t", "target"),
        ("w", "yes", "m", "port"),
        ("w", "next", "zz", "key"),
        ("zz", "next", "m", "key"),
    ],
)
def test_it_refuses_a_connection_that_could_never_be_right(
    world: Any, source: str, port: str, target: str, field: str
) -> None:
    journey = make(world, graph=CART)
    with pytest.raises(JourneyError) as caught:
        services.edge_connect(journey=journey, source=source, port=port, target=target)
    assert caught.value.field == field
    assert edges(journey) == {("t", "next", "w"), ("w", "next", "m")}


def test_it_allows_a_loop_while_editing_and_publishing_refuses_it(world: Any) -> None:
    journey = make(world, graph=CART)
    services.edge_connect(journey=journey, source="m", port="next", target="w")
    assert selectors.journey_problems(journey=journey) == []  # the loop passes the wait
    services.node_delete(journey=journey, key="w")  # t → m → (nothing)
    services.node_add(journey=journey, kind="action_update", after=("m", "next"))
    services.edge_connect(journey=journey, source="n1", port="next", target="m")
    assert {p.node_key for p in selectors.journey_problems(journey=journey)} >= {"m", "n1"}


def test_it_disconnects_a_port(world: Any) -> None:
    journey = make(world, graph=CART)
    services.edge_disconnect(journey=journey, source="w", port="next")
    services.edge_disconnect(journey=journey, source="w", port="next")
    assert edges(journey) == {("t", "next", "w")}


# --- replacing the whole graph ---------------------------------------------------------------


def test_it_replaces_the_drafts_graph(world: Any) -> None:
    journey = make(world)
    draft = services.graph_replace(journey=journey, graph=CART, settings={"max_enrollments": 5})
    assert draft == draft_of(journey)
    assert keys(journey) == ["t", "w", "m"]
    assert draft_of(journey).max_enrollments == 5


def test_it_refuses_a_graph_it_cannot_store_and_keeps_the_old_one(world: Any) -> None:
    journey = make(world, graph=CART)
    broken = {"nodes": CART["nodes"], "edges": [*CART["edges"], CART["edges"][0]]}
    with pytest.raises(JourneyError) as caught:
        services.graph_replace(journey=journey, graph=broken)
    assert caught.value.field == "edges[2].port"
    assert keys(journey) == ["t", "w", "m"]


# --- editing after publishing ----------------------------------------------------------------


def test_it_edits_a_published_journey_on_a_new_draft_with_the_same_keys(world: Any) -> None:
    journey = make(world, graph=CART, settings={"exit_events": ["Order Completed"]})
    v1 = services.journey_publish(journey=journey, actor=world.dave)
    assert selectors.journey_draft(journey=journey) is None
    services.node_update(journey=journey, key="w", settings={"amount": 2, "unit": "hours"})
    v2 = draft_of(journey)
    assert (v2.number, v2.state, v2.exit_events) == (2, "draft", ["Order Completed"])
    assert keys(journey) == ["t", "w", "m"]
    assert edges(journey) == {("t", "next", "w"), ("w", "next", "m")}
    # The published version is untouched.
    assert Node.objects.get(version=v1, key="w").settings == {"amount": 30, "unit": "minutes"}
    # Further edits go to the same draft.
    services.node_move(journey=journey, key="w", x=1, y=1)
    assert JourneyVersion.objects.filter(journey=journey).count() == 2


# --- the journey's life ----------------------------------------------------------------------


def published(world: Any, **kw: Any) -> Journey:
    journey = make(world, graph=CART, **kw)
    services.journey_publish(journey=journey, actor=world.dave)
    return journey


def enroll(journey: Journey, contact: Contact, *, state: str = "waiting", at: str = "w") -> Any:
    version = selectors.journey_published(journey=journey)
    return Enrollment.objects.create(
        tenant=journey.tenant,
        journey=journey,
        version=version,
        contact=contact,
        node_key=at,
        state=state,
    )


def test_it_pauses_and_resumes_only_between_live_and_paused(world: Any) -> None:
    draft = make(world, name="Draft")
    with pytest.raises(JourneyConflict, match="Only a live journey can be paused"):
        services.journey_pause(journey=draft)
    with pytest.raises(JourneyConflict, match="Only a paused journey can be resumed"):
        services.journey_resume(journey=draft)
    journey = published(world)
    services.journey_pause(journey=journey, actor=world.dave)
    assert Journey.objects.get(pk=journey.pk).status == "paused"
    with pytest.raises(JourneyConflict):
        services.journey_pause(journey=journey)
    services.journey_resume(journey=journey)
    assert Journey.objects.get(pk=journey.pk).status == journey.status == "live"


def test_it_resumes_without_touching_due_times(world: Any, contact: Contact) -> None:
    journey = published(world)
    enrollment = enroll(journey, contact, state="active")
    due = enrollment.due_at
    services.journey_pause(journey=journey)
    services.journey_resume(journey=journey)
    enrollment.refresh_from_db()
    assert (enrollment.state, enrollment.due_at) == ("active", due)


def test_it_archives_and_everyone_in_it_exits(world: Any, contact: Contact) -> None:
    journey = published(world)
    other = Contact.objects.create(tenant=world.acme, email="bo@example.com")
    third = Contact.objects.create(tenant=world.acme, email="cy@example.com")
    waiting = enroll(journey, contact)
    active = enroll(journey, other, state="active", at="m")
    done = enroll(journey, third, state="completed", at="m")
    services.journey_archive(journey=journey, actor=world.dave)
    assert journey.status == "archived"
    for e in (waiting, active, done):
        e.refresh_from_db()
    assert (waiting.state, active.state, done.state) == ("exited", "exited", "completed")
    assert waiting.finished_at is not None and waiting.due_at is None
    assert list(Step.objects.values_list("enrollment", "node_key", "result", "detail")) == [
        (waiting.pk, "w", "exited", {"reason": "archived"}),
        (active.pk, "m", "exited", {"reason": "archived"}),
    ]
    # Archiving again changes nothing; an archived journey neither pauses nor publishes.
    services.journey_archive(journey=journey)
    assert Step.objects.count() == 2
    with pytest.raises(JourneyConflict):
        services.journey_pause(journey=journey)
    services.node_move(journey=journey, key="w", x=1, y=1)
    with pytest.raises(JourneyConflict):
        services.journey_publish(journey=journey)


def test_it_deletes_only_a_journey_never_published(world: Any) -> None:
    draft = make(world, name="Draft")
    services.journey_delete(journey=draft)
    assert not Journey.objects.filter(pk=draft.pk).exists()
    journey = published(world)
    services.journey_archive(journey=journey)
    with pytest.raises(JourneyConflict, match="archive"):
        services.journey_delete(journey=journey)
    assert Journey.objects.filter(pk=journey.pk).exists()


# --- enrolling and retrying ------------------------------------------------------------------

API = {
    "nodes": [
        {"key": "t", "kind": "trigger_api"},
        {"key": "w", "kind": "wait_delay", "settings": {"amount": 1, "unit": "days"}},
    ],
    "edges": [{"source": "t", "port": "next", "target": "w"}],
}


def test_it_enrolls_a_contact_through_the_api_trigger(world: Any, contact: Contact) -> None:
    journey = make(world, graph=API)
    services.journey_publish(journey=journey)
    enrollment = services.journey_enroll(
        tenant=world.acme, journey=journey, contact=contact, data={"coupon": "X1"}
    )
    assert enrollment.contact == contact
    assert enrollment.context["data"] == {"coupon": "X1"}
    # Once in, not twice at the same time.
    with pytest.raises(JourneyConflict, match="can't enter"):
        services.journey_enroll(journey=journey, contact=contact)


def test_it_refuses_to_enroll_where_the_journey_does_not_allow_it(
    world: Any, contact: Contact
) -> None:
    not_api = published(world)
    with pytest.raises(JourneyConflict, match="through the API"):
        services.journey_enroll(journey=not_api, contact=contact)
    never_published = make(world, name="Soon", graph=API)
    with pytest.raises(JourneyConflict, match="live"):
        services.journey_enroll(journey=never_published, contact=contact)
    paused = make(world, name="Held", graph=API)
    services.journey_publish(journey=paused)
    services.journey_pause(journey=paused)
    with pytest.raises(JourneyConflict, match="live"):
        services.journey_enroll(journey=paused, contact=contact)
    services.journey_resume(journey=paused)
    stranger = Contact.objects.create(tenant=world.globex, email="g@example.com")
    with pytest.raises(JourneyError, match="No such contact"):
        services.journey_enroll(journey=paused, contact=stranger)
    assert not Enrollment.objects.exists()


def test_it_retries_failed_enrollments_of_this_journey_only(world: Any, contact: Contact) -> None:
    journey = published(world)
    other_journey = published(world, name="Other")
    failed = enroll(journey, contact, state="failed", at="m")
    elsewhere = enroll(other_journey, contact, state="failed", at="m")
    assert services.enrollments_retry(journey=journey, enrollments=[failed, elsewhere]) == 1
    failed.refresh_from_db()
    elsewhere.refresh_from_db()
    assert (failed.state, elsewhere.state) == ("active", "failed")


def test_it_does_not_retry_the_people_of_an_archived_journey(world: Any, contact: Contact) -> None:
    journey = published(world)
    failed = enroll(journey, contact, state="failed", at="m")
    services.journey_archive(journey=journey)
    # The engine runs no one of an archived journey: a retry would leave them open for ever.
    with pytest.raises(services.JourneyConflict):
        services.enrollments_retry(journey=journey, enrollments=[failed])
    failed.refresh_from_db()
    assert failed.state == "failed"


# --- tenancy ---------------------------------------------------------------------------------


def test_it_refuses_a_tenant_that_is_not_the_journeys(world: Any) -> None:
    journey = make(world, graph=CART)
    calls = [
        lambda: services.journey_update(tenant=world.globex, journey=journey, name="Mine"),
        lambda: services.node_add(tenant=world.globex, journey=journey, kind="exit"),
        lambda: services.node_delete(tenant=world.globex, journey=journey, key="m"),
        lambda: services.edge_disconnect(
            tenant=world.globex, journey=journey, source="t", port="next"
        ),
        lambda: services.graph_replace(tenant=world.globex, journey=journey, graph=CART),
        lambda: services.journey_publish(tenant=world.globex, journey=journey),
        lambda: services.journey_archive(tenant=world.globex, journey=journey),
        lambda: services.journey_delete(tenant=world.globex, journey=journey),
    ]
    for call in calls:
        with pytest.raises(Http404):
            call()
    assert keys(journey) == ["t", "w", "m"]
    assert Journey.objects.get(pk=journey.pk).status == "draft"


def test_it_never_touches_another_teams_journey_with_the_same_keys(world: Any) -> None:
    ours = make(world, graph=CART)
    theirs = make(world, graph=CART, tenant=world.globex)
    services.journey_publish(tenant=world.acme, journey=ours)
    services.node_update(tenant=world.acme, journey=ours, key="w", settings={"amount": 9})
    services.node_delete(tenant=world.acme, journey=ours, key="m")
    services.edge_disconnect(tenant=world.acme, journey=ours, source="t", port="next")
    services.journey_archive(tenant=world.acme, journey=ours)
    assert Journey.objects.get(pk=theirs.pk).status == "draft"
    assert keys(theirs) == ["t", "w", "m"]
    assert edges(theirs) == {("t", "next", "w"), ("w", "next", "m")}
    assert node(theirs, "w").settings == {"amount": 30, "unit": "minutes"}
