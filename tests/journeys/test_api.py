"""The journeys REST API: always within the key's tenant, the graph as JSON, refusals that name
the field (or the node), 409 where the journey's state forbids a change."""

from __future__ import annotations

from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator

from audience.models import Contact
from audience.segment_spec import parse_call
from audience.services import calls_record
from journeys import services
from journeys.models import Enrollment, Journey, JourneyVersion, Step
from tests.factories import api_key

pytestmark = pytest.mark.django_db


def node(key: str, kind: str, **settings: Any) -> dict[str, Any]:
    return {"key": key, "kind": kind, "label": "", "settings": settings, "x": None, "y": None}


def edge(source: str, target: str, port: str = "next") -> dict[str, str]:
    return {"source": source, "port": port, "target": target}


def api_graph() -> dict[str, Any]:
    """Enrolled through the API → wait a day → done."""
    return {
        "nodes": [
            node("start", "trigger_api"),
            node("wait", "wait_delay", amount=1, unit="days"),
        ],
        "edges": [edge("start", "wait")],
    }


def event_graph() -> dict[str, Any]:
    return {
        "nodes": [
            node("start", "trigger_event", event="Product Added", filters=[]),
            node("wait", "wait_delay", amount=30, unit="minutes"),
        ],
        "edges": [edge("start", "wait")],
    }


def make(tenant: Any, name: str = "Welcome", graph: dict[str, Any] | None = None) -> Journey:
    return services.journey_create(tenant=tenant, name=name, graph=graph or api_graph())


def live(tenant: Any, name: str = "Welcome", graph: dict[str, Any] | None = None) -> Journey:
    journey = make(tenant, name, graph)
    services.journey_publish(journey=journey)
    journey.refresh_from_db()
    return journey


def error_fields(response: Any) -> dict[str, Any]:
    assert response.status_code == 400, response.content
    body = response.json()["error"]
    assert body["code"] == "invalid"
    return body["fields"]


def conflict(response: Any) -> str:
    assert response.status_code == 409, response.content
    body = response.json()["error"]
    assert body["code"] == "conflict"
    return body["message"]


def person(tenant: Any, user_id: str) -> Contact:
    """A contact as tracking makes one (with its user id identity, which look-ups use)."""
    call = {
        "type": "identify",
        "userId": user_id,
        "traits": {"email": f"{user_id}@example.com"},
        "messageId": f"{user_id}-i",
    }
    calls_record(tenant=tenant, calls=[parse_call(call)])
    return Contact.objects.get(tenant=tenant, user_id=user_id)


@pytest.fixture
def people(world):  # type: ignore[no-untyped-def]
    return {"ann": person(world.acme, "ann"), "gus": person(world.globex, "gus")}


# --- create, read, change, delete ---------------------------------------------------------------


def test_it_creates_a_journey_with_its_graph_and_settings_and_shows_it(api, world) -> None:
    created = api(
        "post",
        "journeys/",
        {
            "name": " Welcome series ",
            "description": "For new sign-ups",
            "settings": {"reentry": "after", "reentry_days": 30, "exit_events": ["Unsubscribed"]},
            "graph": api_graph(),
        },
    )
    assert created.status_code == 201, created.content
    body = created.json()
    journey = Journey.objects.get(tenant=world.acme)
    assert body["id"] == str(journey.public_id)
    assert (body["name"], body["description"], body["status"]) == (
        "Welcome series",
        "For new sign-ups",
        "draft",
    )
    assert body["published"] is None and body["live_version"] is None
    draft = body["draft"]
    assert draft["number"] == 1 and draft["state"] == "draft"
    assert draft["settings"] == {
        "reentry": "after",
        "reentry_days": 30,
        "max_enrollments": None,
        "exit_on_goal": True,
        "exit_events": ["Unsubscribed"],
    }
    assert [n["key"] for n in draft["graph"]["nodes"]] == ["start", "wait"]
    assert draft["graph"]["nodes"][1]["settings"] == {"amount": 1, "unit": "days"}
    assert draft["graph"]["edges"] == [edge("start", "wait")]

    shown = api("get", f"journeys/{journey.public_id}/").json()
    assert shown == body


