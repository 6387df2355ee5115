"""Personalised search as the tracker calls it (GET /v1/search with a write key): typos,
prefixes, synonyms, every word required, and results ranked for the visitor by the categories
and prices of what they viewed, carted, wished for and bought. Runs on PostgreSQL (the inverted
index) and on SQLite (the fallback) alike."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from audience.catalog import products_upsert
from personalisation.search.services import synonyms_set
from tests.factories import api_key, basic
from tests.personalisation.search.conftest import SNEAKERS, catalog_item

pytestmark = pytest.mark.django_db


@pytest.fixture
def search(client: Client, shop: Any) -> Any:
    keys = {t.pk: api_key(t, kind="write")[1] for t in (shop.acme, shop.globex)}

    def _search(tenant: Any = None, **params: Any) -> Any:
        tenant = tenant or shop.acme
        return client.get("/v1/search", params, HTTP_AUTHORIZATION=basic(keys[tenant.pk]))

    return _search


def skus(response: Any) -> list[str]:
    assert response.status_code == 200, response.content
    return [p["sku"] for p in response.json()["products"]]


def test_it_finds_sneakers_for_sneekers_and_ranks_the_visitors_favourite_category_first(
    search: Any,
) -> None:
    answer = search(q="sneekers", userId="casual-cat")
    found = skus(answer)
    assert set(found) == SNEAKERS
    assert found[0] == "SNK-CAS"  # Casual: what casual-cat views, carts and buys
    body = answer.json()
    assert body["query"] == "sneekers"
    assert body["corrected"] == "sneakers"
    assert body["total"] == 4
    assert body["products"][0] == {
        "sku": "SNK-CAS",
        "name": "Canvas sneakers",
        "url": "https://shop.example/p/snk-cas",
        "imageUrl": "",
        "price": 60.0,
        "currency": "EUR",
        "category": "Casual",
        "inStock": True,
    }
    # Another shopper, another favourite: the same query ranks their category first.
    assert skus(search(q="sneekers", userId="runner"))[0] == "SNK-RUN"


def test_without_known_taste_the_order_is_the_texts_and_out_of_stock_comes_last(
    search: Any,
) -> None:
    found = skus(search(q="sneakers", anonymousId="new-visitor"))
    assert set(found) == SNEAKERS
    assert found[-1] == "SNK-LTH"  # out of stock: still found, ranked below


def test_it_ranks_by_the_price_a_shopper_usually_pays(search: Any) -> None:
    # big-spender bought a 150 jacket: no sneaker category of theirs, so price decides among
    # the sneakers in stock: 90, then 60, then 40.
    assert skus(search(q="sneakers", userId="big-spender"))[:3] == ["SNK-RUN", "SNK-CAS", "SNK-KID"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("snea", SNEAKERS),  # a word's start
        ("jack", {"JACKET"}),
        ("rain jaket", {"JACKET"}),  # a typo beside a word
        ("sneakres", SNEAKERS),  # two letters swapped
        ("canvas sneakers", {"SNK-CAS"}),  # every word must match
        ("Hiking", {"BOOT"}),  # the category is searched too, any case
        ("BOOT", {"BOOT"}),  # the sku
        ("boats", {"BOOT"}),  # one letter off a catalog word
        ("cat", set()),  # too short to be read as a typo ("hat", "cat", "car")
        ("xylophone", set()),
    ],
)
def test_it_matches_prefixes_typos_and_every_word(
    search: Any, query: str, expected: set[str]
) -> None:
    assert set(skus(search(q=query))) == expected


def test_synonyms_send_a_query_to_what_the_alternatives_find(search: Any, shop: Any) -> None:
    assert skus(search(q="trainers")) == []
    synonyms_set(tenant=shop.acme, term="Trainers", alternatives=["sneakers", "boots"])
    assert set(skus(search(q="trainers"))) == SNEAKERS | {"BOOT"}
    assert set(skus(search(q="kids trainers"))) == {"SNK-KID"}  # a word of a longer query
    # One way, and only acme's.
    assert set(skus(search(q="boots"))) == {"BOOT"}
    assert skus(search(shop.globex, q="trainers")) == []


def test_pages_and_the_category_filter(search: Any) -> None:
    first = search(q="sneakers", limit=2, anonymousId="a")
    second = search(q="sneakers", limit=2, offset=2, anonymousId="a")
    assert first.json()["total"] == second.json()["total"] == 4
    assert set(skus(first)) | set(skus(second)) == SNEAKERS
    past = search(q="sneakers", limit=2, offset=10)
    assert past.json()["total"] == 4 and skus(past) == []
    assert skus(search(q="sneakers", category="Kids")) == ["SNK-KID"]


def test_the_index_follows_the_catalog(search: Any, shop: Any) -> None:
    assert skus(search(q="sandals")) == []
    products_upsert(
        tenant=shop.acme,
        items=[
            catalog_item("SANDAL", "Beach sandals", "Beach", "30", True),
            catalog_item("BOOT", "Hiking shoes", "Hiking", "120", True),  # renamed
        ],
    )
    assert skus(search(q="sandles")) == ["SANDAL"]
    assert skus(search(q="boots")) == []
    assert skus(search(q="shoes")) == ["BOOT"]


def test_another_teams_catalog_and_shoppers_never_show(search: Any, shop: Any) -> None:
    assert skus(search(shop.globex, q="sneekers", userId="casual-cat")) == ["GLX-SNK"]
    assert "GLX-SNK" not in skus(search(q="globex sneakers"))
    assert skus(search(q="globex")) == []
