"""The campaigns REST API: always within the key's team (another team's campaign is a 404 on
every call, its segments and templates are "no such" in a body), refusals that name the field,
409 where the campaign's state forbids the change, and stats an integration can read."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import get_resolver
from django.utils import timezone

from audience.models import Consent, Contact
from campaigns.models import Campaign, CampaignSegment, Occurrence, Recipient, Variant
from messaging.models import Delivery, Template
from messaging.services import sender_identity_update
from segments import services as segment_services

pytestmark = pytest.mark.django_db


def attribute(field: str, operator: str, value: Any = None) -> dict[str, Any]:
    rule = {"type": "attribute", "field": field, "operator": operator}
    return rule if value is None else {**rule, "value": value}


def group(*children: dict[str, Any]) -> dict[str, Any]:
    return {"type": "group", "match": "all", "children": list(children)}


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


class Shop:
    """acme: ann and ben on the pro plan, cy on the free one, dee unsubscribed; segments
    "Pro" and "Free", "Everyone"; two email templates and a push one. globex: its own segment
    and template, which acme's key must never reach."""

    def __init__(self, world: Any) -> None:
        acme, globex = world.acme, world.globex
        sender_identity_update(
            tenant=acme, sender_name="Acme", sender_email="news@acme.example", verified=True
        )
        people = [("ann", "pro"), ("ben", "pro"), ("cy", "free"), ("dee", "pro")]
        self.contacts = {
            name: Contact.objects.create(
                tenant=acme,
                email=f"{name}@example.com",
                first_name=name.title(),
                attributes={"plan": plan},
                email_consent=Consent.REVOKED if name == "dee" else Consent.GRANTED,
            )
            for name, plan in people
        }
        Contact.objects.create(tenant=globex, email="gus@example.com", attributes={"plan": "pro"})
        self.pro = segment_services.segment_create(
            tenant=acme, name="Pro", rules=group(attribute("attributes.plan", "equals", "pro"))
        )
        self.free = segment_services.segment_create(
            tenant=acme, name="Free", rules=group(attribute("attributes.plan", "equals", "free"))
        )
        self.everyone = segment_services.segment_create(
            tenant=acme, name="Everyone", rules=group(attribute("email", "exists"))
        )
        self.launch = Template.objects.create(
            tenant=acme,
            name="Launch",
            subject="It's here",
            html="<p>Hi {{ contact.first_name }}</p>",
        )
        self.launch_b = Template.objects.create(
            tenant=acme, name="Launch B", subject="New!", html="<p>Hello</p>"
        )
        self.ping = Template.objects.create(
            tenant=acme, name="Ping", channel="push", title="Hey", body="Look"
        )
        self.globex_segment = segment_services.segment_create(
            tenant=globex, name="Globex pro", rules=group(attribute("email", "exists"))
        )
        self.globex_template = Template.objects.create(
            tenant=globex, name="Globex mail", subject="Hi", html="<p>Hi</p>"
        )

    def body(self, **changes: Any) -> dict[str, Any]:
        """A complete campaign to the pro plan but not the free one, A/B tested."""
        return {
            "name": "Spring launch",
            "channel": "email",
            "schedule": "at",
            "send_at": (timezone.now() + timedelta(days=2)).isoformat(),
            "segments": [str(self.pro.public_id)],
            "exclude_segments": [str(self.free.public_id)],
            "variants": [
                {"template": str(self.launch.public_id), "weight": 50},
                {"template": str(self.launch_b.public_id), "weight": 50},
            ],
            "test_percent": 20,
            "winner_metric": "clicks",
            "winner_after_hours": 4,
            "holdout_percent": 10,
            "goal_event": "Order Completed",
            **changes,
        }


@pytest.fixture
def shop(world):  # type: ignore[no-untyped-def]
    return Shop(world)


def create(api: Any, shop: Shop, **changes: Any) -> dict[str, Any]:
    response = api("post", "campaigns/", shop.body(**changes))
    assert response.status_code == 201, response.content
    return response.json()


def state_set(campaign_id: str, state: str) -> None:
    """Where dispatch would have taken it (sending, paused, sent)."""
    Campaign.objects.filter(public_id=campaign_id).update(state=state)


# --- create, read, change, delete -----------------------------------------------------------------


