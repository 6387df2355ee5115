"""Settings → Webhooks: admins manage endpoints, everyone else reads; another team's endpoint
is a 404; the secret shows once; messages show their status in the team's time zone, named."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine

from audience.models import Contact
from audience.services import Fact, events_record
from webhooks import sending, services
from webhooks.models import WebhookEndpoint, WebhookMessage

pytestmark = pytest.mark.django_db

BASE = "/t/acme/settings/webhooks/"


def test_an_admin_adds_an_endpoint_and_sees_its_secret_once(
    world: Any, login: Any, receiver: Any
) -> None:
    client = login(world.alice)
    assert client.get(f"{BASE}new/").status_code == 200
    page = client.post(
        f"{BASE}new/",
        {
            "url": receiver.url,
            "event_types": ["message.opened", "conversion"],
            "description": "CRM",
        },
    )
    assert page.status_code == 200
    endpoint = WebhookEndpoint.objects.get(tenant=world.acme)
    html = page.content.decode()
    assert endpoint.secret in html and "shown only this once" in html
    assert endpoint.event_types == ["message.opened", "conversion"]
    again = client.get(f"{BASE}{endpoint.public_id}/").content.decode()
    assert endpoint.secret not in again and endpoint.secret_masked in again
    listed = client.get(BASE).content.decode()
    assert receiver.url in listed and "message.opened, conversion" in listed


def test_the_form_shows_field_errors(world: Any, login: Any, settings: Any) -> None:
    settings.WAYFARER_OUTBOUND_ALLOW_PRIVATE = False
    client = login(world.alice)
    page = client.post(f"{BASE}new/", {"url": "http://example.com/hook"})
    html = page.content.decode()
    assert page.status_code == 200
    assert "it must be an https:// URL" in html and "Choose at least one event type." in html
    page = client.post(
        f"{BASE}new/", {"url": "https://10.0.0.5/hook", "event_types": ["message.sent"]}
    )
    assert "a private address" in page.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_an_admin_edits_disables_rotates_and_deletes(world: Any, login: Any, receiver: Any) -> None:
    client = login(world.alice)
    endpoint = services.endpoint_create(
        tenant=world.acme, url=receiver.url, event_types=["message.sent"]
    )
    url = f"{BASE}{endpoint.public_id}/"
    response = client.post(
        f"{url}edit/",
        {"url": receiver.url, "event_types": ["message.bounced"], "description": "ops"},
    )
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.event_types == ["message.bounced"] and endpoint.description == "ops"
    client.post(f"{url}toggle/")
    endpoint.refresh_from_db()
    assert endpoint.enabled is False
    assert "disabled" in client.get(url).content.decode()
    old = endpoint.secret
    page = client.post(f"{url}rotate-secret/").content.decode()
    endpoint.refresh_from_db()
    assert endpoint.secret != old and endpoint.secret in page and "rotated" in page
    assert client.post(f"{url}delete/").status_code == 302
    assert not WebhookEndpoint.objects.exists()


def test_messages_show_status_code_attempts_and_next_retry_in_the_team_zone(
    world: Any, login: Any, receiver: Any
) -> None:
    world.acme.timezone = "Europe/Berlin"
    world.acme.save(update_fields=["timezone"])
    endpoint = services.endpoint_create(
        tenant=world.acme, url=receiver.url, event_types=["message.bounced"]
    )
    receiver.secrets.append(endpoint.secret)
    ann = Contact.objects.create(tenant=world.acme, email="ann@example.com")
    receiver.answers = [502]
    with time_machine.travel(datetime(2026, 7, 1, 10, 0, tzinfo=UTC), tick=False):
        events_record(tenant=world.acme, facts=[Fact(ann.pk, "Email Bounced", "b", "m", {})])
        sending.messages_send()
        html = login(world.bob).get(f"{BASE}{endpoint.public_id}/").content.decode()
    assert "Europe/Berlin" in html
    assert "1 Jul 2026 12:00:00" in html  # created at 10:00 UTC, shown at 12:00 in Berlin
    assert "1 Jul 2026 12:00:05" in html or "1 Jul 2026 12:00:04" in html  # next retry
    assert ">502<" in html and "pending" in html and "the endpoint answered 502" in html
    assert "Replay" not in html  # bob is a viewer


def test_replay_and_test_event_from_the_page(world: Any, login: Any, receiver: Any) -> None:
    client = login(world.alice)
    endpoint = services.endpoint_create(
        tenant=world.acme, url=receiver.url, event_types=["message.bounced"]
    )
    receiver.secrets.append(endpoint.secret)
    url = f"{BASE}{endpoint.public_id}/"
    assert client.post(f"{url}test/").status_code == 302
    sending.messages_send()
    message = WebhookMessage.objects.get()
    panel = client.post(
        f"{url}messages/{message.public_id}/replay/", HTTP_HX_REQUEST="true"
    ).content.decode()
    assert 'id="messages-panel"' in panel and "queued again" in panel
    assert "<html" not in panel  # the panel alone, for htmx
    sending.messages_send()
    assert receiver.types() == ["webhook.test", "webhook.test"]
    first, second = receiver.requests
    assert first[0]["webhook-id"] == second[0]["webhook-id"]


def test_a_viewer_reads_but_cannot_change_anything(world: Any, login: Any, receiver: Any) -> None:
    endpoint = services.endpoint_create(
        tenant=world.acme, url=receiver.url, event_types=["message.sent"]
    )
    message = WebhookMessage.objects.create(
        tenant=world.acme, endpoint=endpoint, type="message.sent", payload={}, idempotency_key="k"
    )
    client = login(world.bob)
    assert client.get(BASE).status_code == 200
    detail = client.get(f"{BASE}{endpoint.public_id}/")
    assert detail.status_code == 200 and "Rotate secret" not in detail.content.decode()
    form = client.get(f"{BASE}{endpoint.public_id}/edit/").content.decode()
    assert "Only admins of the team can add or change endpoints." in form and "Save" not in form
    url = f"{BASE}{endpoint.public_id}/"
    for path in (
        f"{BASE}new/",
        f"{url}edit/",
        f"{url}toggle/",
        f"{url}rotate-secret/",
        f"{url}test/",
        f"{url}delete/",
        f"{url}messages/{message.public_id}/replay/",
    ):
        assert client.post(path, {"url": "https://x.example/"}).status_code == 403, path
    endpoint.refresh_from_db()
    assert endpoint.enabled and WebhookEndpoint.objects.count() == 1
    assert WebhookMessage.objects.get().status == "pending"


def test_another_teams_endpoint_is_a_404(world: Any, login: Any, receiver: Any) -> None:
    endpoint = services.endpoint_create(
        tenant=world.acme, url=receiver.url, event_types=["message.sent"]
    )
    message = WebhookMessage.objects.create(
        tenant=world.acme, endpoint=endpoint, type="message.sent", payload={}, idempotency_key="k"
    )
    client = login(world.charlie)
    theirs = f"/t/globex/settings/webhooks/{endpoint.public_id}/"
    assert client.get(theirs).status_code == 404
    for path in ("edit/", "toggle/", "rotate-secret/", "test/", "delete/"):
        assert client.post(f"{theirs}{path}").status_code == 404, path
    assert client.post(f"{theirs}messages/{message.public_id}/replay/").status_code == 404
    assert client.get(f"{BASE}{endpoint.public_id}/").status_code == 404  # not a member
    assert WebhookEndpoint.objects.filter(enabled=True).count() == 1
