"""The journeys UI over HTTP: the list, the editor page and each of its htmx parts, every change
through the services, roles (viewers look, marketers change), other tenants' journeys as 404,
and the form errors a marketer sees (on the form and on the card)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.urls import reverse

from audience.models import Contact
from journeys import services
from journeys.models import Edge, Enrollment, Journey, JourneyVersion, Node, Step
from messaging.models import Channel, Template

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "canvas"}


@pytest.fixture
def journey(world: Any) -> Journey:
    return services.journey_create(tenant=world.acme, name="Cart rescue", actor=world.dave)


@pytest.fixture
def cart_template(world: Any) -> Template:
    return Template.objects.create(
        tenant=world.acme,
        name="Your cart",
        channel=Channel.EMAIL,
        subject="You left something",
        html="<p>{% for item in cart.items %}{{ item.name }} {% endfor %}</p>",
    )


def url(name: str, journey: Journey, *rest: str, tenant: str = "acme") -> str:
    return reverse(name, args=[tenant, journey.public_id, *rest])


def draft_nodes(journey: Journey) -> dict[str, Node]:
    draft = JourneyVersion.objects.get(journey=journey, state="draft")
    return {n.key: n for n in Node.objects.filter(version=draft)}


def draft_edges(journey: Journey) -> set[tuple[str, str, str]]:
    draft = JourneyVersion.objects.get(journey=journey, state="draft")
    return {(e.source, e.port, e.target) for e in Edge.objects.filter(version=draft)}


# --- the list ----------------------------------------------------------------------------------


def test_it_lists_journeys_with_status_version_people_and_conversions(
    login: Any, world: Any, journey: Journey
) -> None:
    response = login(world.bob).get("/t/acme/journeys/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Cart rescue" in html
    assert "status-draft" in html
    assert "Start from a ready-made journey" in html
    assert "New journey" not in html  # a viewer cannot make one
    assert "Use this journey" not in html


def test_it_shows_new_journey_and_the_gallery_to_marketers(login: Any, world: Any) -> None:
    html = login(world.dave).get("/t/acme/journeys/").content.decode()
    assert "New journey" in html
    assert "Cart abandonment" in html
    assert "Use this journey" in html


def test_it_creates_a_journey_and_opens_the_editor(login: Any, world: Any) -> None:
    response = login(world.dave).post("/t/acme/journeys/new/", {"name": "Welcome"})
    journey = Journey.objects.get(tenant=world.acme, name="Welcome")
    assert response.status_code == 302
    assert response["Location"] == f"/t/acme/journeys/{journey.public_id}/"


def test_it_refuses_a_taken_name_on_the_form(login: Any, world: Any, journey: Journey) -> None:
    response = login(world.dave).post("/t/acme/journeys/new/", {"name": "Cart rescue"})
    assert response.status_code == 400
    assert "already exists" in response.content.decode()


def test_it_makes_a_journey_from_a_ready_made_one(login: Any, world: Any) -> None:
    response = login(world.dave).post("/t/acme/journeys/presets/", {"key": "cart_abandonment"})
    journey = Journey.objects.get(tenant=world.acme, preset="cart_abandonment")
    assert response["Location"] == f"/t/acme/journeys/{journey.public_id}/"
    assert login(world.dave).post("/t/acme/journeys/presets/", {"key": "nope"}).status_code == 404


# --- the editor page ---------------------------------------------------------------------------


def test_it_draws_the_canvas_with_cards_ports_and_edges(
    login: Any, world: Any, journey: Journey, cart_template: Template
) -> None:
    services.node_add(journey=journey, kind="wait_event", after=("n1", "next"))
    services.node_add(journey=journey, kind="action_email", after=("n2", "timeout"))
    html = login(world.dave).get(url("journey_editor", journey)).content.decode()
    assert html.count('class="node-card') == 3
    assert 'id="node-n1"' in html and 'id="node-n3"' in html
    assert html.count('<path class="edge"') == 2
    assert "Timed out" in html and "Did it" in html
    # A free port has its "+" button, labelled for a screen reader.
    assert re.search(r'<button type="button" class="port-add"[^>]*data-port="event"', html)
    # Every card is focusable and positioned from the server's layout.
    assert re.search(r'id="node-n2" tabindex="0"', html)
    assert "Editing" not in html and "Draft v1" in html


def test_it_marks_a_step_with_a_problem_on_its_card(
    login: Any, world: Any, journey: Journey
) -> None:
    html = login(world.dave).get(url("journey_editor", journey)).content.decode()
    # The lone trigger has no event yet: the card turns red and says so.
    assert "has-problem" in html
    assert "Event is required" in html


def test_it_answers_another_tenants_journey_with_404(
    login: Any, world: Any, journey: Journey
) -> None:
    client = login(world.charlie)
    assert client.get(url("journey_editor", journey, tenant="globex")).status_code == 404
    assert (
        client.post(url("journey_node_add", journey, tenant="globex"), {"kind": "exit"}).status_code
        == 404
    )


def test_it_lets_a_viewer_look_but_not_change(login: Any, world: Any, journey: Journey) -> None:
    client = login(world.bob)
    html = client.get(url("journey_editor", journey)).content.decode()
    assert "viewers cannot change it" in html
    assert "port-add" not in html
    assert 'id="palette"' not in html
    response = client.post(
        url("journey_node_add", journey), {"kind": "exit", "source": "n1", "port": "next"}
    )
    assert response.status_code == 403
    assert set(draft_nodes(journey)) == {"n1"}


# --- changes through htmx ----------------------------------------------------------------------


def test_it_adds_a_step_after_a_port_and_opens_its_settings(
    login: Any, world: Any, journey: Journey
) -> None:
    response = login(world.dave).post(
        url("journey_node_add", journey),
        {"kind": "wait_delay", "source": "n1", "port": "next"},
        **HTMX,
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert html.startswith('<div id="canvas"') or '<div id="canvas"' in html[:200]
    assert 'id="panel"' in html and 'hx-swap-oob="true"' in html
    assert 'name="setting-amount"' in html
    assert ("n1", "next", "n2") in draft_edges(journey)


def test_it_saves_settings_and_shows_the_kinds_errors_on_the_form_and_the_card(
    login: Any, world: Any, journey: Journey
) -> None:
    client = login(world.dave)
    response = client.post(
        url("journey_node", journey, "n1"),
        {"label": "Added to cart", "setting-event": "", "setting-filters-rows": "1"},
        **HTMX,
    )
    html = response.content.decode()
    assert "Event is required" in html
    assert 'aria-invalid="true"' in html
    assert "has-problem" in html
    response = client.post(
        url("journey_node", journey, "n1"),
        {
            "label": "Added to cart",
            "setting-event": "Product Added",
            "setting-filters-rows": "1",
            "setting-filters-0-property": "total",
            "setting-filters-0-operator": "gt",
            "setting-filters-0-value": "50",
        },
        **HTMX,
    )
    assert response.status_code == 200
    node = draft_nodes(journey)["n1"]
    assert node.label == "Added to cart"
    assert node.settings["event"] == "Product Added"
    assert node.settings["filters"] == [{"property": "total", "operator": "gt", "value": "50"}]
    assert "has-problem" not in response.content.decode()


def test_it_says_what_is_wrong_with_json_settings(login: Any, world: Any, journey: Journey) -> None:
    services.node_add(journey=journey, kind="action_webhook", after=("n1", "next"))
    response = login(world.dave).post(
        url("journey_node", journey, "n2"),
        {"setting-url": "https://hooks.example/x", "setting-payload": "{nope"},
        **HTMX,
    )
    assert response.status_code == 400
    assert "is not valid JSON" in response.content.decode()


def test_it_moves_connects_and_deletes_steps(login: Any, world: Any, journey: Journey) -> None:
    client = login(world.dave)
    services.node_add(journey=journey, kind="wait_delay", after=("n1", "next"))
    services.node_add(journey=journey, kind="exit", after=("n2", "next"))
    response = client.post(
        url("journey_node_move", journey, "n2"), {"x": "400", "y": "260"}, **HTMX
    )
    assert response.status_code == 200
    assert 'id="node-n2"' in response.content.decode()
    assert (draft_nodes(journey)["n2"].x, draft_nodes(journey)["n2"].y) == (400, 260)

    client.post(url("journey_node_connect", journey, "n2"), {"port": "next", "target": ""}, **HTMX)
    assert ("n2", "next", "n3") not in draft_edges(journey)
    client.post(
        url("journey_node_connect", journey, "n2"), {"port": "next", "target": "n3"}, **HTMX
    )
    assert ("n2", "next", "n3") in draft_edges(journey)
    response = client.post(
        url("journey_node_connect", journey, "n2"), {"port": "next", "target": "n1"}, **HTMX
    )
    assert response.status_code == 400
    assert "trigger" in response.content.decode()

    client.post(url("journey_node_delete", journey, "n2"), **HTMX)
    assert set(draft_nodes(journey)) == {"n1", "n3"}
    assert ("n1", "next", "n3") in draft_edges(journey)


def test_it_refuses_a_move_that_is_not_two_numbers(
    login: Any, world: Any, journey: Journey
) -> None:
    client = login(world.dave)
    for x in ("left", "inf", "nan"):
        response = client.post(url("journey_node_move", journey, "n1"), {"x": x, "y": "1"}, **HTMX)
        assert response.status_code == 400, x
    # Far off the canvas: kept at its edge (the column holds it), not a failed save.
    response = client.post(url("journey_node_move", journey, "n1"), {"x": "1e30", "y": "5"}, **HTMX)
    assert response.status_code == 200
    assert draft_nodes(journey)["n1"].x == 1_000_000


def test_it_changes_what_starts_the_journey(login: Any, world: Any, journey: Journey) -> None:
    response = login(world.dave).post(
        url("journey_node", journey, "n1"),
        {"kind": "trigger_date", "label": "", "setting-event": "Product Added"},
        **HTMX,
    )
    assert response.status_code == 200
    trigger = draft_nodes(journey)["n1"]
    assert trigger.kind == "trigger_date"
    assert trigger.settings["attribute"] == "birthday"  # the new kind's defaults
    assert "Starts when" in response.content.decode()


def test_it_refuses_settings_the_database_cannot_store_as_a_form_error(
    login: Any, world: Any, journey: Journey
) -> None:
    client = login(world.dave)
    response = client.post(
        url("journey_node", journey, "n1"),
        {"setting-event": "Product\x00Added", "setting-filters-rows": "many"},
        **HTMX,
    )
    assert response.status_code == 400
    assert "contains the NUL character" in response.content.decode()
    services.node_add(journey=journey, kind="action_webhook", after=("n1", "next"))
    response = client.post(
        url("journey_node", journey, "n2"),
        {"setting-url": "https://hooks.example/x", "setting-payload": '{"a": NaN}'},
        **HTMX,
    )
    assert response.status_code == 400
    response = client.post(url("journey_node", journey, "n2"), {"label": "A\x00B"}, **HTMX)
    assert response.status_code == 400
    assert draft_nodes(journey)["n2"].label == ""


def test_it_polls_counts_into_the_cards(login: Any, world: Any, journey_factory: Any) -> None:
    live = journey_factory(
        {
            "t": ("trigger_event", {"event": "Product Added"}),
            "w": ("wait_delay", {"amount": 1, "unit": "days"}),
        },
        "t.next>w",
    )
    contact = Contact.objects.create(tenant=world.acme, email="ann@example.com")
    version = JourneyVersion.objects.get(journey=live)
    enrollment = Enrollment.objects.create(
        tenant=world.acme,
        journey=live,
        version=version,
        contact=contact,
        node_key="w",
        state="waiting",
    )
    Step.objects.create(
        tenant=world.acme, enrollment=enrollment, version=version, node_key="w", result="waiting"
    )
    client = login(world.bob)
    page = client.get(url("journey_editor", live)).content.decode()
    assert 'hx-trigger="every 5s"' in page
    html = client.get(url("journey_counts", live), HTTP_HX_REQUEST="true").content.decode()
    assert 'id="counts-w" hx-swap-oob="innerHTML"' in html
    assert re.search(r'count-waiting has-some"><b>1</b>', html)
    people = client.get(
        url("journey_node_people", live, "w"), HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "ann@example.com" in people


def test_it_lists_failed_people_with_the_reason_and_retries_them(
    login: Any, world: Any, journey_factory: Any
) -> None:
    live = journey_factory(
        {
            "t": ("trigger_event", {"event": "Product Added"}),
            "h": ("action_webhook", {"url": "https://x.example/"}),
        },
        "t.next>h",
    )
    contact = Contact.objects.create(tenant=world.acme, email="ann@example.com")
    version = JourneyVersion.objects.get(journey=live)
    failed = Enrollment.objects.create(
        tenant=world.acme,
        journey=live,
        version=version,
        contact=contact,
        node_key="h",
        state="failed",
        failure="The endpoint answered 500.",
    )
    html = (
        login(world.dave)
        .get(url("journey_node_people", live, "h") + "?count=failed")
        .content.decode()
    )
    assert "The endpoint answered 500." in html
    assert f'value="{failed.public_id}"' in html
    response = login(world.dave).post(
        url("journey_retry", live), {"enrollment": str(failed.public_id), "node": "h"}
    )
    assert response.status_code == 302
    failed.refresh_from_db()
    assert failed.state != "failed"


# --- the toolbar -------------------------------------------------------------------------------


def test_it_refuses_to_publish_an_invalid_graph_and_links_the_steps(
    login: Any, world: Any, journey: Journey
) -> None:
    client = login(world.dave)
    html = client.get(url("journey_publish", journey), HTTP_HX_REQUEST="true").content.decode()
    assert "Not ready to publish" in html
    assert 'data-focus-node="n1"' in html
    response = client.post(url("journey_publish", journey), {"move_waiting": "no"})
    assert response.status_code == 400
    journey.refresh_from_db()
    assert journey.status == "draft"


def test_it_publishes_then_edits_a_draft_and_asks_about_people_in_flight(
    login: Any, world: Any, journey: Journey
) -> None:
    client = login(world.dave)
    services.node_update(journey=journey, key="n1", settings={"event": "Product Added"})
    services.node_add(journey=journey, kind="wait_delay", after=("n1", "next"))
    response = client.post(url("journey_publish", journey), {"move_waiting": "no"})
    assert response.status_code == 302
    journey.refresh_from_db()
    assert journey.status == "live"
    html = client.get(url("journey_editor", journey)).content.decode()
    assert "Live: v1" in html
    assert "Publish…" not in html  # nothing to publish until something changes

    # A change makes the draft of v2; with someone waiting, publishing asks what to do.
    client.post(
        url("journey_node", journey, "n2"), {"setting-amount": "2", "setting-unit": "hours"}, **HTMX
    )
    contact = Contact.objects.create(tenant=world.acme, email="ann@example.com")
    v1 = JourneyVersion.objects.get(journey=journey, number=1)
    Enrollment.objects.create(
        tenant=world.acme,
        journey=journey,
        version=v1,
        contact=contact,
        node_key="n2",
        state="waiting",
    )
    html = client.get(url("journey_editor", journey)).content.decode()
    assert "Editing the draft of v2 · Live: v1" in html
    html = client.get(url("journey_publish", journey), HTTP_HX_REQUEST="true").content.decode()
    assert "Move them to v2" in html and "Let them finish on v1" in html
    client.post(url("journey_publish", journey), {"move_waiting": "yes"})
    enrollment = Enrollment.objects.get(journey=journey)
    assert enrollment.version.number == 2
    assert Step.objects.filter(enrollment=enrollment, result="moved").exists()

    # Published versions are read-only views.
    html = client.get(url("journey_editor", journey) + "?version=1").content.decode()
    assert "Looking at v1 (read-only)" not in html or "port-add" not in html
    assert "port-add" not in html


def test_it_saves_settings_and_renames(login: Any, world: Any, journey: Journey) -> None:
    client = login(world.dave)
    html = client.get(url("journey_settings", journey), HTTP_HX_REQUEST="true").content.decode()
    assert "Journey settings" in html
    response = client.post(
        url("journey_settings", journey),
        {"reentry": "after", "reentry_days": "", "exit_events": ""},
    )
    assert response.status_code == 400
    assert "Say after how many days" in response.content.decode()
    client.post(
        url("journey_settings", journey),
        {
            "reentry": "after",
            "reentry_days": "30",
            "max_enrollments": "1000",
            "exit_on_goal": "on",
            "exit_events": "Order Completed\nUnsubscribed",
        },
    )
    draft = JourneyVersion.objects.get(journey=journey, state="draft")
    assert (draft.reentry, draft.reentry_days, draft.max_enrollments) == ("after", 30, 1000)
    assert draft.exit_events == ["Order Completed", "Unsubscribed"]
    client.post(url("journey_rename", journey), {"name": "Cart rescue 2"})
    journey.refresh_from_db()
    assert journey.name == "Cart rescue 2"


def test_it_pauses_resumes_and_archives(login: Any, world: Any, journey_factory: Any) -> None:
    live = journey_factory({"t": ("trigger_event", {"event": "Product Added"})})
    client = login(world.dave)
    client.post(url("journey_pause", live))
    live.refresh_from_db()
    assert live.status == "paused"
    client.post(url("journey_resume", live))
    live.refresh_from_db()
    assert live.status == "live"
    client.post(url("journey_archive", live))
    live.refresh_from_db()
    assert live.status == "archived"
    html = client.get(url("journey_editor", live)).content.decode()
    assert "port-add" not in html


# --- the test run ------------------------------------------------------------------------------


def test_it_finds_a_contact_and_shows_the_path_without_sending(
    login: Any, world: Any, journey: Journey, cart_template: Template
) -> None:
    services.node_update(journey=journey, key="n1", settings={"event": "Product Added"})
    services.node_add(
        journey=journey,
        kind="action_email",
        after=("n1", "next"),
        settings={"template": str(cart_template.public_id)},
    )
    contact = Contact.objects.create(
        tenant=world.acme, email="ann@example.com", email_consent="granted"
    )
    client = login(world.dave)
    html = client.get(
        url("journey_test_run", journey) + "?q=ann", HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "ann@example.com" in html
    html = client.get(
        url("journey_test_run", journey) + f"?contact={contact.public_id}", HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "would…" in html
    assert "Your cart" in html
    from messaging.models import Delivery

    assert not Delivery.objects.exists()


def test_it_asks_to_confirm_the_address_before_sending_test_messages(
    login: Any, world: Any, journey: Journey
) -> None:
    world.dave.email_verified_at = None
    world.dave.save()
    contact = Contact.objects.create(tenant=world.acme, email="ann@example.com")
    response = login(world.dave).post(
        url("journey_test_send", journey), {"contact": str(contact.public_id)}
    )
    assert response.status_code == 302
    page = login(world.dave).get(response["Location"]).content.decode()
    assert "Confirm your email address first" in page