def test_it_creates_a_draft_with_its_audience_and_variants_and_shows_it(api, world, shop) -> None:
    body = create(api, shop)
    campaign = Campaign.objects.get(tenant=world.acme)
    assert body["id"] == str(campaign.public_id)
    assert (body["name"], body["state"], body["editable"]) == ("Spring launch", "draft", True)
    assert body["segments"] == [{"id": str(shop.pro.public_id), "name": "Pro"}]
    assert body["exclude_segments"] == [{"id": str(shop.free.public_id), "name": "Free"}]
    assert [(v["key"], v["template"]["name"], v["weight"]) for v in body["variants"]] == [
        ("A", "Launch", 50),
        ("B", "Launch B", 50),
    ]
    assert (body["holdout_percent"], body["test_percent"], body["winner_metric"]) == (
        10,
        20,
        "clicks",
    )
    assert set(
        CampaignSegment.objects.filter(campaign=campaign).values_list("segment__name", "exclude")
    ) == {("Pro", False), ("Free", True)}
    assert api("get", f"campaigns/{body['id']}/").json() == body


@pytest.mark.parametrize("field", ["segments", "exclude_segments"])
def test_it_answers_another_teams_segment_as_no_such_segment(api, world, shop, field) -> None:
    theirs = str(shop.globex_segment.public_id)
    unknown = str(uuid.uuid4())
    fields = error_fields(api("post", "campaigns/", shop.body(**{field: [theirs]})))
    assert fields == {field: [f"No such segment: {theirs}."]}
    # Exactly as for an id that exists nowhere: nothing tells the two apart.
    fields = error_fields(api("post", "campaigns/", shop.body(**{field: [unknown]})))
    assert fields == {field: [f"No such segment: {unknown}."]}
    assert not Campaign.objects.exists()


def test_it_answers_another_teams_template_as_no_such_template(api, world, shop) -> None:
    variants = [
        {"template": str(shop.launch.public_id)},
        {"template": str(shop.globex_template.public_id)},
    ]
    fields = error_fields(api("post", "campaigns/", shop.body(variants=variants)))
    assert fields == {"variants": [{}, {"template": ["No such template."]}]}
    assert not Campaign.objects.exists()
    assert not Variant.objects.exists()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": ""}, "name"),
        ({"channel": "sms"}, "channel"),
        ({"schedule": "sometimes"}, "schedule"),
        ({"send_at": "next tuesday"}, "send_at"),
        ({"test_percent": 0}, "test_percent"),
        ({"holdout_percent": 60}, "holdout_percent"),
        ({"winner_metric": "vibes"}, "winner_metric"),
        ({"throttle_per_minute": 0}, "throttle_per_minute"),
        ({"segments": ["not-a-uuid"]}, "segments"),
        ({"variants": [{"template": str(uuid.uuid4()), "weight": 0}]}, "variants"),
        ({"variants": [{"weight": 10}]}, "variants"),
    ],
)
def test_it_refuses_bad_fields_naming_them(api, world, shop, changes, field) -> None:
    fields = error_fields(api("post", "campaigns/", shop.body(**changes)))
    assert field in fields, fields
    assert not Campaign.objects.exists()


def test_it_refuses_six_variants_and_a_push_template_for_an_email(api, world, shop) -> None:
    six = [{"template": str(shop.launch.public_id), "weight": 10}] * 6
    assert "variants" in error_fields(api("post", "campaigns/", shop.body(variants=six)))
    push = [{"template": str(shop.ping.public_id)}]
    assert "variants" in error_fields(api("post", "campaigns/", shop.body(variants=push)))
    assert not Campaign.objects.exists()


def test_it_refuses_a_name_the_team_has_and_allows_another_teams(api, world, shop) -> None:
    create(api, shop)
    assert "name" in error_fields(api("post", "campaigns/", shop.body()))
    globex = api("post", "campaigns/", {"name": "Spring launch"}, tenant=world.globex)
    assert globex.status_code == 201, globex.content
    assert Campaign.objects.filter(name="Spring launch").count() == 2


