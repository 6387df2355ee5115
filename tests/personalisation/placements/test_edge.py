"""GET /v1/placements: the variant each of the page's placements shows the visitor, as the
tracker asks for it (write key, CORS), and how it follows what they just did."""

from __future__ import annotations

import time

import pytest

from audience.models import Contact, InboxBatch
from config.celery import app as celery_app
from personalisation.placements.services import variant_update
from tests.personalisation.placements.conftest import viewed

pytestmark = pytest.mark.django_db


def shown(response) -> dict[str, str | None]:  # type: ignore[no-untyped-def]
    """{placement key: the variant's name, or None}."""
    assert response.status_code == 200, response.content
    return {
        key: None if doc is None else doc["name"]
        for key, doc in response.json()["placements"].items()
    }


def test_it_answers_the_variant_with_every_field_the_tracker_renders(serve, banner) -> None:
    response = serve("home-banner", anonymousId="anon-new")
    assert response.json() == {
        "placements": {
            "home-banner": {
                "placement": "home-banner",
                "variant": str(banner.default.public_id),
                "name": "Everyone",
                "title": "New season, new trails",
                "body": "Free returns on everything.",
                "imageUrl": "",
                "linkUrl": "/shop/",
                "linkText": "Shop now",
            }
        }
    }
    assert response["Access-Control-Allow-Origin"] == "*"
    assert "no-store" in response["Cache-Control"]


def test_it_follows_the_visitors_segment_within_one_page_view_of_qualifying(
    serve, batch, banner
) -> None:
    # The ingest worker does not run here: what the visitor sent waits in the inbox, and the
    # segment's refresh task it would queue never runs either.
    assert not celery_app.conf.task_always_eager
    visitor = {"anonymousId": "anon-ann"}
    batch([viewed("v1", "outdoor", **visitor)])
    assert shown(serve("home-banner", **visitor)) == {"home-banner": "Everyone"}  # one view

    batch([viewed("v2", "outdoor", **visitor)])  # the second: she qualifies
    assert InboxBatch.objects.count() == 1
    assert shown(serve("home-banner", **visitor)) == {"home-banner": "Outdoor"}
    assert not InboxBatch.objects.exists()
    ann = Contact.objects.get(tenant=banner.placement.tenant, identities__value="anon-ann")
    assert ann.events.filter(name="Segment Entered").count() == 1  # recorded once


def test_it_serves_the_segment_variant_to_a_member_recorded_earlier(
    serve, batch, banner, settings
) -> None:
    # Recorded by the worker long ago, membership materialised: no inbox row to settle.
    batch([viewed("v1", "outdoor", anonymousId="a"), viewed("v2", "outdoor", anonymousId="a")])
    from audience.inbox import inbox_drain

    inbox_drain()
    assert shown(serve("home-banner", anonymousId="a")) == {"home-banner": "Outdoor"}


def test_it_follows_the_user_id_when_the_browser_is_new(serve, batch, banner) -> None:
    batch(
        [
            viewed("v1", "outdoor", userId="u-1", anonymousId="laptop"),
            viewed("v2", "outdoor", userId="u-1", anonymousId="laptop"),
        ]
    )
    assert shown(serve("home-banner", userId="u-1", anonymousId="phone")) == {
        "home-banner": "Outdoor"
    }


def test_it_targets_a_lifecycle_stage(serve, batch, banner) -> None:
    # A first order makes her an onboarding customer (the team's default rules).
    batch(
        [
            {
                "type": "track",
                "event": "Order Completed",
                "messageId": "o1",
                "userId": "u-2",
                "properties": {"order_id": "1", "total": 30},
            }
        ]
    )
    assert shown(serve("home-banner", userId="u-2")) == {"home-banner": "Welcome"}


def test_it_serves_variants_in_priority_order_when_several_match(serve, batch, banner) -> None:
    calls = [viewed("v1", "outdoor", userId="u-3"), viewed("v2", "outdoor", userId="u-3")]
    calls.append(
        {
            "type": "track",
            "event": "Order Completed",
            "messageId": "o1",
            "userId": "u-3",
            "properties": {"order_id": "1", "total": 30},
        }
    )
    batch(calls)
    assert shown(serve("home-banner", userId="u-3")) == {"home-banner": "Outdoor"}
    variant_update(tenant=banner.placement.tenant, variant=banner.onboarding, position=0)
    assert shown(serve("home-banner", userId="u-3")) == {"home-banner": "Welcome"}


