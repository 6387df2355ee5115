"""Templates through the REST API: an integration creates what it sends. The same checks as the
editor (Liquid that fails is refused by field), always within the key's team, and a template a
campaign or a journey uses is not deleted from under it."""

from __future__ import annotations

from typing import Any

import pytest

from campaigns.models import Campaign, Variant
from journeys import services as journey_services
from messaging.models import Template

pytestmark = pytest.mark.django_db

EMAIL = {
    "name": "Spring sale",
    "channel": "email",
    "subject": "Hi {{ contact.first_name | default: 'there' }}, 20% off",
    "preheader": "This week only",
    "html": "<p>Hello {{ contact.first_name }}</p>",
}
PUSH = {
    "name": "Back in stock",
    "channel": "push",
    "title": "It's back",
    "body": "{{ contact.first_name }}, your size is back",
    "target_url": "https://shop.example/p/1",
    "actions": [{"action": "view", "title": "View", "url": "https://shop.example/p/1"}],
}


def fields_of(response: Any) -> dict[str, Any]:
    assert response.status_code == 400, response.content
    body = response.json()["error"]
    assert body["code"] == "invalid"
    return body["fields"]


def test_it_creates_an_email_template_and_shows_it(api, world) -> None:
    created = api("post", "message-templates/", EMAIL)
    assert created.status_code == 201, created.content
    body = created.json()
    template = Template.objects.get(tenant=world.acme)
    assert body["id"] == str(template.public_id)
    assert (body["name"], body["channel"], body["subject"]) == (
        "Spring sale",
        "email",
        EMAIL["subject"],
    )
    shown = api("get", f"message-templates/{body['id']}/").json()
    assert shown == body
    listed = api("get", "message-templates/").json()["results"]
    assert [t["id"] for t in listed] == [body["id"]]


def test_it_creates_a_web_push_template_with_its_buttons(api, world) -> None:
    created = api("post", "message-templates/", PUSH)
    assert created.status_code == 201, created.content
    template = Template.objects.get(tenant=world.acme)
    assert template.channel == "push"
    assert template.actions == PUSH["actions"]
    assert api("get", "message-templates/?channel=email").json()["results"] == []
    pushes = api("get", "message-templates/?channel=push").json()["results"]
    assert [t["name"] for t in pushes] == ["Back in stock"]
    assert "channel" in fields_of(api("get", "message-templates/?channel=sms"))


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({**EMAIL, "subject": "Hi {{ contact.first_name "}, "subject", "line 1"),
        ({**EMAIL, "html": "{% if %}<p>x</p>"}, "html", ""),
        ({**EMAIL, "html": "{% include 'x' %}"}, "html", ""),
        ({**EMAIL, "subject": ""}, "subject", "An email needs this."),
        ({**PUSH, "body": ""}, "body", "A push message needs this."),
        ({**EMAIL, "channel": "sms"}, "channel", ""),
        ({**EMAIL, "name": "x" * 121}, "name", ""),
        ({**PUSH, "actions": [{"title": "A", "url": "u"}] * 3}, "actions", ""),
        ({**PUSH, "actions": [{"url": "https://x.example"}]}, "actions", ""),
    ],
)
def test_it_refuses_a_bad_template_naming_the_field(api, world, body, field, words) -> None:
    fields = fields_of(api("post", "message-templates/", body))
    assert field in fields, fields
    assert words in str(fields[field])
    assert not Template.objects.exists()


def test_it_refuses_a_name_the_team_has_and_allows_one_another_team_has(api, world) -> None:
    assert api("post", "message-templates/", EMAIL, tenant=world.globex).status_code == 201
    assert api("post", "message-templates/", EMAIL).status_code == 201
    refused = api("post", "message-templates/", {**EMAIL, "subject": "Other"})
    assert refused.status_code == 400
    assert "already exists" in str(refused.json()["error"]["fields"])
    assert Template.objects.filter(tenant=world.acme).count() == 1