def test_it_lists_campaigns_newest_first_by_state_in_pages(api, world, shop) -> None:
    ids = [create(api, shop, name=f"Weekly {n}")["id"] for n in range(3)]
    state_set(ids[0], "sent")
    listed = api("get", "campaigns/").json()
    assert [c["id"] for c in listed["results"]] == ids[::-1]
    assert listed["results"][0]["variants"][0]["template"]["name"] == "Launch"
    drafts = api("get", "campaigns/?state=draft").json()["results"]
    assert [c["name"] for c in drafts] == ["Weekly 2", "Weekly 1"]
    first = api("get", "campaigns/?limit=2").json()
    assert len(first["results"]) == 2 and first["next"]
    rest = api("get", first["next"].split("/api/v1/", 1)[1]).json()
    assert [c["id"] for c in rest["results"]] == [ids[0]]
    assert "state" in error_fields(api("get", "campaigns/?state=gone"))
    assert api("get", "campaigns/", tenant=world.globex).json()["results"] == []
    # The list's cost does not grow with its length (segments and variants come prefetched).
    with CaptureQueriesContext(connection) as three:
        assert len(api("get", "campaigns/").json()["results"]) == 3
    for n in range(3, 6):
        create(api, shop, name=f"Weekly {n}")
    with CaptureQueriesContext(connection) as six:
        assert len(api("get", "campaigns/").json()["results"]) == 6
    assert len(six.captured_queries) == len(three.captured_queries)


def test_it_changes_a_draft_and_replaces_its_lists(api, world, shop) -> None:
    campaign_id = create(api, shop)["id"]
    changed = api(
        "patch",
        f"campaigns/{campaign_id}/",
        {
            "name": "Spring launch, take 2",
            "segments": [str(shop.everyone.public_id)],
            "exclude_segments": [],
            "variants": [{"template": str(shop.launch_b.public_id), "weight": 100}],
            "holdout_percent": 0,
        },
    )
    assert changed.status_code == 200, changed.content
    body = changed.json()
    assert body["name"] == "Spring launch, take 2"
    assert [s["name"] for s in body["segments"]] == ["Everyone"]
    assert body["exclude_segments"] == []
    assert [(v["key"], v["template"]["name"]) for v in body["variants"]] == [("A", "Launch B")]
    assert body["holdout_percent"] == 0
    assert body["goal_event"] == "Order Completed"  # untouched
    campaign = Campaign.objects.get(public_id=campaign_id)
    assert list(Variant.objects.filter(campaign=campaign).values_list("key", flat=True)) == ["A"]


def test_it_refuses_another_teams_segment_on_a_change_and_changes_nothing(api, world, shop) -> None:
    campaign_id = create(api, shop)["id"]
    theirs = str(shop.globex_segment.public_id)
    response = api("patch", f"campaigns/{campaign_id}/", {"segments": [theirs], "name": "X"})
    assert error_fields(response) == {"segments": [f"No such segment: {theirs}."]}
    shown = api("get", f"campaigns/{campaign_id}/").json()
    assert shown["name"] == "Spring launch"
    assert [s["name"] for s in shown["segments"]] == ["Pro"]


@pytest.mark.parametrize("state", ["sending", "paused", "sent", "cancelled"])
def test_it_refuses_to_change_a_campaign_that_went_out(api, world, shop, state) -> None:
    campaign_id = create(api, shop)["id"]
    state_set(campaign_id, state)
    message = conflict(api("patch", f"campaigns/{campaign_id}/", {"name": "Renamed"}))
    assert "can't be changed" in message
    assert Campaign.objects.get(public_id=campaign_id).name == "Spring launch"


def test_it_deletes_a_draft_but_not_a_sending_campaign(api, world, shop) -> None:
    draft = create(api, shop, name="Draft")["id"]
    assert api("delete", f"campaigns/{draft}/").status_code == 204
    assert not Campaign.objects.filter(public_id=draft).exists()
    assert api("get", f"campaigns/{draft}/").status_code == 404
    sending = create(api, shop, name="Sending")["id"]
    state_set(sending, "sending")
    conflict(api("delete", f"campaigns/{sending}/"))
    assert Campaign.objects.filter(public_id=sending).exists()


# --- schedule, pause, resume, cancel, duplicate ---------------------------------------------------


def test_it_schedules_a_campaign_and_takes_it_back_to_draft(api, world, shop) -> None:
    campaign_id = create(api, shop)["id"]
    scheduled = api("post", f"campaigns/{campaign_id}/schedule/")
    assert scheduled.status_code == 200, scheduled.content
    assert (scheduled.json()["state"], scheduled.json()["editable"]) == ("scheduled", True)
    # Still editable while it waits.
    assert api("patch", f"campaigns/{campaign_id}/", {"name": "Later"}).status_code == 200
    back = api("post", f"campaigns/{campaign_id}/unschedule/")
    assert back.status_code == 200, back.content
    assert back.json()["state"] == "draft"
    conflict(api("post", f"campaigns/{campaign_id}/unschedule/"))