def test_it_falls_back_to_the_default_for_anyone_else(serve, banner) -> None:
    assert shown(serve("home-banner")) == {"home-banner": "Everyone"}  # no ids at all
    assert shown(serve("home-banner", anonymousId="never-seen")) == {"home-banner": "Everyone"}


def test_it_never_serves_an_inactive_variant(serve, batch, banner) -> None:
    tenant = banner.placement.tenant
    batch([viewed("v1", "outdoor", anonymousId="a"), viewed("v2", "outdoor", anonymousId="a")])
    variant_update(tenant=tenant, variant=banner.outdoor, active=False)
    assert shown(serve("home-banner", anonymousId="a")) == {"home-banner": "Everyone"}
    variant_update(tenant=tenant, variant=banner.default, active=False)
    assert shown(serve("home-banner", anonymousId="a")) == {"home-banner": None}
    assert shown(serve("home-banner", anonymousId="b")) == {"home-banner": None}


def test_it_answers_null_for_an_unknown_key_and_each_key_once(serve, banner) -> None:
    assert shown(serve("home-banner, cart-upsell,home-banner")) == {
        "home-banner": "Everyone",
        "cart-upsell": None,
    }


def test_it_answers_each_tenant_its_own_placements(serve, batch, banner) -> None:
    assert shown(serve("home-banner", tenant="globex")) == {"home-banner": "Globex"}
    # The same anonymous id in acme qualifies there only.
    batch([viewed("v1", "outdoor", anonymousId="a"), viewed("v2", "outdoor", anonymousId="a")])
    assert shown(serve("home-banner", tenant="globex", anonymousId="a")) == {
        "home-banner": "Globex"
    }
    assert InboxBatch.objects.count() == 1  # globex's request settled nothing of acme's


def test_it_refuses_a_missing_or_wrong_write_key(client, world, banner, api) -> None:
    assert client.get("/v1/placements", {"keys": "home-banner"}).status_code == 401
    wrong = client.get(
        "/v1/placements", {"keys": "home-banner"}, HTTP_AUTHORIZATION="Basic d3Jvbmc6"
    )
    assert wrong.status_code == 401
    assert wrong.json()["code"] == "unauthorized"
    assert wrong["Access-Control-Allow-Origin"] == "*"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"keys": ""}, "keys"),
        ({"keys": "Home Banner"}, "keys"),
        ({"keys": ",".join(f"p{n}" for n in range(11))}, "keys"),
        ({"keys": "home-banner", "anonymousId": "x" * 256}, "anonymousId"),
        ({"keys": "home-banner", "userId": "x" * 256}, "userId"),
    ],
)
def test_it_names_the_field_of_a_bad_request(client, write_keys, banner, params, field) -> None:
    from tests.personalisation.placements.conftest import basic

    response = client.get("/v1/placements", params, HTTP_AUTHORIZATION=basic(write_keys["acme"]))
    assert response.status_code == 400
    body = response.json()
    assert body["success"] is False and body["field"] == field and body["message"]


def test_it_answers_a_preflight(client) -> None:
    response = client.options("/v1/placements", HTTP_ORIGIN="https://shop.example")
    assert response.status_code == 204
    assert "GET" in response["Access-Control-Allow-Methods"]


def test_it_costs_a_bounded_number_of_queries(serve, batch, banner, django_assert_max_num_queries):
    batch([viewed("v1", "outdoor", anonymousId="a"), viewed("v2", "outdoor", anonymousId="a")])
    serve("home-banner", anonymousId="a")  # settles and enters the segment
    started = time.perf_counter()
    # Nothing waiting now: key + settle check + contact + variants + segment refresh + membership
    with django_assert_max_num_queries(10):
        assert shown(serve("home-banner", anonymousId="a")) == {"home-banner": "Outdoor"}
    assert time.perf_counter() - started < 1


def test_it_settles_nobody_for_placements_that_target_no_one(
    serve, batch, banner, world, django_assert_max_num_queries
) -> None:
    from personalisation.placements.services import placement_create, variant_create

    upsell = placement_create(tenant=world.acme, key="cart-upsell", name="Cart upsell")
    variant_create(tenant=world.acme, placement=upsell, name="Socks", title="Add socks")
    batch([viewed("v1", "outdoor", anonymousId="a")])
    with django_assert_max_num_queries(4):  # key, variants (+ the connection's tenant scope)
        assert shown(serve("cart-upsell", anonymousId="a")) == {"cart-upsell": "Socks"}
    assert InboxBatch.objects.count() == 1  # left to the worker: it could change nothing here