def test_it_changes_a_template_and_checks_it_as_on_creation(api, world) -> None:
    template_id = api("post", "message-templates/", EMAIL).json()["id"]
    changed = api("patch", f"message-templates/{template_id}/", {"subject": "New {{ shop.name }}"})
    assert changed.status_code == 200, changed.content
    assert changed.json()["subject"] == "New {{ shop.name }}"
    assert changed.json()["html"] == EMAIL["html"]  # untouched
    template = Template.objects.get(public_id=template_id)
    assert template.subject == "New {{ shop.name }}"
    refused = api("patch", f"message-templates/{template_id}/", {"html": "{{ oops "})
    assert "html" in fields_of(refused)
    template.refresh_from_db()
    assert template.html == EMAIL["html"]


def test_it_deletes_an_unused_template(api, world) -> None:
    template_id = api("post", "message-templates/", EMAIL).json()["id"]
    assert api("delete", f"message-templates/{template_id}/").status_code == 204
    assert not Template.objects.filter(public_id=template_id).exists()
    assert api("get", f"message-templates/{template_id}/").status_code == 404


def test_it_refuses_to_delete_a_template_a_campaign_uses(api, world) -> None:
    template = Template.objects.create(tenant=world.acme, **EMAIL)
    campaign = Campaign.objects.create(tenant=world.acme, name="Spring launch")
    Variant.objects.create(tenant=world.acme, campaign=campaign, key="A", template=template)
    refused = api("delete", f"message-templates/{template.public_id}/")
    assert refused.status_code == 409, refused.content
    error = refused.json()["error"]
    assert error["code"] == "in_use"
    assert "Spring launch" in error["message"]
    assert Template.objects.filter(pk=template.pk).exists()


def test_it_refuses_to_delete_a_template_a_journey_step_uses(api, world) -> None:
    template = Template.objects.create(tenant=world.acme, **EMAIL)
    graph = {
        "nodes": [
            {"key": "start", "kind": "trigger_api"},
            {
                "key": "mail",
                "kind": "action_email",
                "settings": {"template": str(template.public_id)},
            },
        ],
        "edges": [{"source": "start", "port": "next", "target": "mail"}],
    }
    journey_services.journey_create(tenant=world.acme, name="Welcome series", graph=graph)
    refused = api("delete", f"message-templates/{template.public_id}/")
    assert refused.status_code == 409, refused.content
    assert "Welcome series" in refused.json()["error"]["message"]
    assert Template.objects.filter(pk=template.pk).exists()


def test_another_team_cannot_see_change_or_delete_a_template(api, world) -> None:
    template_id = api("post", "message-templates/", EMAIL).json()["id"]
    path = f"message-templates/{template_id}/"
    assert api("get", path, tenant=world.globex).status_code == 404
    assert api("patch", path, {"name": "Mine"}, tenant=world.globex).status_code == 404
    assert api("delete", path, tenant=world.globex).status_code == 404
    assert api("get", "message-templates/", tenant=world.globex).json()["results"] == []
    template = Template.objects.get(public_id=template_id)
    assert (template.name, template.tenant_id) == ("Spring sale", world.acme.pk)
    assert api("get", "message-templates/not-a-uuid/").status_code == 404


def test_it_needs_a_secret_key(client, world) -> None:
    response = client.post("/api/v1/message-templates/", EMAIL, content_type="application/json")
    assert response.status_code == 401
    assert not Template.objects.exists()


def test_it_refuses_to_change_the_channel_of_a_template_a_campaign_uses(api, world) -> None:
    # The campaign's next send would fail: a push campaign cannot send an email template.
    template = Template.objects.create(tenant=world.acme, **EMAIL)
    campaign = Campaign.objects.create(tenant=world.acme, name="Spring launch")
    Variant.objects.create(tenant=world.acme, campaign=campaign, key="A", template=template)
    push = {"channel": "push", "title": "Hi", "body": "There"}

    refused = api("patch", f"message-templates/{template.public_id}/", push)

    assert refused.status_code == 400, refused.content
    assert "Spring launch" in str(fields_of(refused)["channel"])
    template.refresh_from_db()
    assert template.channel == "email"
    unused = Template.objects.create(tenant=world.acme, **{**EMAIL, "name": "Unused"})
    changed = api("patch", f"message-templates/{unused.public_id}/", push)
    assert changed.status_code == 200, changed.content
    assert changed.json()["channel"] == "push"