def test_it_starts_a_journey_without_a_graph_with_a_lone_trigger(api) -> None:
    body = api("post", "journeys/", {"name": "Empty"}).json()
    assert [n["kind"] for n in body["draft"]["graph"]["nodes"]] == ["trigger_event"]


def test_it_lists_journeys_newest_first_in_pages_with_their_live_version(api, world) -> None:
    make(world.acme, "First")
    live(world.acme, "Second")
    make(world.globex, "Globex secret")
    page = api("get", "journeys/?limit=1").json()
    assert [j["name"] for j in page["results"]] == ["Second"]
    assert page["results"][0]["live_version"] == 1
    assert page["results"][0]["status"] == "live"
    rest = api("get", page["next"].split("/api/v1/")[1]).json()
    assert [j["name"] for j in rest["results"]] == ["First"]
    assert rest["next"] is None
    assert [j["name"] for j in api("get", "journeys/?status=live").json()["results"]] == ["Second"]
    assert "status" in error_fields(api("get", "journeys/?status=sleeping"))


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"name": "  ", "graph": api_graph()}, "name", "Give the journey a name."),
        ({"name": "Taken"}, "name", "A journey with this name already exists."),
        ({"graph": api_graph()}, "name", "This field is required."),
        (
            {"name": "Bad", "graph": {"nodes": [node("a", "trigger_api"), node("a", "exit")]}},
            "graph",
            "“a” is used by another step.",
        ),
        (
            {"name": "Bad", "settings": {"reentry": "sometimes"}},
            "settings",
            '"sometimes" is not a valid choice.',
        ),
    ],
)
def test_it_refuses_a_bad_journey_naming_the_field_and_saves_nothing(
    api, world, body, field, message
) -> None:
    make(world.acme, "Taken")
    fields = error_fields(api("post", "journeys/", body))
    assert list(fields) == [field]
    assert message in str(fields[field])
    assert Journey.objects.filter(tenant=world.acme).count() == 1


def test_it_names_the_graph_path_at_fault(api, world) -> None:
    bad = {"name": "Bad", "graph": {"nodes": [node("a", "trigger_api"), {"kind": "exit"}]}}
    fields = error_fields(api("post", "journeys/", bad))
    assert list(fields["graph"]) == ["nodes[1].key"]


def test_it_patches_name_description_and_settings_of_the_draft(api, world) -> None:
    journey = live(world.acme)
    path = f"journeys/{journey.public_id}/"
    changed = api("patch", path, {"name": "Hello", "settings": {"max_enrollments": 500}})
    assert changed.status_code == 200, changed.content
    body = changed.json()
    assert body["name"] == "Hello"
    # Settings are published like the graph: a new draft holds them, the live one is as was.
    assert body["draft"]["number"] == 2 and body["draft"]["settings"]["max_enrollments"] == 500
    assert body["published"]["settings"]["max_enrollments"] is None
    fields = error_fields(api("patch", path, {"settings": {"reentry": "after"}}))
    assert fields == {
        "settings": {"reentry_days": ["Say after how many days people may enter again."]}
    }
    make(world.acme, "Other")
    assert "name" in error_fields(api("patch", path, {"name": "Other"}))
    journey.refresh_from_db()
    assert journey.name == "Hello"


def test_it_replaces_the_drafts_graph(api, world) -> None:
    journey = make(world.acme)
    graph = event_graph()
    replaced = api("put", f"journeys/{journey.public_id}/graph/", graph)
    assert replaced.status_code == 200, replaced.content
    nodes = replaced.json()["draft"]["graph"]["nodes"]
    assert [(n["key"], n["kind"]) for n in nodes] == [
        ("start", "trigger_event"),
        ("wait", "wait_delay"),
    ]
    two_on_a_port = {**graph, "edges": [edge("start", "wait"), edge("start", "wait")]}
    fields = error_fields(api("put", f"journeys/{journey.public_id}/graph/", two_on_a_port))
    assert fields == {"edges[1].port": ["“start” already has a connection on “next”."]}
    assert "non_field_errors" in error_fields(
        api("put", f"journeys/{journey.public_id}/graph/", [1, 2])
    )


