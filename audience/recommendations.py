"""Product recommendations beside the catalog, shared by messaging and, later,
personalisation.

Two strategies, ranked together for each contact:

1. "Frequently bought together": skus that appear in the same order (an `Order Completed`
   event's `properties.products[].sku`, Segment's e-commerce spec) as something the contact
   viewed, carted or wishlisted, counted over the tenant's most recent orders.
2. Same category as what the contact viewed, carted or wishlisted, the best sellers first.

A contact with no interests yet gets the best sellers. Only products in stock are recommended,
and never one the contact already has in the cart, wishlist, recently viewed or bought.

Orders are read off the order ledger (audience.models.Order, audience/orders.py), not the raw
events, so what a customer bought long ago is still never recommended to them after retention
removed the events.

Batched: `recommend()` takes every contact of a send batch and answers with four queries
whatever their number, and it reads the recent orders once per call.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from django.db.models import F, Window
from django.db.models.functions import RowNumber

from audience.models import Contact, Order, Product
from tenants.models import Tenant

RECENT_ORDERS = 500  # the tenant's latest orders that co-occurrence and best sellers count
ORDERS_PER_CONTACT = 20  # on average, read to know what the contacts already bought
TOGETHER_PER_SKU = 10  # co-occurring skus kept for each sku
BEST_SELLERS = 20
PER_CATEGORY = 40  # candidates read from each category of interest


def contact_interests(contact: Contact) -> list[str]:
    """The skus a contact showed interest in: cart first, then wishlist, then recently viewed."""
    skus = [str(item.get("sku")) for item in contact.cart if isinstance(item, dict)]
    skus += [str(s) for s in contact.wishlist] + [str(s) for s in contact.recently_viewed]
    return [s for s in dict.fromkeys(skus) if s and s != "None"]


def _order_skus(products: Any) -> list[str]:
    if not isinstance(products, list):
        return []
    skus = []
    for item in products:
        if isinstance(item, dict):
            sku = item.get("sku") or item.get("product_id")
            if sku not in (None, ""):
                skus.append(str(sku))
    return list(dict.fromkeys(skus))


def _recent_orders(tenant: Tenant) -> list[list[str]]:
    products = (
        Order.objects.filter(tenant=tenant)
        .order_by("-occurred_at")
        .values_list("properties__products", flat=True)[:RECENT_ORDERS]
    )
    return [skus for skus in map(_order_skus, products) if skus]


def _bought(tenant: Tenant, contact_ids: Sequence[int]) -> dict[int, set[str]]:
    rows = (
        Order.objects.filter(tenant=tenant, contact_id__in=contact_ids)
        .order_by("-occurred_at")
        .values_list("contact_id", "properties__products")[: ORDERS_PER_CONTACT * len(contact_ids)]
    )
    bought: dict[int, set[str]] = {}
    for contact_id, products in rows:
        bought.setdefault(contact_id, set()).update(_order_skus(products))
    return bought


def _together(orders: list[list[str]], seeds: set[str]) -> dict[str, list[tuple[str, int]]]:
    """For each seed sku, the skus bought with it and how often, most often first."""
    counts: dict[str, Counter[str]] = {}
    for skus in orders:
        for sku in skus:
            if sku in seeds:
                counter = counts.setdefault(sku, Counter())
                counter.update(other for other in skus if other != sku)
    return {sku: counter.most_common(TOGETHER_PER_SKU) for sku, counter in counts.items()}


def _candidates(
    tenant: Tenant, skus: set[str], categories: set[str]
) -> tuple[dict[str, Product], dict[str, list[Product]]]:
    """In-stock products: those named (co-occurring, best sellers) by sku, and up to
    PER_CATEGORY of each category (the newest; they are ranked by sales afterwards)."""
    by_sku: dict[str, Product] = {}
    if skus:
        for p in Product.objects.filter(tenant=tenant, sku__in=skus, in_stock=True):
            by_sku[p.sku] = p
    by_category: dict[str, list[Product]] = {}
    if categories:
        ranked = (
            Product.objects.filter(tenant=tenant, category__in=categories, in_stock=True)
            .annotate(
                place=Window(
                    RowNumber(),
                    partition_by=[F("category")],
                    order_by=[F("created_at").desc(), F("pk").desc()],
                )
            )
            .filter(place__lte=PER_CATEGORY)
        )
        for p in ranked:
            by_category.setdefault(p.category, []).append(p)
    return by_sku, by_category


def _first(products: Iterable[Product], excluded: set[str], n: int) -> list[Product]:
    found = []
    for p in products:
        if p.sku not in excluded:
            found.append(p)
            if len(found) == n:
                break
    return found


def recommend(
    *,
    tenant: Tenant,
    contacts: Iterable[Contact],
    limit: int = 4,
    known: dict[str, Product] | None = None,
) -> dict[int, list[Product]]:
    """Up to `limit` products to recommend to each contact, by contact pk, best first.

    `known`: the catalog's products for the contacts' interests, if the caller has loaded
    them already (a sku absent from it is taken as not in the catalog); else one more query.
    """
    contacts = list(contacts)
    result: dict[int, list[Product]] = {c.pk: [] for c in contacts}
    if not contacts or limit <= 0:
        return result
    interests = {c.pk: contact_interests(c) for c in contacts}
    seeds = set().union(*interests.values())
    if known is None:
        known = {p.sku: p for p in Product.objects.filter(tenant=tenant, sku__in=seeds)}
    orders = _recent_orders(tenant)
    sales = Counter(sku for skus in orders for sku in skus)
    together = _together(orders, seeds)
    bought = _bought(tenant, list(result))
    best_sellers = [sku for sku, _ in sales.most_common(BEST_SELLERS)]
    named = {sku for pairs in together.values() for sku, _ in pairs} | set(best_sellers)
    categories = {known[s].category for s in seeds if s in known and known[s].category}
    by_sku, by_category = _candidates(tenant, named, categories)
    # Each category's candidates, best sellers first, sorted once for the whole batch.
    for products in by_category.values():
        products.sort(key=lambda p: (-sales[p.sku], p.sku))
        for p in products:
            by_sku.setdefault(p.sku, p)
    sellers = [by_sku[sku] for sku in best_sellers if sku in by_sku]

    for contact in contacts:
        mine = interests[contact.pk]
        excluded = set(mine) | bought.get(contact.pk, set())
        co: Counter[str] = Counter()
        liked: Counter[str] = Counter()
        for sku in mine:
            co.update(dict(together.get(sku, ())))
            if sku in known and known[sku].category:
                liked[known[sku].category] += 1
        pool = {sku: by_sku[sku] for sku in co if sku in by_sku and sku not in excluded}
        # A category's list is in its final order already: its first `limit` are enough.
        for category in liked:
            for p in _first(by_category.get(category, ()), excluded, limit):
                pool.setdefault(p.sku, p)
        for p in sellers:  # BEST_SELLERS of them at most, ranked by category too
            if p.sku not in excluded:
                pool.setdefault(p.sku, p)
        result[contact.pk] = heapq.nsmallest(
            limit,
            pool.values(),
            key=lambda p: (-co[p.sku], -liked[p.category], -sales[p.sku], p.sku),
        )
    return result
