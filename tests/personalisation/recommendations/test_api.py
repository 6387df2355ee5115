"""GET /v1/recommendations (write key, browsers) and GET /api/v1/recommendations/ (secret key,
servers): the answer's shape, the `Recommendation Served` event each answer records, refusals
of bad parameters and keys, and two teams that never see each other's products or contacts."""

from __future__ import annotations

from typing import Any

import pytest

from audience.inbox import inbox_drain
from audience.models import Contact, Event
from tenants.models import Tenant
from tests.factories import api_key, basic

from .conftest import contact

PRODUCT_KEYS = {"sku", "name", "url", "imageUrl", "price", "currency", "category", "inStock"}


@pytest.fixture
def keys(world: Any) -> dict[str, str]:
    return {
        f"{t.slug}-{kind}": api_key(t, kind=kind)[1]
        for t in (world.acme, world.globex)
        for kind in ("write", "secret")
    }


def edge(client: Any, key: str | None, **query: Any) -> Any:
    headers = {"HTTP_AUTHORIZATION": basic(key)} if key else {}
    return client.get("/v1/recommendations", query, **headers)


def rest(client: Any, key: str, **query: Any) -> Any:
    return client.get("/api/v1/recommendations/", query, HTTP_AUTHORIZATION=f"Bearer {key}")


def served_events(tenant: Tenant) -> list[Event]:
    return list(
        Event.objects.filter(tenant=tenant, name="Recommendation Served").select_related("contact")
    )


def test_the_browser_gets_products_by_strategy_and_the_answer_is_recorded(
    client: Any, shop: Tenant, keys: dict[str, str]
) -> None:
    response = edge(
        client,
        keys["acme-write"],
        userId="eve",
        strategy="similar",
        product="TRAIL",
        placement="product-page",
        limit="3",
    )

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "*"
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert body["strategy"] == "similar" and body["placement"] == "product-page"
    assert [p["sku"] for p in body["products"]] == ["KIDS", "BOOTS", "HEAVY"]
    assert set(body["products"][0]) == PRODUCT_KEYS
    assert body["products"][0] == {
        "sku": "KIDS",
        "name": "Kids' Runners",
        "url": "https://acme.example/p/kids",
        "imageUrl": "https://acme.example/i/kids.jpg",
        "price": 90.0,
        "currency": "EUR",
        "category": "Shoes",
        "inStock": True,
    }
    # Recorded through the ingestion inbox, on eve, with what was shown.
    assert served_events(shop) == []
    inbox_drain()
    [event] = served_events(shop)
    assert event.contact.user_id == "eve"
    assert event.properties == {
        "recommendation_id": body["recommendationId"],
        "placement": "product-page",
        "strategy": "similar",
        "skus": ["KIDS", "BOOTS", "HEAVY"],
        "product": "TRAIL",
    }


def test_a_new_visitor_gets_the_trend_and_becomes_a_contact(
    client: Any, shop: Tenant, keys: dict[str, str]
) -> None:
    response = edge(client, keys["acme-write"], anonymousId="anon-1")

    assert response.status_code == 200
    body = response.json()
    assert body["strategy"] == "auto" and body["placement"] == "default"
    assert [p["sku"] for p in body["products"]] == ["TRAIL", "ROAD", "JACKET", "SOCKS"]
    inbox_drain()
    [event] = served_events(shop)
    assert event.properties["skus"] == ["TRAIL", "ROAD", "JACKET", "SOCKS"]
    assert Contact.objects.filter(tenant=shop, pk=event.contact_id).exists()


def test_the_browser_endpoint_answers_preflights(client: Any, shop: Tenant) -> None:
    response = client.options("/v1/recommendations")
    assert response.status_code == 204
    assert "GET" in response["Access-Control-Allow-Methods"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({}, "anonymousId"),
        ({"userId": "x" * 256}, "userId"),
        ({"userId": "eve", "strategy": "psychic"}, "strategy"),
        ({"userId": "eve", "limit": "0"}, "limit"),
        ({"userId": "eve", "limit": "25"}, "limit"),
        ({"userId": "eve", "limit": "four"}, "limit"),
        ({"userId": "eve", "strategy": "similar"}, "product"),
        ({"userId": "eve", "placement": "<script>"}, "placement"),
        ({"userId": "eve", "product": "p" * 101}, "product"),
    ],
)
def test_the_browser_endpoint_refuses_bad_parameters(
    client: Any, world: Any, keys: dict[str, str], query: dict[str, str], field: str
) -> None:
    response = edge(client, keys["acme-write"], **query)

    assert response.status_code == 400
    body = response.json()
    assert body["success"] is False and body["code"] == "invalid" and body["field"] == field
    assert response["Access-Control-Allow-Origin"] == "*"


def test_the_browser_endpoint_needs_a_write_key(
    client: Any, world: Any, keys: dict[str, str]
) -> None:
    for key in (None, keys["acme-secret"], "wk_nothing_here"):
        response = edge(client, key, userId="eve")
        assert response.status_code == 401, key
        assert response.json()["code"] == "unauthorized"
    assert Event.objects.filter(name="Recommendation Served").count() == 0


