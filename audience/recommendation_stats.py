"""What recommendations precompute per team, so that serving one reads a few indexed rows
instead of scanning events or orders (docs/personalisation/recommendations.md):

- trending products (TrendingProduct): over the last TRENDING_DAYS, each product's views, cart
  additions and units ordered, weighted; the top TRENDING_KEPT of each category and of the whole
  catalog;
- co-purchase counts (ProductPair): over the team's latest PAIR_ORDERS orders (of the last
  PAIR_DAYS), how many orders held both skus; each sku's PAIRS_KEPT most frequent partners.

A periodic task refreshes both (audience.tasks.recommendation_stats_refresh_all, hourly). Each
team's refresh replaces its rows in one transaction: a reader sees the old set or the new one.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from itertools import combinations

from django.db import transaction
from django.db.models import CharField, Count
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Coalesce
from django.utils.timezone import now

from audience.models import Event, Order, Product, ProductPair, TrendingProduct
from audience.recommendations import order_lines
from tenants.models import Tenant

TRENDING_DAYS = 7
TRENDING_KEPT = 50  # per category, and across the catalog
TRENDING_SKUS_READ = 5_000  # the top skus whose category is looked up
# A view is a glance, a cart addition a wish, a unit ordered a decision.
WEIGHTS = {"Product Viewed": 1, "Product Added": 3}
ORDER_WEIGHT = 5
PAIR_DAYS = 180
PAIR_ORDERS = 20_000
PAIRS_KEPT = 20
PAIR_ORDER_MAX_SKUS = 30  # a bulk order pairs everything with everything: left out


def _trending_scores(tenant: Tenant, since: datetime) -> Counter[str]:
    scores: Counter[str] = Counter()
    rows = (
        Event.objects.filter(tenant=tenant, name__in=list(WEIGHTS), occurred_at__gte=since)
        .annotate(
            product=Coalesce(
                KeyTextTransform("sku", "properties"),
                KeyTextTransform("product_id", "properties"),
                output_field=CharField(),
            )
        )
        .exclude(product=None)
        .values_list("name", "product")
        .annotate(n=Count("id"))
        .order_by()
    )
    for name, sku, n in rows:
        if sku:
            scores[str(sku)[:100]] += WEIGHTS[name] * n
    orders = Order.objects.filter(tenant=tenant, occurred_at__gte=since).values_list(
        "properties", flat=True
    )
    for properties in orders.iterator(chunk_size=2_000):
        for sku, quantity, _price in order_lines(properties):
            scores[sku] += ORDER_WEIGHT * quantity
    return scores


def _trending_rows(tenant: Tenant, scores: Counter[str], stamp: datetime) -> list[TrendingProduct]:
    # Ties by sku, so that a refresh of the same facts ranks the same way.
    top = sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:TRENDING_SKUS_READ]
    categories = dict(
        Product.objects.filter(tenant=tenant, sku__in=[sku for sku, _ in top]).values_list(
            "sku", "category"
        )
    )
    rows: list[TrendingProduct] = []
    placed: Counter[tuple[bool, str]] = Counter()
    for sku, score in top:
        if sku not in categories:
            continue  # not (or no longer) in the catalog
        category = categories[sku]
        for overall, where in ((True, ""), (False, category)):
            if (not overall and not category) or placed[(overall, where)] >= TRENDING_KEPT:
                continue
            placed[(overall, where)] += 1
            rows.append(
                TrendingProduct(
                    tenant=tenant,
                    overall=overall,
                    category=where,
                    rank=placed[(overall, where)],
                    sku=sku,
                    score=min(score, 2**31 - 1),
                    computed_at=stamp,
                )
            )
    return rows


def _pair_rows(tenant: Tenant, since: datetime, stamp: datetime) -> list[ProductPair]:
    orders = (
        Order.objects.filter(tenant=tenant, occurred_at__gte=since)
        .order_by("-occurred_at")
        .values_list("properties", flat=True)[:PAIR_ORDERS]
    )
    counts: dict[str, Counter[str]] = {}
    for properties in orders.iterator(chunk_size=2_000):
        skus = sorted({sku for sku, _q, _p in order_lines(properties)})
        if len(skus) > PAIR_ORDER_MAX_SKUS:
            continue
        for a, b in combinations(skus, 2):
            counts.setdefault(a, Counter())[b] += 1
            counts.setdefault(b, Counter())[a] += 1
    return [
        ProductPair(tenant=tenant, sku=sku, other_sku=other, orders=n, computed_at=stamp)
        for sku, partners in counts.items()
        for other, n in partners.most_common(PAIRS_KEPT)
    ]


def recommendation_stats_refresh(*, tenant: Tenant) -> tuple[int, int]:
    """Recompute the team's trending products and co-purchase counts; (trending rows, pairs)."""
    stamp = now()
    trending = _trending_rows(
        tenant, _trending_scores(tenant, stamp - timedelta(days=TRENDING_DAYS)), stamp
    )
    pairs = _pair_rows(tenant, stamp - timedelta(days=PAIR_DAYS), stamp)
    with transaction.atomic():
        TrendingProduct.objects.filter(tenant=tenant).delete()
        ProductPair.objects.filter(tenant=tenant).delete()
        TrendingProduct.objects.bulk_create(trending, batch_size=2_000)
        ProductPair.objects.bulk_create(pairs, batch_size=2_000)
    return len(trending), len(pairs)