def test_it_deletes_only_a_journey_never_published(api, world) -> None:
    draft = make(world.acme, "Draft")
    published = live(world.acme, "Live")
    assert api("delete", f"journeys/{draft.public_id}/").status_code == 204
    assert not Journey.objects.filter(pk=draft.pk).exists()
    message = conflict(api("delete", f"journeys/{published.public_id}/"))
    assert "archive it" in message
    assert Journey.objects.filter(pk=published.pk).exists()


# --- publishing and the journey's life ----------------------------------------------------------


def test_it_publishes_a_valid_draft_and_answers_the_version(api, world) -> None:
    journey = make(world.acme)
    published = api("post", f"journeys/{journey.public_id}/publish/", {"move_waiting": True})
    assert published.status_code == 200, published.content
    body = published.json()
    assert (body["number"], body["state"]) == (1, "published")
    assert body["published_at"]
    assert [n["key"] for n in body["graph"]["nodes"]] == ["start", "wait"]
    shown = api("get", f"journeys/{journey.public_id}/").json()
    assert shown["status"] == "live" and shown["live_version"] == 1 and shown["draft"] is None
    # Nothing changed since: nothing to publish.
    assert "no changes" in conflict(api("post", f"journeys/{journey.public_id}/publish/", {}))


def test_it_refuses_to_publish_an_invalid_graph_naming_the_nodes(api, world) -> None:
    graph = {
        "nodes": [
            node("start", "trigger_api"),
            node("wait", "wait_delay", amount=0, unit="days"),
            node("lost", "exit"),
        ],
        "edges": [edge("start", "wait")],
    }
    journey = make(world.acme, graph=graph)
    refused = api("post", f"journeys/{journey.public_id}/publish/", {})
    assert refused.status_code == 400
    body = refused.json()
    assert body["error"]["code"] == "invalid_graph"
    problems = {(p["node"], p["field"]) for p in body["problems"]}
    assert ("wait", "amount") in problems
    assert any(p[0] == "lost" for p in problems)
    assert all(set(p) == {"node", "field", "message"} for p in body["problems"])
    journey.refresh_from_db()
    assert journey.status == Journey.Status.DRAFT
    assert not JourneyVersion.objects.filter(journey=journey, state="published").exists()


def test_it_pauses_resumes_and_archives_and_refuses_other_transitions(api, world) -> None:
    draft = make(world.acme, "Draft")
    journey = live(world.acme)
    base = f"journeys/{journey.public_id}"
    assert "Only a live journey" in conflict(api("post", f"journeys/{draft.public_id}/pause/"))
    assert "Only a paused journey" in conflict(api("post", f"{base}/resume/"))
    assert api("post", f"{base}/pause/").json()["status"] == "paused"
    assert "Only a live journey" in conflict(api("post", f"{base}/pause/"))
    assert api("post", f"{base}/resume/").json()["status"] == "live"
    assert api("post", f"{base}/archive/").json()["status"] == "archived"
    assert "Only a paused journey" in conflict(api("post", f"{base}/resume/"))
    assert "archived" in conflict(api("post", f"{base}/publish/", {}))
    assert "archived" in conflict(api("put", f"{base}/graph/", api_graph()))
    # Archived journeys are listed when asked for.
    listed = api("get", "journeys/?status=archived").json()["results"]
    assert [j["name"] for j in listed] == ["Welcome"]
    assert [j["name"] for j in api("get", "journeys/").json()["results"]] == ["Draft"]


# --- counts and people --------------------------------------------------------------------------


