"""Fixtures of the placements suites: acme's home banner with a default, an outdoor-lovers
variant (segment) and an onboarding variant (stage); globex's own placement of the same key."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

import pytest

from personalisation.placements.models import Placement, PlacementVariant
from personalisation.placements.services import placement_create, variant_create
from segments.models import Segment
from segments.services import segment_create
from tenants import services


def outdoor_rules() -> dict[str, Any]:
    """Viewed two outdoor products (the shop's category) at any time."""
    return {
        "type": "group",
        "match": "all",
        "children": [
            {
                "type": "event",
                "event": "Product Viewed",
                "where": [{"property": "category", "operator": "equals", "value": "outdoor"}],
                "count": {"operator": "at_least", "value": 2},
            }
        ],
    }


@dataclass
class Banner:
    placement: Placement
    default: PlacementVariant
    outdoor: PlacementVariant
    onboarding: PlacementVariant
    segment: Segment
    globex: Placement
    globex_default: PlacementVariant


@pytest.fixture
def banner(world) -> Banner:  # type: ignore[no-untyped-def]
    segment = segment_create(tenant=world.acme, name="Outdoor lovers", rules=outdoor_rules())
    placement = placement_create(tenant=world.acme, key="home-banner", name="Home banner")
    default = variant_create(
        tenant=world.acme,
        placement=placement,
        name="Everyone",
        title="New season, new trails",
        body="Free returns on everything.",
        link_url="/shop/",
        link_text="Shop now",
    )
    outdoor = variant_create(
        tenant=world.acme,
        placement=placement,
        name="Outdoor",
        title="Tents from 89 €",
        body="For your next night under the stars.",
        image_url="https://cdn.example.com/tent.jpg",
        link_url="/shop/outdoor/",
        link_text="See tents",
        segment=segment,
    )
    onboarding = variant_create(
        tenant=world.acme,
        placement=placement,
        name="Welcome",
        title="Welcome! 10 % off your second order",
        lifecycle_stage="onboarding",
    )
    globex = placement_create(tenant=world.globex, key="home-banner", name="Globex banner")
    globex_default = variant_create(
        tenant=world.globex, placement=globex, name="Globex", title="Globex secret offer"
    )
    return Banner(placement, default, outdoor, onboarding, segment, globex, globex_default)


@pytest.fixture
def write_keys(world) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {
        "acme": services.api_key_create(tenant=world.acme, kind="write", name="site")[1],
        "globex": services.api_key_create(tenant=world.globex, kind="write", name="site")[1],
    }


def basic(raw_key: str) -> str:
    return "Basic " + base64.b64encode(f"{raw_key}:".encode()).decode()


@pytest.fixture
def serve(client, write_keys):  # type: ignore[no-untyped-def]
    """serve(keys, tenant="acme", **visitor): GET /v1/placements as that tenant's site."""

    def _serve(keys: str, tenant: str = "acme", **params: str) -> Any:
        return client.get(
            "/v1/placements",
            {"keys": keys, **params},
            HTTP_AUTHORIZATION=basic(write_keys[tenant]),
        )

    return _serve


@pytest.fixture
def batch(client, write_keys):  # type: ignore[no-untyped-def]
    """batch(calls, tenant="acme"): POST /v1/batch as the tenant's site (accepted into the inbox;
    no worker runs in these tests)."""

    def _batch(calls: list[dict[str, Any]], tenant: str = "acme") -> Any:
        response = client.post(
            "/v1/batch",
            data=json.dumps({"batch": calls}),
            content_type="application/json",
            HTTP_AUTHORIZATION=basic(write_keys[tenant]),
        )
        assert response.status_code == 200, response.content
        return response

    return _batch


def viewed(message_id: str, category: str, **visitor: str) -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Product Viewed",
        "messageId": message_id,
        "properties": {"sku": f"sku-{message_id}", "category": category},
        **visitor,
    }
