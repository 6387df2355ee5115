"""The ingestion door as the browser SDKs call it: Segment's analytics.js (one-letter paths,
X-Retry-Count on retries) and RudderStack's JavaScript SDK (AnonymousId, SentAt and Rsa-*
headers), and `group` calls, which both send."""

from __future__ import annotations

import json

import pytest

from audience.inbox import inbox_drain
from audience.models import Contact, Event
from messaging.context import contact_dict
from messaging.rendering import render_push
from segments.selectors import segment_members
from segments.services import segment_create
from tenants import services
from tests.factories import basic

pytestmark = pytest.mark.django_db(transaction=False)

SHORT = {
    "i": "identify",
    "t": "track",
    "p": "page",
    "s": "screen",
    "a": "alias",
    "g": "group",
    "b": "batch",
}


@pytest.fixture
def write_key(world) -> str:  # type: ignore[no-untyped-def]
    return services.api_key_create(tenant=world.acme, kind="write", name="site")[1]


@pytest.fixture
def send(client, write_key):  # type: ignore[no-untyped-def]
    def _send(path: str, body: object, **headers: str):  # type: ignore[no-untyped-def]
        response = client.post(
            f"/v1/{path}",
            data=json.dumps(body),
            content_type="text/plain",  # what analytics.js sends, to spare a preflight
            HTTP_AUTHORIZATION=basic(write_key),
            **headers,
        )
        inbox_drain()
        return response

    return _send


def message(type_: str, message_id: str, **fields: object) -> dict[str, object]:
    body: dict[str, object] = {"type": type_, "messageId": message_id, "anonymousId": "anon-1"}
    if type_ == "track":
        body["event"] = "Signed Up"
    if type_ == "alias":
        body.update(previousId="anon-1", userId="u-1")
    if type_ == "group":
        body["groupId"] = "acme-inc"
    return {**body, **fields}


@pytest.mark.parametrize(("short", "kind"), sorted(SHORT.items()))
def test_it_takes_every_call_on_its_one_letter_path_as_on_its_long_one(send, short, kind) -> None:
    for path, message_id in ((short, f"{short}-short"), (kind, f"{short}-long")):
        body: object = message(kind, message_id) if kind != "batch" else None
        if kind == "batch":
            body = {"batch": [message("track", message_id), message("group", message_id + "-g")]}
        response = send(path, body)
        assert (response.status_code, response.json()) == (200, {"success": True}), path
        assert Event.objects.filter(message_id=message_id).exists()


@pytest.mark.parametrize("path", [*SHORT, *SHORT.values()])
def test_it_answers_every_preflight_with_the_headers_the_browser_sdks_send(client, path) -> None:
    response = client.options(
        f"/v1/{path}",
        HTTP_ORIGIN="https://shop.example",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization,content-type,x-retry-count",
    )
    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == "*"
    assert "POST" in response["Access-Control-Allow-Methods"]
    allowed = {h.strip().lower() for h in response["Access-Control-Allow-Headers"].split(",")}
    segment = {"authorization", "content-type", "x-retry-count"}
    rudderstack = {
        "accept",
        "anonymousid",
        "sentat",
        "rsa-recovered",
        "rsa-retry-attempt",
        "rsa-retry-reason",
        "rsa-since-first-attempt",
        "rsa-since-last-attempt",
    }
    assert segment | rudderstack <= allowed


def test_it_stores_a_retried_request_once(send) -> None:
    body = message("track", "retried")
    assert send("t", body).status_code == 200
    assert send("t", body, HTTP_X_RETRY_COUNT="1").status_code == 200
    batch = {"batch": [body, message("page", "p-1")]}
    assert send("b", batch, HTTP_X_RETRY_COUNT="2").status_code == 200
    assert send("b", batch, HTTP_X_RETRY_COUNT="3").status_code == 200
    assert Event.objects.filter(message_id="retried").count() == 1
    assert Event.objects.count() == 2