def enroll(journey: Journey, contact: Contact, at: str = "wait", state: str = "waiting") -> Any:
    version = JourneyVersion.objects.get(journey=journey, state="published")
    enrollment = Enrollment.objects.create(
        tenant_id=journey.tenant_id,
        journey=journey,
        version=version,
        contact=contact,
        node_key=at,
        state=state,
        failure="Template missing" if state == "failed" else "",
    )
    for key in ("start", at):
        Step.objects.create(
            tenant_id=journey.tenant_id,
            enrollment=enrollment,
            version=version,
            node_key=key,
            result="followed" if key == "start" else "waiting",
        )
    return enrollment


def test_it_counts_people_per_node_with_totals(api, world, people) -> None:
    journey = live(world.acme)
    ben = person(world.acme, "ben")
    enroll(journey, people["ann"])
    enroll(journey, ben, state="failed")
    stats = api("get", f"journeys/{journey.public_id}/stats/").json()
    assert stats["nodes"]["start"] == {
        "entered": 2,
        "waiting": 0,
        "completed": 2,
        "converted": 0,
        "failed": 0,
    }
    assert stats["nodes"]["wait"] == {
        "entered": 2,
        "waiting": 1,
        "completed": 0,
        "converted": 0,
        "failed": 1,
    }
    assert stats["totals"] == {"enrolled": 2, "open": 1, "conversions": 0, "revenue": "0.00"}


def test_it_lists_enrollments_by_node_and_state_in_pages(api, world, people) -> None:
    journey = live(world.acme)
    ben = person(world.acme, "ben")
    ann_enrollment = enroll(journey, people["ann"])
    ben_enrollment = enroll(journey, ben, state="failed")
    base = f"journeys/{journey.public_id}/enrollments/"
    page = api("get", f"{base}?limit=1").json()
    assert [r["contact"]["user_id"] for r in page["results"]] == ["ben"]
    row = page["results"][0]
    assert row == {
        "id": str(ben_enrollment.public_id),
        "contact": {"id": str(ben.public_id), "email": "ben@example.com", "user_id": "ben"},
        "state": "failed",
        "node": "wait",
        "version": 1,
        "entered_at": row["entered_at"],
        "arrived_at": row["arrived_at"],
        "due_at": None,
        "failure": "Template missing",
        "converted_at": None,
        "revenue": None,
        "finished_at": None,
    }
    rest = api("get", page["next"].split("/api/v1/")[1]).json()
    assert [r["id"] for r in rest["results"]] == [str(ann_enrollment.public_id)]
    waiting = api("get", f"{base}?node=wait&state=waiting").json()["results"]
    assert [r["contact"]["user_id"] for r in waiting] == ["ann"]
    failed = api("get", f"{base}?state=failed").json()["results"]
    assert [r["contact"]["user_id"] for r in failed] == ["ben"]
    assert "state" in error_fields(api("get", f"{base}?state=asleep"))


def test_it_retries_only_a_failed_enrollment(api, world, people) -> None:
    journey = live(world.acme)
    waiting = enroll(journey, people["ann"])
    base = f"journeys/{journey.public_id}/enrollments"
    assert "Only a failed" in conflict(api("post", f"{base}/{waiting.public_id}/retry/"))
    ben = person(world.acme, "ben")
    failed = enroll(journey, ben, state="failed")
    retried = api("post", f"{base}/{failed.public_id}/retry/")
    assert retried.status_code == 200, retried.content
    assert retried.json()["state"] in ("active", "waiting", "completed")
    other = live(world.acme, "Other")
    assert (
        api("post", f"journeys/{other.public_id}/enrollments/{failed.public_id}/retry/").status_code
        == 404
    )


# --- ready-made journeys ------------------------------------------------------------------------


