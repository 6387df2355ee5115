"""The five strategies and their blend (audience/recommendations.py), on the shop of
conftest.py recorded through the real ingestion, catalog and refresh paths."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audience.models import Product
from audience.recommendation_stats import recommendation_stats_refresh
from audience.recommendations import AUTO, STRATEGIES, Visitor, recommend_strategy
from tenants.models import Tenant

from .conftest import contact, order, track

PURCHASED = "ROAD"  # eve bought it
OUT_OF_STOCK = ("RACER", "LACES")


def picks(tenant: Tenant, strategy: str, who: str | None, *seeds: str, limit: int = 4) -> list[str]:
    visitor = Visitor(key=1, contact=contact(tenant, who) if who else None, seeds=seeds)
    found = recommend_strategy(tenant=tenant, strategy=strategy, visitors=[visitor], limit=limit)
    assert {p.tenant_id for p in found[1]} <= {tenant.pk}
    return [p.sku for p in found[1]]


def test_recommendations_never_include_purchased_or_out_of_stock_items(shop: Tenant) -> None:
    eve = contact(shop, "eve")
    # Every strategy has them among its candidates: eve viewed and wished them, they were
    # restocked for her, they sell with trail shoes and trend among shoes.
    assert {PURCHASED, "RACER"} <= set(eve.recently_viewed) & set(eve.wishlist)
    in_stock = set(Product.objects.filter(tenant=shop, in_stock=True).values_list("sku", flat=True))
    for strategy in [*STRATEGIES, AUTO]:
        for seeds in [(), ("TRAIL",)]:
            found = picks(shop, strategy, "eve", *seeds, limit=10)

            assert found, f"{strategy} has something else to offer eve"
            assert PURCHASED not in found, strategy
            assert not set(OUT_OF_STOCK) & set(found), strategy
            assert not set(seeds) & set(found), "never the product the page shows"
            assert set(found) <= in_stock


def test_recently_viewed_lists_what_they_viewed_newest_first(shop: Tenant) -> None:
    assert picks(shop, "recently_viewed", "eve") == ["KIDS", "BOOTS"]
    assert picks(shop, "recently_viewed", "eve", "KIDS") == ["BOOTS"]
    assert picks(shop, "recently_viewed", None) == []


def test_similar_keeps_the_category_and_the_price_band_nearest_first(shop: Tenant) -> None:
    # Trail shoes at 100: the band is 66.67-150; kids' runners (90) and boots (120) are in it,
    # the mountain boots (180) and slippers (20) only after them; socks are another category.
    assert picks(shop, "similar", "eve", "TRAIL") == ["KIDS", "BOOTS", "HEAVY", "SLIPPER"]
    # A visitor who bought nothing gets the road shoes (110), nearest in price.
    assert picks(shop, "similar", None, "TRAIL", limit=3) == ["ROAD", "KIDS", "BOOTS"]
    # Without a product: similar to the one viewed last (kids' runners at 90).
    assert picks(shop, "similar", "eve", limit=2) == ["TRAIL", "BOOTS"]
    assert picks(shop, "similar", None) == []


def test_bought_together_counts_co_purchases(shop: Tenant) -> None:
    # Trail shoes sold with road shoes 4 times, racers 3 (out of stock), socks twice.
    assert picks(shop, "bought_together", None, "TRAIL") == ["ROAD", "SOCKS"]
    assert picks(shop, "bought_together", "eve", "TRAIL") == ["SOCKS"]
    # Without a product: what goes with her wishlist and views (road shoes and racers sold
    # with trail shoes).
    assert picks(shop, "bought_together", "eve") == ["TRAIL"]
    assert picks(shop, "bought_together", None, "JACKET") == []


def test_trending_follows_the_favourite_categories_then_the_catalog(shop: Tenant) -> None:
    # Shoes are all eve looks at: trail shoes trend most there (9 units sold this week), then
    # road shoes (bought) and racers (out); the views of boots and kids' runners next; then
    # the catalog's trending jacket.
    found = picks(shop, "trending", "eve")
    assert found[0] == "TRAIL" and set(found[1:3]) == {"BOOTS", "KIDS"} and found[3] == "JACKET"
    # Someone without a history gets the catalog's trend.
    assert picks(shop, "trending", None) == ["TRAIL", "ROAD", "JACKET", "SOCKS"]
    # amy views a bottle: accessories come first for her once trends are recomputed.
    track(shop, "amy", "Product Viewed", sku="BOTTLE")
    recommendation_stats_refresh(tenant=shop)
    assert picks(shop, "trending", "amy") == ["SOCKS", "BOTTLE", "TRAIL", "ROAD"]


def test_trending_before_the_first_computation_is_the_best_sellers(world: Any) -> None:
    from .conftest import catalog, order

    catalog(world.acme)
    for n in range(3):
        order(world.acme, f"b-{n}", "JACKET", "SOCKS")
    order(world.acme, "c", "SOCKS")
    assert picks(world.acme, "trending", None, limit=2) == ["SOCKS", "JACKET"]


def test_back_in_stock_lists_wished_items_that_returned(shop: Tenant, world: Any) -> None:
    # Road shoes, boots and racers came back; road shoes were bought since, racers went out again.
    assert picks(shop, "back_in_stock", "eve") == ["BOOTS"]
    # The jacket was never out: wishing it adds nothing.
    track(shop, "eve", "Product Added to Wishlist", sku="JACKET")
    assert picks(shop, "back_in_stock", "eve") == ["BOOTS"]
    assert picks(shop, "back_in_stock", None) == []


def test_auto_blends_back_in_stock_bought_together_then_trending(shop: Tenant) -> None:
    found = picks(shop, "auto", "eve")
    assert found[:2] == ["BOOTS", "TRAIL"]
    assert found[2:] == ["KIDS", "JACKET"]
    # On a product page, for a stranger: bought with it, then similar, then trending.
    assert picks(shop, "auto", None, "TRAIL") == ["ROAD", "SOCKS", "KIDS", "BOOTS"]


def test_a_batch_costs_the_same_queries_whatever_its_size(shop: Tenant) -> None:
    for n in range(20):
        track(shop, f"v-{n}", "Product Viewed", sku=["TRAIL", "JACKET", "BOTTLE"][n % 3])
        track(shop, f"v-{n}", "Product Added to Wishlist", sku="BOOTS")
    people = [contact(shop, f"v-{n}") for n in range(20)] + [contact(shop, "eve")]

    def cost(strategy: str, visitors: list[Visitor]) -> int:
        with CaptureQueriesContext(connection) as queries:
            recommend_strategy(tenant=shop, strategy=strategy, visitors=visitors, limit=4)
        return len(queries)

    for strategy in [*STRATEGIES, AUTO]:
        one = cost(strategy, [Visitor(key=0, contact=people[-1], seeds=("TRAIL",))])
        many = cost(
            strategy, [Visitor(key=i, contact=c, seeds=("TRAIL",)) for i, c in enumerate(people)]
        )
        assert many <= one + 1, strategy  # "similar" may need its wider read for a few
        assert one <= 10, strategy


def test_it_refuses_an_unknown_strategy(shop: Tenant) -> None:
    with pytest.raises(ValueError):
        recommend_strategy(tenant=shop, strategy="psychic", visitors=[Visitor(key=1, contact=None)])


def test_the_hourly_task_refreshes_every_team_and_is_safe_to_run_twice(
    world: Any, eager_tasks: None
) -> None:
    from audience.models import ProductPair, TrendingProduct
    from audience.tasks import recommendation_stats_refresh_all

    from .conftest import catalog, order

    for tenant in (world.acme, world.globex):
        catalog(tenant)
        order(tenant, "a", "TRAIL", "SOCKS")
    order(world.globex, "b", "JACKET")

    def rows() -> set[tuple[int, bool, str, int, str]]:
        return set(
            TrendingProduct.objects.values_list("tenant_id", "overall", "category", "rank", "sku")
        )

    recommendation_stats_refresh_all()
    first = rows()
    recommendation_stats_refresh_all()

    assert rows() == first

    def overall(tenant: Tenant) -> set[str]:
        return {r[4] for r in first if r[0] == tenant.pk and r[1]}

    assert overall(world.acme) == {"TRAIL", "SOCKS"}
    assert overall(world.globex) == {"TRAIL", "SOCKS", "JACKET"}
    pairs = set(ProductPair.objects.values_list("tenant_id", "sku", "other_sku", "orders"))
    assert pairs == {
        (t.pk, a, b, 1)
        for t in (world.acme, world.globex)
        for a, b in (("TRAIL", "SOCKS"), ("SOCKS", "TRAIL"))
    }


def test_a_big_buyer_in_the_same_batch_never_hides_what_another_bought(
    shop: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A send batch (Liquid) asks for many contacts at once. The orders read to know what each
    # bought are counted per contact: a wholesale customer's many recent orders must not use up
    # the read and let eve's ROAD (bought earlier) be recommended back to her.
    import audience.recommendations as recommendations

    monkeypatch.setattr(recommendations, "ORDERS_READ_PER_VISITOR", 2)
    for _ in range(5):
        order(shop, "wholesale", "SOCKS", "BOTTLE")
    track(shop, "eve", "Product Viewed", sku="TRAIL")  # ROAD sells with TRAIL: a candidate
    visitors = [
        Visitor(key="eve", contact=contact(shop, "eve"), seeds=("TRAIL",)),
        Visitor(key="big", contact=contact(shop, "wholesale"), seeds=("TRAIL",)),
    ]
    for strategy in [*STRATEGIES, AUTO]:
        found = recommend_strategy(tenant=shop, strategy=strategy, visitors=visitors, limit=10)
        assert PURCHASED not in [p.sku for p in found["eve"]], strategy
        assert not {"SOCKS", "BOTTLE"} & {p.sku for p in found["big"]}, strategy
