"""GET /v1/search as a browser calls it: the write key, CORS, the /v1 error shape for bad input,
the `Products Searched` event through the ingestion inbox, and the day's query tally."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from audience.inbox import inbox_drain
from audience.models import Event
from personalisation.search.models import SearchQueryDay
from tests.factories import api_key, basic

pytestmark = pytest.mark.django_db

# The visitor, their orders, their products, the synonyms, [PostgreSQL: the index's mark, the
# typo keys,] the search, the day's tally.
QUERIES = 8 if connection.vendor == "postgresql" else 6


@pytest.fixture
def keys(shop: Any) -> dict[str, str]:
    return {
        "acme-write": api_key(shop.acme, kind="write")[1],
        "acme-secret": api_key(shop.acme, kind="secret")[1],
        "globex-write": api_key(shop.globex, kind="write")[1],
    }


def get(client: Client, key: str | None, **params: Any) -> Any:
    headers = {"HTTP_AUTHORIZATION": basic(key)} if key else {}
    return client.get("/v1/search", params, **headers)


def test_it_answers_any_origin_and_its_preflight(client: Client, keys: dict[str, str]) -> None:
    response = get(client, keys["acme-write"], q="sneakers", anonymousId="a-1")
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "*"
    assert response["Cache-Control"] == "no-store"
    preflight = client.options("/v1/search")
    assert preflight.status_code == 204
    assert "GET" in preflight["Access-Control-Allow-Methods"]


@pytest.mark.parametrize("key", [None, "wk_not-a-key", "acme-secret"])
def test_it_refuses_a_missing_or_wrong_key(client: Client, keys: dict[str, str], key: Any) -> None:
    response = get(client, keys.get(key, key), q="sneakers")
    assert response.status_code == 401
    assert response.json()["success"] is False
    assert "products" not in response.json()
    assert response["Access-Control-Allow-Origin"] == "*"  # the browser may read why


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "q"),
        ({"q": ""}, "q"),
        ({"q": "  !!  "}, "q"),
        ({"q": "x" * 201}, "q"),
        ({"q": "shoes", "limit": "0"}, "limit"),
        ({"q": "shoes", "limit": "51"}, "limit"),
        ({"q": "shoes", "limit": "ten"}, "limit"),
        ({"q": "shoes", "offset": "-1"}, "offset"),
        ({"q": "shoes", "offset": "1001"}, "offset"),
        ({"q": "shoes", "category": "c" * 201}, "category"),
        ({"q": "shoes", "anonymousId": "a" * 1000}, "anonymousId"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(
    client: Client, keys: dict[str, str], params: dict[str, str], field: str
) -> None:
    response = get(client, keys["acme-write"], **params)
    assert response.status_code == 400
    body = response.json()
    assert body["success"] is False and body["code"] == "invalid"
    assert body["field"] == field and body["message"]
    assert not SearchQueryDay.objects.exists()  # refused searches are not counted


def test_a_search_is_recorded_on_the_visitor_and_counted(
    client: Client, shop: Any, keys: dict[str, str]
) -> None:
    body = get(client, keys["acme-write"], q="sneekers", userId="casual-cat").json()
    get(client, keys["acme-write"], q="Sneekers ", anonymousId="stranger")
    get(client, keys["acme-write"], q="umbrella", anonymousId="stranger")
    get(client, keys["globex-write"], q="umbrella", anonymousId="stranger")

    inbox_drain()
    events = Event.objects.filter(tenant=shop.acme, name="Products Searched").order_by("id")
    first = events[0]
    assert first.contact.user_id == "casual-cat"
    assert first.properties == {
        "query": "sneekers",
        "result_count": 4,
        "search_id": body["searchId"],
        "corrected": "sneakers",
    }
    # A visitor Wayfarer did not know becomes a contact, as a first /v1/track would make them.
    assert [e.properties["result_count"] for e in events if not e.contact.user_id] == [4, 0]

    tallies = {
        (row.tenant_id, row.query): (row.searches, row.zero_results, row.results)
        for row in SearchQueryDay.objects.all()
    }
    assert tallies == {
        (shop.acme.pk, "sneekers"): (2, 0, 8),
        (shop.acme.pk, "umbrella"): (1, 1, 0),
        (shop.globex.pk, "umbrella"): (1, 1, 0),
    }


def test_the_next_pages_of_a_search_are_not_counted_as_more_searches(
    client: Client, shop: Any, keys: dict[str, str]
) -> None:
    first = get(client, keys["acme-write"], q="sneekers", limit=2, anonymousId="pager").json()
    assert first["total"] > 2
    get(client, keys["acme-write"], q="sneekers", limit=2, offset=2, anonymousId="pager")

    row = SearchQueryDay.objects.get(tenant=shop.acme, query="sneekers")
    assert row.searches == 1  # the insights page's "top queries" counts what people searched
    inbox_drain()  # each page is still an event: its searchId is what Product Clicked names
    assert Event.objects.filter(tenant=shop.acme, name="Products Searched").count() == 2


def test_a_search_costs_the_same_few_queries_whatever_the_visitors_history(
    client: Client, shop: Any, keys: dict[str, str]
) -> None:
    get(client, keys["acme-write"], q="warm", anonymousId="w")  # the key cache, the index
    for user_id in ("casual-cat", "runner"):
        with CaptureQueriesContext(connection) as captured:
            get(client, keys["acme-write"], q="sneekers", userId=user_id)
        # The inbox's insert is the ingestion's to count (tests/audience).
        ours = [q["sql"] for q in captured.captured_queries if "audience_inbox" not in q["sql"]]
        assert len(ours) == QUERIES, "\n".join(ours)
