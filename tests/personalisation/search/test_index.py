"""The PostgreSQL side of search: the query plans the app's own role gets (row-level security
applies to it, so only leakproof comparisons reach an index), the index's refresh, and the
Python trigram measure agreeing with pg_trgm's."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection

from audience.catalog import products_upsert
from personalisation.search import engine, lexicon, text
from personalisation.search.affinity import Affinity
from personalisation.search.models import SearchPosting, SearchWordKey
from tests.personalisation.search.conftest import catalog_item

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's index"),
]


def _plan(sql: str, params: dict[str, Any]) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
        assert cursor.fetchone() == (False, False), "the plan must be the app role's (RLS on)"
        cursor.execute("SET enable_seqscan = off")  # a tiny table: ask whether it *can*
        try:
            cursor.execute("EXPLAIN " + sql, params)
            return "\n".join(row[0] for row in cursor.fetchall())
        finally:
            cursor.execute("RESET enable_seqscan")


def test_matching_and_ranking_read_the_covering_index_and_only_the_pages_products(
    shop: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    captured: dict[str, Any] = {}
    real = engine._postgresql

    def spy(**kwargs: Any) -> Any:
        captured.update(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(engine, "_postgresql", spy)
    found = engine.search_products(
        tenant=shop.acme,
        query="sneekers",
        synonyms={},
        affinity=Affinity(categories={"Casual": 1.0}, price=50.0),
    )
    assert found.total == 4
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE search_searchposting")
    plan = _plan(
        engine.SEARCH_SQL,
        {
            "v": [0, 0],
            "i": [0, 0],
            "lo": ["sneekers", "sneakers"],
            "hi": ["sneekers" + engine.PREFIX_END, "sneakers\x01"],
            "exact": [1.0, 0.4],
            "longer": [0.9, 0.4],
            "n": [1, 1],
            "tenant": shop.acme.pk,
            "sku": "sneekers",
            "category": "",
            "category_weight": 1.0,
            "names": ["Casual"],
            "weights": [1.0],
            "price_weight": 0.3,
            "price": 50.0,
            "out_of_stock": 0.5,
            "limit": 10,
            "offset": 0,
        },
    )
    assert "Index Only Scan using search_posting_tenant_word_cover" in plan, plan
    assert "Seq Scan" not in plan, plan


def test_the_index_holds_each_products_words_and_each_words_typo_keys(shop: Any) -> None:
    engine.search_products(tenant=shop.acme, query="tee", synonyms={})  # builds it
    words = set(
        SearchPosting.objects.filter(tenant=shop.acme, product_id__isnull=False).values_list(
            "word", flat=True
        )
    )
    assert {"canvas", "sneakers", "casual", "rain", "jacket", "tee"} <= words
    assert not SearchPosting.objects.filter(tenant=shop.acme, word="globex").exists()
    keys = set(
        SearchWordKey.objects.filter(tenant=shop.acme, word="sneakers").values_list(
            "key", flat=True
        )
    )
    assert keys == text.typo_keys("sneakers")
    # Words too short for a typo have no keys: "tee" is matched as typed or as a start.
    assert not SearchWordKey.objects.filter(tenant=shop.acme, word="tee").exists()


def test_a_big_change_is_left_to_the_task_and_answered_by_the_scan_meanwhile(
    shop: Any, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    monkeypatch.setattr(lexicon, "INLINE_PRODUCTS", 3)  # the shop has 8 products
    queued: list[int] = []
    monkeypatch.setattr(
        "personalisation.search.tasks.search_index_refresh.delay", lambda pk: queued.append(pk)
    )
    with django_capture_on_commit_callbacks(execute=True):
        found = engine.search_products(tenant=shop.acme, query="sneekers", synonyms={})
    assert found.total == 4  # the scan's answer
    assert queued == [shop.acme.pk]
    assert not SearchPosting.objects.filter(tenant=shop.acme).exists()

    lexicon.lexicon_refresh(tenant=shop.acme)  # what the task does
    assert SearchPosting.objects.filter(tenant=shop.acme).exists()
    # A change of a few products is read by the next search itself.
    monkeypatch.setattr(lexicon, "INLINE_PRODUCTS", 1_000)
    products_upsert(
        tenant=shop.acme, items=[catalog_item("NEW", "Velvet slippers", "Home", "25", True)]
    )
    found = engine.search_products(tenant=shop.acme, query="slipers", synonyms={})
    assert [h.sku for h in found.hits] == ["NEW"]
    assert queued == [shop.acme.pk]


@pytest.mark.parametrize(
    ("a", "b"), [("sneekers", "sneakers"), ("jaket", "jacket"), ("shirt", "short"), ("t", "tee")]
)
def test_the_python_similarity_is_pg_trgms(a: str, b: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT similarity(%s, %s)", [a, b])
        assert text.similarity(a, b) == pytest.approx(cursor.fetchone()[0], abs=1e-6)