def test_it_says_what_a_campaign_lacks_to_be_scheduled(api, world, shop) -> None:
    bare = api("post", "campaigns/", {"name": "Not ready", "schedule": "at"})
    assert bare.status_code == 201, bare.content
    fields = error_fields(api("post", f"campaigns/{bare.json()['id']}/schedule/"))
    assert {"segments", "variants", "send_at"} & set(fields), fields
    past = create(api, shop, name="Past", send_at=(timezone.now() - timedelta(hours=1)).isoformat())
    assert "send_at" in error_fields(api("post", f"campaigns/{past['id']}/schedule/"))
    assert set(Campaign.objects.values_list("state", flat=True)) == {"draft"}


def test_it_refuses_to_pause_or_resume_a_draft(api, world, shop) -> None:
    campaign_id = create(api, shop)["id"]
    for verb in ("pause", "resume"):
        message = conflict(api("post", f"campaigns/{campaign_id}/{verb}/"))
        assert message
    assert Campaign.objects.get(public_id=campaign_id).state == "draft"


def test_it_pauses_resumes_and_cancels_a_sending_campaign(api, world, shop) -> None:
    campaign_id = create(api, shop)["id"]
    state_set(campaign_id, "sending")
    paused = api("post", f"campaigns/{campaign_id}/pause/")
    assert paused.status_code == 200, paused.content
    assert paused.json()["state"] == "paused"
    assert paused.json()["paused_at"] is not None
    conflict(api("post", f"campaigns/{campaign_id}/pause/"))
    resumed = api("post", f"campaigns/{campaign_id}/resume/")
    assert resumed.status_code == 200, resumed.content
    assert resumed.json()["state"] == "sending"
    cancelled = api("post", f"campaigns/{campaign_id}/cancel/")
    assert cancelled.status_code == 200, cancelled.content
    assert cancelled.json()["state"] == "cancelled"
    conflict(api("post", f"campaigns/{campaign_id}/cancel/"))
    conflict(api("post", f"campaigns/{campaign_id}/schedule/"))


def test_it_duplicates_a_campaign_as_a_draft(api, world, shop) -> None:
    original = create(api, shop)
    state_set(original["id"], "sent")
    copied = api("post", f"campaigns/{original['id']}/duplicate/")
    assert copied.status_code == 201, copied.content
    copy = copied.json()
    assert copy["id"] != original["id"]
    assert (copy["name"], copy["state"]) == ("Spring launch (copy)", "draft")
    assert copy["segments"] == original["segments"]
    assert copy["exclude_segments"] == original["exclude_segments"]
    assert [(v["key"], v["template"]) for v in copy["variants"]] == [
        (v["key"], v["template"]) for v in original["variants"]
    ]
    assert Campaign.objects.get(public_id=original["id"]).state == "sent"


# --- audience, occurrences, stats -----------------------------------------------------------------


def test_it_estimates_the_audience_after_exclusions_and_consent(api, world, shop) -> None:
    campaign_id = create(api, shop, segments=[str(shop.everyone.public_id)])["id"]
    # Everyone (4) but the free plan (cy): ann, ben and dee; dee unsubscribed.
    estimate = api("get", f"campaigns/{campaign_id}/audience/").json()
    assert (estimate["members"], estimate["reachable"]) == (3, 2)
    assert sum(estimate["unreachable"].values()) == 1
    unsaved = api(
        "post",
        "campaigns/audience/",
        {"channel": "email", "segments": [str(shop.free.public_id)]},
    )
    assert unsaved.status_code == 200, unsaved.content
    assert (unsaved.json()["members"], unsaved.json()["reachable"]) == (1, 1)
    theirs = str(shop.globex_segment.public_id)
    refused = api("post", "campaigns/audience/", {"channel": "email", "segments": [theirs]})
    assert error_fields(refused) == {"segments": [f"No such segment: {theirs}."]}


