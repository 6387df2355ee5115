"""Every tenant URL pattern, probed: anonymous → login, other tenant → 404, viewer → no changes,
and ids of another tenant's objects → 404.

The patterns are collected from the URL resolver, so a view added by any app under
/t/<tenant_slug>/ is probed without being listed here. A pattern with a URL argument this module
does not know how to fill fails the test on purpose: add it to `ids_for`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from audience.models import Contact, ContactImport, Product
from campaigns.models import Campaign, CampaignSegment, Occurrence, Variant
from journeys.models import Edge, Journey, JourneyVersion, Node
from messaging.models import Delivery, SenderIdentity, SendingPolicy, Suppression, Template
from personalisation.personas.models import PersonaRun
from personalisation.placements.models import Placement, PlacementVariant
from personalisation.search.models import Synonym
from personalisation.surveys.models import Survey
from segments.models import Segment
from tenants.models import ApiKey, Invitation, Membership
from tests.factories import api_key
from webhooks.models import WebhookEndpoint, WebhookMessage


@dataclass(frozen=True)
class TenantRoute:
    name: str
    route: str  # "/t/{tenant_slug}/settings/members/{member_id}/role/"
    params: tuple[str, ...]


def _walk(patterns: list, prefix: str = "") -> list[tuple[str, URLPattern]]:
    found = []
    for p in patterns:
        route = prefix + str(p.pattern)
        if isinstance(p, URLResolver):
            found += _walk(p.url_patterns, route)
        else:
            found.append((route, p))
    return found


def tenant_routes() -> list[TenantRoute]:
    import re

    routes = []
    for route, pattern in _walk(get_resolver().url_patterns):
        if "<slug:tenant_slug>" not in route:
            continue
        params = tuple(re.findall(r"<(?:\w+:)?(\w+)>", route))
        template = "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)
        routes.append(TenantRoute(pattern.name, template, params))
    return routes


ROUTES = tenant_routes()


def ids_for(world, tenant) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """An object of `tenant` for every URL argument, created fresh."""
    member = Membership.objects.filter(tenant=tenant).exclude(role="owner").first() or (
        Membership.objects.filter(tenant=tenant).first()
    )
    key, _ = api_key(tenant)
    contact = Contact.objects.create(tenant=tenant, email=f"someone@{tenant.slug}.example")
    job = ContactImport.objects.create(
        tenant=tenant,
        filename="x.csv",
        content="email\na@b.example\n",
        columns=["email"],
        mapping={"email": "email"},
        total_rows=1,
    )
    segment = Segment.objects.create(
        tenant=tenant,
        name=f"Probe {Segment.objects.filter(tenant=tenant).count() + 1}",
        rules={
            "type": "group",
            "match": "all",
            "negate": False,
            "children": [{"type": "reachable", "channel": "email", "reachable": True}],
        },
    )
    template = Template.objects.create(
        tenant=tenant,
        name=f"Probe {Template.objects.filter(tenant=tenant).count() + 1}",
        subject="Hello {{ contact.first_name }}",
        html="<p>Hi</p>",
    )
    delivery = Delivery.objects.create(
        tenant=tenant,
        contact=contact,
        channel=template.channel,
        template=template,
        content=template.snapshot(),
        source="test",
        idempotency_key=f"probe-{Delivery.objects.filter(tenant=tenant).count() + 1}",
    )
    Suppression.objects.get_or_create(
        tenant=tenant, address=f"gone@{tenant.slug}.example", defaults={"reason": "manual"}
    )
    # A journey whose draft has a trigger "n1" (journeys.services makes it so).
    from journeys.services import journey_create

    journey = journey_create(
        tenant=tenant, name=f"Probe {Journey.objects.filter(tenant=tenant).count() + 1}"
    )
    # A draft campaign to that segment with that template, and an occurrence of it.
    from campaigns.services import campaign_create

    campaign = campaign_create(
        tenant=tenant,
        name=f"Probe {Campaign.objects.filter(tenant=tenant).count() + 1}",
        segments=[segment],
        variants=[(template, 100)],
    )
    occurrence = Occurrence.objects.create(tenant=tenant, campaign=campaign, key="once")
    endpoint = WebhookEndpoint.objects.create(
        tenant=tenant, url=f"https://hooks.{tenant.slug}.example/in", event_types=["message.sent"]
    )
    message = WebhookMessage.objects.create(
        tenant=tenant,
        endpoint=endpoint,
        type="message.sent",
        payload={"type": "message.sent", "data": {}},
        idempotency_key=f"probe-{WebhookMessage.objects.filter(tenant=tenant).count() + 1}",
    )
    # Personalisation (issue 16): a placement with a variant, a survey, a persona run, a synonym.
    from personalisation.placements.services import placement_create, variant_create
    from personalisation.search.services import synonyms_set
    from personalisation.surveys.services import survey_create

    n = Placement.objects.filter(tenant=tenant).count() + 1
    placement = placement_create(tenant=tenant, key=f"probe-{n}", name=f"Probe {n}")
    variant = variant_create(tenant=tenant, placement=placement, name="Default", title="Hello")
    survey = survey_create(
        tenant=tenant, name=f"Probe {n}", kind="nps", question="How likely are you to recommend us?"
    )
    run = PersonaRun.objects.create(tenant=tenant)
    product = Product.objects.create(tenant=tenant, sku=f"probe-{n}", name=f"Probe {n}")
    synonym = synonyms_set(tenant=tenant, term=f"probe{n}", alternatives=["thing"])
    invitation = Invitation.objects.create(
        tenant=tenant,
        email=f"invited{Invitation.objects.filter(tenant=tenant).count()}@{tenant.slug}.example",
        secret_hash=f"probe-{tenant.slug}-{Invitation.objects.count()}",
    )
    return {
        "tenant_slug": tenant.slug,
        "invitation_id": str(invitation.public_id),
        "placement_id": str(placement.public_id),
        "variant_id": str(variant.public_id),
        "survey_id": str(survey.public_id),
        "run_id": str(run.public_id),
        "index": "0",
        "synonym_id": str(synonym.public_id),
        "product_id": str(product.public_id),
        "member_id": str(member.public_id),
        "key_id": str(key.public_id),
        "contact_id": str(contact.public_id),
        "import_id": str(job.public_id),
        "segment_id": str(segment.public_id),
        "template_id": str(template.public_id),
        "delivery_id": str(delivery.public_id),
        "journey_id": str(journey.public_id),
        "node_key": "n1",
        "campaign_id": str(campaign.public_id),
        "occurrence_id": str(occurrence.public_id),
        "endpoint_id": str(endpoint.public_id),
        "message_id": str(message.public_id),
    }


def url(route: TenantRoute, values: dict[str, str]) -> str:
    missing = set(route.params) - set(values)
    assert not missing, f"{route.name}: teach ids_for() to fill {missing}"
    return route.route.format(**values)


def snapshot() -> tuple:
    return (
        sorted(Membership.objects.values_list("tenant_id", "user_id", "role")),
        sorted(ApiKey.objects.values_list("public_id", "name", "revoked_at")),
        sorted(Contact.objects.values_list("public_id", "email", "first_name")),
        sorted(ContactImport.objects.values_list("public_id", "status", "mapping")),
        sorted(Segment.objects.values_list("public_id", "name", "description")),
        sorted(Template.objects.values_list("public_id", "name", "subject", "updated_at")),
        sorted(Delivery.objects.values_list("public_id", "status", "attempts")),
        sorted(SendingPolicy.objects.values_list("tenant_id", "frequency_cap", "hourly_limit")),
        sorted(SenderIdentity.objects.values_list("tenant_id", "sender_name", "sender_email")),
        sorted(Suppression.objects.values_list("tenant_id", "address")),
        sorted(Journey.objects.values_list("public_id", "name", "status")),
        sorted(JourneyVersion.objects.values_list("pk", "state", "reentry", "exit_events")),
        sorted(Node.objects.values_list("pk", "label", "settings", "x", "y")),
        sorted(Edge.objects.values_list("pk", "source", "port", "target")),
        sorted(Campaign.objects.values_list("public_id", "name", "state", "updated_at")),
        sorted(CampaignSegment.objects.values_list("pk", "segment_id", "exclude")),
        sorted(Variant.objects.values_list("pk", "template_id", "weight")),
        sorted(Occurrence.objects.values_list("public_id", "state")),
        sorted(
            WebhookEndpoint.objects.values_list(
                "public_id", "url", "enabled", "secret", "updated_at"
            )
        ),
        sorted(WebhookMessage.objects.values_list("public_id", "status", "attempts")),
        sorted(Invitation.objects.values_list("public_id", "email", "revoked_at")),
        sorted(Placement.objects.values_list("public_id", "key", "name", "updated_at")),
        sorted(PlacementVariant.objects.values_list("public_id", "title", "active", "position")),
        sorted(Survey.objects.values_list("public_id", "name", "active", "updated_at")),
        sorted(PersonaRun.objects.values_list("public_id", "status")),
        sorted(Synonym.objects.values_list("public_id", "term", "updated_at")),
    )


def test_it_finds_the_tenant_routes() -> None:
    names = {r.name for r in ROUTES}
    assert {"dashboard", "member_list", "member_role", "api_key_revoke", "tenant_settings"} <= names
    assert {"template_edit", "delivery_detail", "sending_settings"} <= names
    assert "sender_identity_edit" in names
    assert {"campaign_detail", "campaign_schedule", "campaign_results"} <= names


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.name)
@pytest.mark.parametrize("method", ["get", "post"])
def test_it_sends_anonymous_users_to_login(client, world, route, method) -> None:
    target = url(route, ids_for(world, world.acme))
    response = getattr(client, method)(target)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.name)
@pytest.mark.parametrize("method", ["get", "post"])
def test_it_answers_404_to_members_of_another_tenant(login, world, route, method) -> None:
    target = url(route, ids_for(world, world.acme))
    before = snapshot()
    response = getattr(login(world.charlie), method)(target, {"role": "owner", "name": "x"})
    assert response.status_code == 404
    assert snapshot() == before


@pytest.mark.parametrize(
    "route", [r for r in ROUTES if set(r.params) - {"tenant_slug"}], ids=lambda r: r.name
)
@pytest.mark.parametrize("method", ["get", "post"])
def test_it_answers_404_for_another_tenants_objects(login, world, route, method) -> None:
    # alice is an admin of acme; the ids in the URL belong to globex.
    values = {**ids_for(world, world.globex), "tenant_slug": world.acme.slug}
    before = snapshot()
    response = getattr(login(world.alice), method)(url(route, values), {"role": "viewer"})
    # A method the view does not take is refused (405) before any object is looked up.
    assert response.status_code in {404, 405}
    assert snapshot() == before


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.name)
def test_it_lets_a_viewer_change_nothing(login, world, route) -> None:
    target = url(route, ids_for(world, world.acme))
    before = snapshot()
    response = login(world.bob).post(
        target,
        {"role": "owner", "name": "Hijacked", "email": "charlie@example.com", "kind": "secret"},
    )
    assert response.status_code == 403
    assert snapshot() == before


# Reads that are more than looking: a bulk export of personal data needs a marketer.
MARKETER_READS = {"contact_export", "segment_export"}


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.name)
def test_it_lets_a_viewer_read_every_page_that_can_be_read(login, world, route) -> None:
    response = login(world.bob).get(url(route, ids_for(world, world.acme)))
    if route.name in MARKETER_READS:
        assert response.status_code == 403
    else:
        assert response.status_code in (200, 405)  # 405: POST-only actions