def test_it_lists_and_creates_ready_made_journeys(api, world) -> None:
    listed = api("get", "journeys/presets/").json()["results"]
    keys = {p["key"] for p in listed}
    assert {"onboarding_welcome", "birthday_coupon", "cart_abandonment"} <= keys
    first = listed[0]
    assert set(first) == {"key", "name", "description", "category"}
    created = api("post", f"journeys/presets/{first['key']}/")
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["name"] == first["name"] and body["status"] == "draft"
    assert body["preset"] == first["key"]
    assert body["draft"]["graph"]["nodes"]
    again = api("post", f"journeys/presets/{first['key']}/").json()
    assert again["name"] != body["name"]
    assert Journey.objects.filter(tenant=world.acme).count() == 2


def test_it_answers_404_for_an_unknown_preset(api, world) -> None:
    response = api("post", "journeys/presets/nope/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert not Journey.objects.exists()


# --- the API trigger ----------------------------------------------------------------------------


def test_it_enrolls_a_contact_into_a_live_api_journey_with_data(api, world, people) -> None:
    journey = live(world.acme)
    body = {"contact": {"user_id": "ann"}, "data": {"plan": "gold", "items": [{"sku": "A1"}]}}
    enrolled = api("post", f"journeys/{journey.public_id}/enroll/", body)
    assert enrolled.status_code == 201, enrolled.content
    enrollment = Enrollment.objects.get(journey=journey, contact=people["ann"])
    assert enrolled.json()["id"] == str(enrollment.public_id)
    assert enrollment.context["data"] == {"plan": "gold", "items": [{"sku": "A1"}]}
    # In it already: refused, not entered twice.
    assert "can't enter" in conflict(api("post", f"journeys/{journey.public_id}/enroll/", body))
    by_email = {"contact": {"email": "ann@example.com"}}
    assert api("post", f"journeys/{journey.public_id}/enroll/", by_email).status_code == 409
    assert Enrollment.objects.filter(journey=journey).count() == 1


def test_it_refuses_to_enroll_into_a_journey_not_live_or_not_api_triggered(
    api, world, people
) -> None:
    body = {"contact": {"id": str(people["ann"].public_id)}}
    draft = make(world.acme, "Draft")
    assert "live" in conflict(api("post", f"journeys/{draft.public_id}/enroll/", body))
    on_event = live(world.acme, "On event", event_graph())
    assert "API" in conflict(api("post", f"journeys/{on_event.public_id}/enroll/", body))
    paused = live(world.acme, "Paused")
    services.journey_pause(journey=paused)
    assert api("post", f"journeys/{paused.public_id}/enroll/", body).status_code == 409
    assert not Enrollment.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {"contact": {"user_id": "nobody"}},
            {"contact": {"user_id": ["No contact has this user_id."]}},
        ),
        (
            {"contact": {}},
            {"contact": {"non_field_errors": ["Give exactly one of id, user_id or email."]}},
        ),
        ({"contact": {"user_id": "ann"}, "data": "gold"}, "data"),
        ({"contact": {"user_id": "ann"}, "data": {"note": "a\u0000b"}}, "data.note"),
        ({"contact": {"user_id": "ann"}, "data": {"big": "x" * 40_000}}, "data"),
        ({"contact": {"user_id": "ann"}, "data": {"n": 2**70}}, "data.n"),
    ],
)
def test_it_refuses_bad_enroll_requests_naming_the_field(api, world, people, body, field) -> None:
    journey = live(world.acme)
    fields = error_fields(api("post", f"journeys/{journey.public_id}/enroll/", body))
    if isinstance(field, dict):
        assert fields == field
    else:
        assert field in fields, fields
    assert not Enrollment.objects.exists()


# --- tenancy ------------------------------------------------------------------------------------