def _sent_occurrence(
    shop: Shop, campaign: Campaign, key: str, started_ago: timedelta
) -> Occurrence:
    """An occurrence as dispatch leaves it: ann got A (sent), ben got B (skipped), cy in the
    hold-out, dee not released yet."""
    acme = campaign.tenant
    started = timezone.now() - started_ago
    occurrence = Occurrence.objects.create(
        tenant=acme,
        campaign=campaign,
        key=key,
        started_at=started,
        recipient_count=4,
        holdout_count=1,
    )
    variants = {v.key: v for v in Variant.objects.filter(campaign=campaign)}
    plan = [
        ("ann", "A", Delivery.Status.SENT, ""),
        ("ben", "B", Delivery.Status.SKIPPED, "unsubscribed"),
        ("cy", None, None, ""),
        ("dee", "A", None, ""),
    ]
    for name, variant_key, status, reason in plan:
        contact = shop.contacts[name]
        delivery = None
        if status is not None:
            template = variants[variant_key].template
            delivery = Delivery.objects.create(
                tenant=acme,
                contact=contact,
                channel="email",
                template=template,
                content=template.snapshot(),
                source=f"campaign:{campaign.public_id}",
                idempotency_key=f"campaign:{occurrence.public_id}:{contact.pk}",
                status=status,
                reason=reason,
                sent_at=started if status == Delivery.Status.SENT else None,
            )
        Recipient.objects.create(
            tenant=acme,
            occurrence=occurrence,
            contact=contact,
            variant=variants[variant_key] if variant_key else None,
            holdout=variant_key is None,
            due_at=started,
            released=delivery is not None,
            delivery=delivery,
        )
    return occurrence


def test_it_shows_the_latest_occurrences_progress_and_results_per_variant(api, world, shop) -> None:
    campaign_id = create(api, shop)["id"]
    empty = api("get", f"campaigns/{campaign_id}/stats/").json()
    assert (empty["occurrence"], empty["progress"], empty["variants"]) == (None, None, [])
    campaign = Campaign.objects.get(public_id=campaign_id)
    older = Occurrence.objects.create(
        tenant=world.acme,
        campaign=campaign,
        key="2026-11-30T09:00",
        started_at=timezone.now() - timedelta(days=7),
    )
    latest = _sent_occurrence(shop, campaign, "2026-12-07T09:00", timedelta(hours=1))
    stats = api("get", f"campaigns/{campaign_id}/stats/").json()
    assert stats["occurrence"]["id"] == str(latest.public_id)
    progress = stats["progress"]
    assert (progress["total"], progress["holdout"], progress["waiting"]) == (4, 1, 1)
    assert (progress["sent"], progress["failed"]) == (1, 0)
    assert progress["skipped"] == {"unsubscribed": 1}
    rows = {row["key"]: row for row in stats["variants"]}
    assert set(rows) == {"A", "B"}
    assert (rows["A"]["recipients"], rows["A"]["sent"], rows["A"]["template"]) == (
        2,
        1,
        "Launch",
    )
    assert rows["B"]["sent"] == 0
    assert stats["holdout"]["recipients"] == 1
    assert stats["goal_event"] == "Order Completed"
    # An earlier occurrence by its id; another campaign's or a made-up one is not found.
    picked = api("get", f"campaigns/{campaign_id}/stats/?occurrence={older.public_id}").json()
    assert picked["occurrence"]["id"] == str(older.public_id)
    assert picked["progress"]["total"] == 0
    other_id = create(api, shop, name="Other")["id"]
    other = f"campaigns/{other_id}/stats/?occurrence={latest.public_id}"
    assert api("get", other).status_code == 404
    assert api("get", f"campaigns/{campaign_id}/stats/?occurrence=nope").status_code == 404
    listed = api("get", f"campaigns/{campaign_id}/occurrences/").json()["results"]
    assert [(o["id"], o["recipient_count"]) for o in listed] == [
        (str(latest.public_id), 4),
        (str(older.public_id), 0),
    ]


