"""The REST API of search (secret key): a server's search for a shopper it names, and the
synonyms; another team's contact or synonym is never found; bad input is a 400 naming fields;
the OpenAPI schema documents the endpoints."""

from __future__ import annotations

from typing import Any

import pytest

from audience.models import Event
from personalisation.search.models import Synonym
from personalisation.search.services import synonyms_set
from tests.factories import api_key
from tests.personalisation.search.conftest import SNEAKERS, contact

pytestmark = pytest.mark.django_db


def test_a_server_searches_for_a_contact_and_the_search_is_recorded_on_them(
    api: Any, shop: Any
) -> None:
    casual = contact(shop.acme, "casual-cat")
    response = api("get", f"search/?q=sneekers&contact={casual.public_id}")
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert set(body) == {"searchId", "query", "corrected", "total", "products"}
    assert body["corrected"] == "sneakers" and body["total"] == 4
    assert body["products"][0]["sku"] == "SNK-CAS"
    assert {p["sku"] for p in body["products"]} == SNEAKERS
    # No visitor id to go through the inbox with: recorded on the contact at once.
    [event] = Event.objects.filter(tenant=shop.acme, name="Products Searched")
    assert event.contact_id == casual.pk
    assert event.properties["search_id"] == body["searchId"]
    assert event.properties["result_count"] == 4


def test_a_server_may_name_the_shopper_by_user_id(api: Any, shop: Any) -> None:
    body = api("get", "search/?q=sneakers&user_id=runner").json()
    assert body["products"][0]["sku"] == "SNK-RUN"


def test_another_teams_contact_is_refused_like_an_unknown_one(api: Any, shop: Any) -> None:
    casual = contact(shop.acme, "casual-cat")
    response = api("get", f"search/?q=sneakers&contact={casual.public_id}", tenant=shop.globex)
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"contact"}
    # globex's own search never sees acme's catalog.
    body = api("get", "search/?q=sneakers", tenant=shop.globex).json()
    assert [p["sku"] for p in body["products"]] == ["GLX-SNK"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("", "q"),
        ("q=", "q"),
        ("q=%3F%3F", "q"),
        ("q=shoes&limit=0", "limit"),
        ("q=shoes&offset=x", "offset"),
        ("q=shoes&contact=not-a-uuid", "contact"),
    ],
)
def test_bad_search_input_is_a_400_naming_the_field(
    api: Any, shop: Any, query: str, field: str
) -> None:
    response = api("get", f"search/?{query}")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_the_search_needs_the_secret_key(client: Any, shop: Any) -> None:
    assert client.get("/api/v1/search/?q=shoes").status_code == 401
    write = api_key(shop.acme, kind="write")[1]
    response = client.get("/api/v1/search/?q=shoes", HTTP_AUTHORIZATION=f"Bearer {write}")
    assert response.status_code in (401, 403)


def test_synonyms_are_listed_set_changed_and_deleted(api: Any, shop: Any) -> None:
    created = api("post", "search/synonyms/", {"term": "Trainers", "alternatives": ["sneakers"]})
    assert created.status_code == 201
    synonym = created.json()
    assert synonym["term"] == "trainers" and synonym["alternatives"] == ["sneakers"]
    listed = api("get", "search/synonyms/").json()
    assert [s["id"] for s in listed] == [synonym["id"]]
    changed = api(
        "put",
        f"search/synonyms/{synonym['id']}/",
        {"term": "trainers", "alternatives": ["sneakers", "running shoes"]},
    )
    assert changed.json()["alternatives"] == ["sneakers", "running shoes"]
    body = api("get", "search/?q=trainers").json()
    assert {p["sku"] for p in body["products"]} == SNEAKERS
    assert api("delete", f"search/synonyms/{synonym['id']}/").status_code == 204
    assert not Synonym.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"term": "", "alternatives": ["x"]}, "term"),
        ({"term": "trainers", "alternatives": []}, "alternatives"),
        ({"term": "trainers", "alternatives": ["Trainers"]}, "alternatives"),
        ({"term": "trainers"}, "alternatives"),
        ({"term": "!!", "alternatives": ["x"]}, "term"),
    ],
)
def test_a_bad_synonym_is_a_400_naming_the_field(
    api: Any, shop: Any, body: dict[str, Any], field: str
) -> None:
    response = api("post", "search/synonyms/", body)
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not Synonym.objects.exists()


def test_another_teams_synonym_is_not_found(api: Any, shop: Any) -> None:
    theirs = synonyms_set(tenant=shop.globex, term="trainers", alternatives=["sneakers"])
    path = f"search/synonyms/{theirs.public_id}/"
    assert api("get", path).status_code == 404
    assert api("put", path, {"term": "x", "alternatives": ["y"]}).status_code == 404
    assert api("delete", path).status_code == 404
    assert api("get", "search/synonyms/not-an-id/").status_code == 404
    assert api("get", "search/synonyms/").json() == []
    theirs.refresh_from_db()
    assert theirs.alternatives == ["sneakers"]


def test_the_openapi_schema_documents_search(api: Any, shop: Any) -> None:
    schema = api("get", "schema/?format=json").json()
    search = schema["paths"]["/api/v1/search/"]["get"]
    names = {p["name"] for p in search["parameters"]}
    assert {"q", "limit", "offset", "category", "contact", "user_id", "anonymous_id"} <= names
    assert "/api/v1/search/synonyms/{public_id}/" in schema["paths"]
