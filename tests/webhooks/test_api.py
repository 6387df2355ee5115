"""The webhooks REST API: endpoints and their messages, always within the key's team (another
team's id is a 404 on every call), refusals that name the field."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from audience.models import Contact
from audience.services import Fact, events_record
from webhooks import sending
from webhooks.models import WebhookEndpoint, WebhookMessage

pytestmark = pytest.mark.django_db


def fields(response: Any) -> dict[str, Any]:
    assert response.status_code == 400, response.content
    body = response.json()["error"]
    assert body["code"] == "invalid"
    return body["fields"]


def create(api: Any, url: str, **body: Any) -> dict[str, Any]:
    response = api(
        "post", "webhooks/endpoints/", {"url": url, "event_types": ["message.opened"], **body}
    )
    assert response.status_code == 201, response.content
    return response.json()


def test_it_creates_an_endpoint_and_shows_the_secret_only_then(api: Any, receiver: Any) -> None:
    body = create(api, receiver.url, description="CRM sync")
    assert body["secret"].startswith("whsec_")
    assert body["event_types"] == ["message.opened"] and body["enabled"] is True
    assert body["secret_masked"].endswith(body["secret"][-4:])
    read = api("get", f"webhooks/endpoints/{body['id']}/").json()
    assert "secret" not in read and read["description"] == "CRM sync"
    listed = api("get", "webhooks/endpoints/").json()
    assert [e["id"] for e in listed["results"]] == [body["id"]]


def test_it_refuses_bad_fields_by_name(api: Any, settings: Any) -> None:
    settings.WAYFARER_OUTBOUND_ALLOW_PRIVATE = False
    bad = fields(api("post", "webhooks/endpoints/", {"url": "http://example.com/x"}))
    assert set(bad) == {"event_types"}
    bad = fields(
        api(
            "post",
            "webhooks/endpoints/",
            {"url": "http://example.com/x", "event_types": ["message.opened"]},
        )
    )
    assert "https" in bad["url"][0]
    bad = fields(
        api(
            "post",
            "webhooks/endpoints/",
            {"url": "https://192.168.1.10/x", "event_types": ["message.nope"]},
        )
    )
    assert set(bad) == {"event_types"}
    bad = fields(
        api(
            "post",
            "webhooks/endpoints/",
            {"url": "https://192.168.1.10/x", "event_types": ["message.opened"]},
        )
    )
    assert "private address" in bad["url"][0]
    assert fields(
        api("post", "webhooks/endpoints/", {"url": "https://a.example/", "event_types": []})
    ) == {"event_types": ["Ensure this field has at least 1 elements."]}
    assert not WebhookEndpoint.objects.exists()


def test_it_changes_rotates_tests_and_deletes_an_endpoint(api: Any, receiver: Any) -> None:
    body = create(api, receiver.url)
    path = f"webhooks/endpoints/{body['id']}/"
    changed = api("patch", path, {"event_types": ["conversion", "message.sent"], "enabled": False})
    assert changed.status_code == 200, changed.content
    assert changed.json()["event_types"] == ["message.sent", "conversion"]
    assert changed.json()["enabled"] is False
    assert "url" in fields(api("patch", path, {"url": "ftp://x.example/"}))
    rotated = api("post", f"{path}rotate-secret/").json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != body["secret"]
    api("patch", path, {"enabled": True})
    tested = api("post", f"{path}test/")
    assert tested.status_code == 200 and tested.json()["type"] == "webhook.test"
    receiver.secrets.append(rotated["secret"])
    sending.messages_send()
    assert receiver.types() == ["webhook.test"]
    assert api("delete", path).status_code == 204
    assert api("get", path).status_code == 404
    assert not WebhookMessage.objects.exists()


def test_it_lists_an_endpoints_messages_and_replays_one(
    api: Any, world: Any, receiver: Any
) -> None:
    body = create(api, receiver.url)
    receiver.secrets.append(body["secret"])
    ann = Contact.objects.create(tenant=world.acme, email="ann@example.com")
    for n in range(3):
        events_record(
            tenant=world.acme,
            facts=[Fact(ann.pk, "Email Opened", f"d{n}", "messaging", {"n": n})],
        )
    receiver.answers = [500]
    sending.messages_send()
    path = f"webhooks/endpoints/{body['id']}/messages/"
    page = api("get", f"{path}?limit=2").json()
    assert len(page["results"]) == 2 and page["next"]
    everything = api("get", path).json()["results"]
    assert sorted(m["status"] for m in everything) == ["pending", "succeeded", "succeeded"]
    failed = next(m for m in everything if m["status"] == "pending")
    assert failed["response_code"] == 500 and failed["attempts"] == 1
    assert failed["id"].startswith("msg_") and failed["payload"]["type"] == "message.opened"
    assert api("get", f"{path}?status=pending").json()["results"] == [failed]
    assert "status" in fields(api("get", f"{path}?status=lost"))
    replayed = api("post", f"{path}{failed['id']}/replay/")
    assert replayed.status_code == 200 and replayed.json()["status"] == "pending"
    sending.messages_send()
    assert api("get", f"{path}?status=succeeded").json()["results"].__len__() == 3


def test_another_teams_endpoints_and_messages_are_404(api: Any, world: Any, receiver: Any) -> None:
    theirs = create(api, receiver.url)
    message = WebhookMessage.objects.create(
        tenant=world.acme,
        endpoint=WebhookEndpoint.objects.get(public_id=theirs["id"]),
        type="message.opened",
        payload={},
        idempotency_key="x",
    )
    path = f"webhooks/endpoints/{theirs['id']}/"
    for method, url, body in (
        ("get", path, None),
        ("patch", path, {"description": "mine now"}),
        ("delete", path, None),
        ("post", f"{path}rotate-secret/", None),
        ("post", f"{path}test/", None),
        ("get", f"{path}messages/", None),
        ("post", f"{path}messages/{message.webhook_id}/replay/", None),
        ("get", f"webhooks/endpoints/{uuid.uuid4()}/", None),
        ("get", "webhooks/endpoints/not-an-id/", None),
    ):
        response = api(method, url, body, tenant=world.globex)
        assert response.status_code == 404, (method, url, response.content)
    assert api("get", "webhooks/endpoints/", tenant=world.globex).json()["results"] == []
    assert WebhookEndpoint.objects.get(public_id=theirs["id"]).description == ""


def test_the_schema_describes_the_webhook_api(client: Any) -> None:
    schema = client.get("/api/v1/schema/").content.decode()
    for path in (
        "/api/v1/webhooks/endpoints/",
        "/api/v1/webhooks/endpoints/{public_id}/messages/{message_id}/replay/",
    ):
        assert path in schema