def test_an_integration_sends_now_pauses_and_follows_the_progress(api, world, shop) -> None:
    """Through the API only, with dispatch's own clock (the beat's tick) doing the sending, at
    one message a minute so that there is a middle to pause in."""
    from campaigns import dispatch

    created = create(
        api,
        shop,
        name="Flash sale",
        schedule="now",
        throttle_per_minute=1,
        segments=[str(shop.everyone.public_id)],
        exclude_segments=[],
        variants=[{"template": str(shop.launch.public_id), "weight": 100}],
        test_percent=100,
        holdout_percent=0,
    )
    campaign_id = created["id"]
    path = f"campaigns/{campaign_id}/"
    assert api("get", f"{path}audience/").json()["reachable"] == 3
    assert api("post", f"{path}schedule/").status_code == 200
    dispatch.tick()
    stats = api("get", f"{path}stats/").json()
    assert stats["occurrence"]["key"] == "once"
    first = stats["progress"]
    assert first["queued"] == 1 and first["holdout"] == 0, first
    assert first["waiting"] == first["total"] - 1
    assert api("get", path).json()["state"] == "sending"
    occurrences = api("get", f"{path}occurrences/").json()["results"]
    assert [o["key"] for o in occurrences] == ["once"]

    paused = api("post", f"{path}pause/")
    assert paused.status_code == 200, paused.content
    assert paused.json()["state"] == "paused"
    conflict(api("patch", path, {"name": "Changed mid-send"}))
    on_pause = api("get", f"{path}stats/").json()["progress"]
    with time_machine.travel(timezone.now() + timedelta(minutes=5), tick=False):
        dispatch.tick()  # paused: nothing more goes out, however long it waits
    assert api("get", f"{path}stats/").json()["progress"] == on_pause

    assert api("post", f"{path}resume/").json()["state"] == "sending"
    with time_machine.travel(timezone.now() + timedelta(minutes=10), tick=False):
        dispatch.tick()
    later = api("get", f"{path}stats/").json()["progress"]
    assert later["waiting"] < on_pause["waiting"]
    assert later["queued"] > 0


# --- another team, and the key --------------------------------------------------------------------


def campaign_routes() -> list[tuple[str, str]]:
    """Every /api/v1/ route about one campaign, from the URL resolver (a new one is probed
    without being listed here)."""
    routes = []
    for pattern in get_resolver().url_patterns:
        for sub in getattr(pattern, "url_patterns", []):
            route = str(pattern.pattern) + str(sub.pattern)
            if route.startswith("api/v1/campaigns/<str:public_id>/"):
                routes.append((sub.name, "/" + re.sub(r"<str:public_id>", "{id}", route)))
    return routes


ROUTES = campaign_routes()


def test_it_finds_every_campaign_route() -> None:
    names = {name for name, _ in ROUTES}
    assert {
        "api_campaign_detail",
        "api_campaign_schedule",
        "api_campaign_pause",
        "api_campaign_resume",
        "api_campaign_cancel",
        "api_campaign_stats",
        "api_campaign_audience",
        "api_campaign_occurrences",
        "api_campaign_duplicate",
    } <= names


def snapshot() -> tuple[Any, ...]:
    return (
        sorted(Campaign.objects.values_list("public_id", "name", "state", "updated_at")),
        sorted(Variant.objects.values_list("pk", "template_id", "weight")),
        sorted(CampaignSegment.objects.values_list("pk", "segment_id", "exclude")),
        Occurrence.objects.count(),
        Delivery.objects.count(),
    )


@pytest.mark.parametrize(("name", "route"), ROUTES, ids=[n for n, _ in ROUTES])
@pytest.mark.parametrize("method", ["get", "post", "patch", "delete"])
def test_another_team_cannot_see_send_or_read_the_stats_of_a_campaign(
    api, world, shop, name, route, method
) -> None:
    campaign_id = create(api, shop)["id"]
    state_set(campaign_id, "sending")
    campaign = Campaign.objects.get(public_id=campaign_id)
    _sent_occurrence(shop, campaign, "once", timedelta(hours=1))
    before = snapshot()
    path = route.format(id=campaign_id).removeprefix("/api/v1/")
    body = None if method == "get" else {"name": "Mine now"}
    response = api(method, path, body, tenant=world.globex)
    # A method the view does not take is refused (405) before any object is looked up.
    assert response.status_code in {404, 405}, response.content
    if response.status_code == 404:
        assert response.json()["error"]["code"] == "not_found"
        assert "Spring launch" not in response.content.decode()
    assert snapshot() == before


def test_it_needs_a_secret_key(client, world, shop) -> None:
    response = client.post("/api/v1/campaigns/", shop.body(), content_type="application/json")
    assert response.status_code == 401
    assert client.get("/api/v1/campaigns/").status_code == 401
    assert not Campaign.objects.exists()