ENDPOINTS = [
    ("get", "journeys/{id}/", None),
    ("patch", "journeys/{id}/", {"name": "Mine now"}),
    ("put", "journeys/{id}/graph/", api_graph()),
    ("delete", "journeys/{id}/", None),
    ("post", "journeys/{id}/publish/", {}),
    ("post", "journeys/{id}/pause/", None),
    ("post", "journeys/{id}/resume/", None),
    ("post", "journeys/{id}/archive/", None),
    ("get", "journeys/{id}/stats/", None),
    ("get", "journeys/{id}/enrollments/", None),
    ("post", "journeys/{id}/enrollments/{enrollment}/retry/", None),
    ("post", "journeys/{id}/enroll/", {"contact": {"user_id": "gus"}}),
]


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
@pytest.mark.parametrize("whose", ["globex", "bad uuid", "unknown"])
def test_it_answers_404_for_other_tenants_journeys_and_changes_nothing(
    api, world, people, method, path, body, whose
) -> None:
    globex = live(world.globex, "Globex secret")
    failed = enroll(globex, people["gus"], state="failed")
    ids = {
        "globex": (globex.public_id, failed.public_id),
        "bad uuid": ("not-a-uuid", "1 OR 1=1"),
        "unknown": ("00000000-0000-4000-8000-000000000000",) * 2,
    }[whose]
    response = api(method, path.format(id=ids[0], enrollment=ids[1]), body)
    assert response.status_code == 404, response.content
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "not_found"
    assert "Globex" not in response.content.decode()
    globex.refresh_from_db()
    assert (globex.name, globex.status) == ("Globex secret", "live")
    assert Enrollment.objects.filter(journey=globex).count() == 1


def test_it_cannot_enroll_another_tenants_contact_nor_see_their_journeys(
    api, world, people
) -> None:
    mine = live(world.acme)
    live(world.globex, "Globex secret")
    by_id = {"contact": {"id": str(people["gus"].public_id)}}
    fields = error_fields(api("post", f"journeys/{mine.public_id}/enroll/", by_id))
    assert fields == {"contact": {"id": ["No contact has this id."]}}
    by_user = {"contact": {"user_id": "gus"}}
    assert "contact" in error_fields(api("post", f"journeys/{mine.public_id}/enroll/", by_user))
    assert not Enrollment.objects.exists()
    assert [j["name"] for j in api("get", "journeys/").json()["results"]] == ["Welcome"]
    globex = api("get", "journeys/", tenant=world.globex).json()["results"]
    assert [j["name"] for j in globex] == ["Globex secret"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "journeys/"),
        ("post", "journeys/"),
        ("get", "journeys/presets/"),
        ("post", "journeys/presets/birthday_coupon/"),
        ("post", "journeys/{id}/enroll/"),
        ("post", "journeys/{id}/pause/"),
    ],
)
def test_it_requires_a_secret_key_a_tracking_key_cannot_write(client, world, method, path) -> None:
    journey = live(world.acme)
    _key, write_key = api_key(world.acme, kind="write")
    url = "/api/v1/" + path.format(id=journey.public_id)
    assert getattr(client, method)(url).status_code == 401
    response = getattr(client, method)(url, HTTP_AUTHORIZATION=f"Bearer {write_key}")
    assert response.status_code == 401
    journey.refresh_from_db()
    assert journey.status == "live"
    assert Journey.objects.count() == 1 and not Enrollment.objects.exists()


def test_it_describes_every_journey_endpoint_in_the_schema() -> None:
    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    assert {
        "/api/v1/journeys/",
        "/api/v1/journeys/{public_id}/",
        "/api/v1/journeys/{public_id}/graph/",
        "/api/v1/journeys/{public_id}/publish/",
        "/api/v1/journeys/{public_id}/pause/",
        "/api/v1/journeys/{public_id}/resume/",
        "/api/v1/journeys/{public_id}/archive/",
        "/api/v1/journeys/{public_id}/stats/",
        "/api/v1/journeys/{public_id}/enrollments/",
        "/api/v1/journeys/{public_id}/enrollments/{enrollment_id}/retry/",
        "/api/v1/journeys/{public_id}/enroll/",
        "/api/v1/journeys/presets/",
        "/api/v1/journeys/presets/{key}/",
    } <= set(paths)