def test_it_keeps_the_group_on_the_contact_as_group_attributes(send) -> None:
    send("identify", message("identify", "i-1", userId="u-1", traits={"email": "ann@x.io"}))
    group = message(
        "group",
        "g-1",
        userId="u-1",
        traits={"name": "Acme Inc", "plan": "enterprise", "employees": 120},
    )
    assert send("g", group).status_code == 200
    contact = Contact.objects.get(user_id="u-1")
    assert contact.email == "ann@x.io"  # a group's traits are the group's, not the user's
    assert {k: v for k, v in contact.attributes.items() if k.startswith("group_")} == {
        "group_id": "acme-inc",
        "group_name": "Acme Inc",
        "group_plan": "enterprise",
        "group_employees": 120,
    }
    event = Event.objects.get(message_id="g-1")
    assert (event.type, event.name) == ("group", "Group")
    assert event.properties == {
        "groupId": "acme-inc",
        "traits": {"name": "Acme Inc", "plan": "enterprise", "employees": 120},
    }


def test_it_replaces_the_former_group_when_the_contact_joins_another(send) -> None:
    send("g", message("group", "g-1", traits={"name": "Acme", "plan": "gold"}))
    send("g", message("group", "g-2", groupId="globex", traits={"name": "Globex"}))
    attributes = Contact.objects.get().attributes
    assert attributes == {"group_id": "globex", "group_name": "Globex"}


def test_it_finds_contacts_by_their_group_in_a_segment(send, world) -> None:
    send("g", message("group", "g-1", anonymousId="a", traits={"plan": "enterprise"}))
    send("g", message("group", "g-2", anonymousId="b", groupId="x", traits={"plan": "free"}))
    segment = segment_create(
        tenant=world.acme,
        name="Enterprise accounts",
        rules={
            "type": "group",
            "match": "all",
            "children": [
                {
                    "type": "attribute",
                    "field": "attributes.group_plan",
                    "operator": "equals",
                    "value": "enterprise",
                }
            ],
        },
    )
    members = segment_members(tenant=world.acme, segment=segment)
    assert [c.attributes["group_id"] for c in members] == ["acme-inc"]


def test_it_puts_the_group_in_templates_as_contact_attributes(send, world) -> None:
    send("g", message("group", "g-1", traits={"name": "Acme Inc"}))
    context = {"contact": contact_dict(Contact.objects.get(), world.acme)}
    content = {"title": "News for {{ contact.attributes.group_name }}", "body": "x"}
    assert render_push(content, context).title == "News for Acme Inc"


@pytest.mark.parametrize(
    ("body", "field", "text"),
    [
        ({"groupId": None}, "groupId", "group needs a groupId."),
        ({"groupId": ""}, "groupId", "group needs a groupId."),
        ({"groupId": {"id": 1}}, "groupId", "groupId must be a string."),
        ({"groupId": "x" * 300}, "groupId", "groupId is longer than"),
        ({"traits": ["plan"]}, "traits", "traits must be a JSON object."),
        ({"anonymousId": None}, "userId", "Every message needs a userId or an anonymousId."),
    ],
)
def test_it_refuses_a_bad_group_call_naming_the_field(send, body, field, text) -> None:
    response = send("g", message("group", "bad", **body))
    assert response.status_code == 400
    assert response.json()["field"] == field
    assert response.json()["message"].startswith(text)
    batch = send("b", {"batch": [message("track", "ok"), message("group", "bad", **body)]})
    assert (batch.status_code, batch.json()["index"], batch.json()["field"]) == (400, 1, field)
    assert not Event.objects.exists()


def test_it_accepts_a_numeric_group_id_as_text(send) -> None:
    assert send("group", message("group", "g-1", groupId=42)).status_code == 200
    assert Contact.objects.get().attributes == {"group_id": "42"}


def test_it_acknowledges_analytics_js_telemetry_and_stores_nothing(client) -> None:
    preflight = client.options("/v1/m", HTTP_ORIGIN="https://shop.example")
    assert (preflight.status_code, preflight["Access-Control-Allow-Origin"]) == (204, "*")
    metrics = {"series": [{"type": "Counter", "metric": "analytics_js.invoke", "value": 1}]}
    response = client.post("/v1/m", data=json.dumps(metrics), content_type="text/plain")
    assert (response.status_code, response["Access-Control-Allow-Origin"]) == (200, "*")
    assert not Event.objects.exists()