def test_a_team_never_sees_another_teams_products_or_contacts(
    client: Any, shop: Tenant, world: Any, keys: dict[str, str]
) -> None:
    # amy is acme's alone; globex's key asking for her gets a stranger's answer from globex's
    # catalog, and acme's amy gets nothing recorded.
    from .conftest import track

    track(shop, "amy", "Product Viewed", sku="BOTTLE")
    amy = contact(shop, "amy")
    for response in (
        edge(client, keys["globex-write"], userId="amy", strategy="recently_viewed"),
        rest(client, keys["globex-secret"], user_id="amy", strategy="recently_viewed"),
    ):
        assert response.status_code == 200
        assert response.json()["products"] == []
    for response in (
        edge(client, keys["globex-write"], userId="amy", product="TRAIL", strategy="similar"),
        rest(client, keys["globex-secret"], user_id="amy", product="TRAIL", strategy="similar"),
    ):
        products = response.json()["products"]
        assert products and all(p["name"].startswith("Globex ") for p in products)
        assert all(p["url"].startswith("https://globex.example/") for p in products)
    # An acme contact's id is unknown to globex.
    response = rest(client, keys["globex-secret"], contact=str(amy.public_id))
    assert response.status_code == 404
    inbox_drain()
    assert [e.contact.user_id for e in served_events(shop)] == []
    assert {e.contact.user_id for e in served_events(world.globex)} == {"amy"}
    assert not Contact.objects.filter(tenant=world.globex, public_id=amy.public_id).exists()


def test_a_server_asks_for_a_contact_by_id_or_user_id(
    client: Any, shop: Tenant, keys: dict[str, str]
) -> None:
    eve = contact(shop, "eve")

    response = rest(client, keys["acme-secret"], contact=str(eve.public_id), placement="email")

    assert response.status_code == 200
    body = response.json()
    assert [p["sku"] for p in body["products"]] == ["BOOTS", "TRAIL", "KIDS", "JACKET"]
    # Recorded on the contact at once (no visitor id to go through the inbox with).
    [event] = served_events(shop)
    assert event.contact_id == eve.pk
    assert event.properties["recommendation_id"] == body["recommendationId"]
    assert event.properties["placement"] == "email"

    by_user = rest(client, keys["acme-secret"], user_id="eve", strategy="back_in_stock")
    assert [p["sku"] for p in by_user.json()["products"]] == ["BOOTS"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({}, "contact"),
        ({"contact": "not-a-uuid"}, "contact"),
        ({"user_id": "eve", "strategy": "psychic"}, "strategy"),
        ({"user_id": "eve", "limit": "0"}, "limit"),
        ({"user_id": "eve", "limit": "25"}, "limit"),
        ({"user_id": "eve", "strategy": "similar"}, "product"),
        ({"user_id": "eve", "placement": "a b"}, "placement"),
    ],
)
def test_the_rest_endpoint_refuses_bad_parameters(
    client: Any, world: Any, keys: dict[str, str], query: dict[str, str], field: str
) -> None:
    response = rest(client, keys["acme-secret"], **query)

    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_the_rest_endpoint_needs_a_secret_key(
    client: Any, world: Any, keys: dict[str, str]
) -> None:
    assert rest(client, keys["acme-write"], user_id="eve").status_code == 401
    assert client.get("/api/v1/recommendations/", {"user_id": "eve"}).status_code == 401


def test_the_schema_documents_the_rest_endpoint(client: Any, world: Any) -> None:
    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()
    operation = schema["paths"]["/api/v1/recommendations/"]["get"]
    names = {p["name"] for p in operation["parameters"]}
    assert {"strategy", "placement", "product", "limit", "contact", "user_id"} <= names
    ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    output = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert {"recommendationId", "strategy", "placement", "products"} <= set(output["properties"])


def test_a_click_sent_to_track_and_the_order_after_it_show_in_the_report(
    client: Any, shop: Tenant, keys: dict[str, str]
) -> None:
    """The whole loop through the real doors: served by /v1/recommendations, clicked and bought
    through /v1/track (as the tracker sends them), recorded by the ingest worker's drain."""
    import json

    from personalisation.recommendations.selectors import recommendation_report

    answer = edge(
        client, keys["acme-write"], anonymousId="anon-9", strategy="trending", placement="home"
    ).json()
    first = answer["products"][0]

    def send(event: str, properties: dict[str, Any]) -> None:
        body = {"anonymousId": "anon-9", "event": event, "properties": properties}
        response = client.post(
            "/v1/track",
            data=json.dumps(body),
            content_type="application/json",
            HTTP_AUTHORIZATION=basic(keys["acme-write"]),
        )
        assert response.status_code == 200

    send(
        "Recommendation Clicked",
        {
            "recommendation_id": answer["recommendationId"],
            "placement": "home",
            "strategy": "trending",
            "sku": first["sku"],
            "position": 1,
        },
    )
    send(
        "Order Completed",
        {"order_id": "o-9", "products": [{"sku": first["sku"], "price": 100, "quantity": 1}]},
    )
    inbox_drain()

    [row] = recommendation_report(tenant=shop, days=7).rows
    assert (row.placement, row.strategy, row.served, row.clicks, row.orders) == (
        "home",
        "trending",
        1,
        1,
        1,
    )
    assert row.revenue == 100


def test_what_was_bought_a_moment_ago_is_not_recommended_back(
    client: Any, shop: Tenant, keys: dict[str, str]
) -> None:
    """The order is still in the ingestion inbox (no worker ran) when the next page asks."""
    import json

    body = {
        "userId": "eve",
        "event": "Order Completed",
        "properties": {"order_id": "o-1", "products": [{"sku": "KIDS", "price": 90}]},
    }
    accepted = client.post(
        "/v1/track",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=basic(keys["acme-write"]),
    )
    assert accepted.status_code == 200

    response = edge(client, keys["acme-write"], userId="eve", strategy="recently_viewed")

    assert [p["sku"] for p in response.json()["products"]] == ["BOOTS"]  # KIDS was bought
