"""Product recommendations beside the catalog, shared by messaging and personalisation.

`recommend_strategy()` answers by one named strategy (STRATEGIES, or AUTO, a blend), for the
recommendations API and Liquid's `recommended.<strategy>` (docs/personalisation/
recommendations.md); it is below `recommend()`. `recommend()` is messaging's original blend
(`{{ recommendations }}`), unchanged. Two strategies, ranked together for each contact:

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
import math
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from functools import cached_property
from typing import Any

from django.db.models import F, Q, Window
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import RowNumber
from django.utils.timezone import now

from audience.models import Contact, Event, Order, Product, ProductPair, TrendingProduct
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


def _bought(
    tenant: Tenant, contact_ids: Sequence[int], *, per_contact: int = ORDERS_PER_CONTACT
) -> dict[int, set[str]]:
    # The latest `per_contact` orders of each contact (not of the batch as a whole: one big
    # buyer's many orders must not use up the read and hide what the others bought). One
    # contact (a browser's request) keeps the plain LIMIT, which stops early on the index.
    orders = Order.objects.filter(tenant=tenant, contact_id__in=contact_ids)
    if len(contact_ids) == 1:
        rows = orders.order_by("-occurred_at").values_list("contact_id", "properties__products")[
            :per_contact
        ]
    else:
        rows = (
            orders.annotate(
                nth=Window(
                    RowNumber(), partition_by=F("contact_id"), order_by=F("occurred_at").desc()
                )
            )
            .filter(nth__lte=per_contact)
            .order_by()
            .values_list("contact_id", "properties__products")
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


# --- By strategy: the recommendations API and Liquid's `recommended.<strategy>` ---------------

RECENTLY_VIEWED = "recently_viewed"
SIMILAR = "similar"
BOUGHT_TOGETHER = "bought_together"
TRENDING = "trending"
BACK_IN_STOCK = "back_in_stock"
AUTO = "auto"
STRATEGIES = (RECENTLY_VIEWED, SIMILAR, BOUGHT_TOGETHER, TRENDING, BACK_IN_STOCK)
# AUTO fills its places from these in turn: what the visitor waited for, what goes with what
# they look at, what resembles it, then what is popular in their categories.
AUTO_ORDER = (BACK_IN_STOCK, BOUGHT_TOGETHER, SIMILAR, TRENDING)

BACK_IN_STOCK_EVENT = "Product Back in Stock"  # audience/catalog.py records it per wisher
BACK_IN_STOCK_DAYS = 30
SIMILAR_CANDIDATES = 100  # read per category (in the price band first) for a batch
NEAREST_SEEDS = 1  # one product (a page's, the API's): its nearest prices by index
NEAREST_MARGIN = 20  # read beyond `limit` on each side, for what the exclusions remove
PRICE_BAND = Decimal("1.5")  # "similar": from price / 1.5 to price * 1.5
FAVOURITE_CATEGORIES = 3
ORDERS_READ_PER_VISITOR = 200  # every order of nearly every customer: never recommended again
SEEDS_READ = 20  # a contact's interests that "bought together" starts from
TRENDING_MARGIN = 20  # trending ranks read beyond `limit`, for what the exclusions remove


@dataclass(frozen=True)
class Visitor:
    """Whom to recommend to (`contact` None: a visitor not recorded yet) and what about:
    `seeds`, the skus on the page or of the message's event, the first being *the* product
    ("similar to", "bought with")."""

    key: Hashable
    contact: Contact | None
    seeds: tuple[str, ...] = ()


def order_lines(properties: Any) -> list[tuple[str, int, Decimal | None]]:
    """(sku, quantity, unit price) of each product of an order's properties (Segment's
    `products[]`), in order; malformed items are skipped, a bad quantity is 1."""
    products = properties.get("products") if isinstance(properties, dict) else None
    lines = []
    for item in products if isinstance(products, list) else ():
        if not isinstance(item, dict):
            continue
        sku = item.get("sku") or item.get("product_id")
        if sku in (None, "") or isinstance(sku, (dict, list)):
            continue
        try:
            quantity = max(1, min(int(item.get("quantity") or 1), 10_000))
        except (TypeError, ValueError, OverflowError):
            quantity = 1
        try:
            parsed = Decimal(str(item.get("price")))
        except (InvalidOperation, ValueError):
            parsed = Decimal("NaN")
        price = parsed if parsed.is_finite() else None
        lines.append((str(sku)[:100], quantity, price))
    return lines


class _Batch:
    """What the visitors' strategies share, loaded once and on demand: their catalog products
    and what each already bought."""

    def __init__(
        self, tenant: Tenant, visitors: Sequence[Visitor], known: dict[str, Product] | None
    ) -> None:
        self.tenant, self.visitors = tenant, visitors
        self.catalog: dict[str, Product] = dict(known or {})
        self.missing: set[str] = set()  # asked for and not in the catalog

    def products(self, skus: Iterable[str]) -> dict[str, Product]:
        wanted = {s for s in skus if s not in self.catalog and s not in self.missing}
        if wanted:
            for p in Product.objects.filter(tenant=self.tenant, sku__in=wanted):
                self.catalog[p.sku] = p
            self.missing |= wanted - self.catalog.keys()
        return self.catalog

    @cached_property
    def bought(self) -> dict[int, set[str]]:
        ids = [v.contact.pk for v in self.visitors if v.contact is not None and v.contact.pk]
        if not ids:
            return {}
        return _bought(self.tenant, list(dict.fromkeys(ids)), per_contact=ORDERS_READ_PER_VISITOR)

    def allowed(self, v: Visitor, p: Product | None, taken: set[str]) -> bool:
        """In stock, never bought, not the page's product, not picked already."""
        if p is None or not p.in_stock or p.sku in taken or p.sku in v.seeds:
            return False
        return v.contact is None or p.sku not in self.bought.get(v.contact.pk, ())

    def pick(
        self, v: Visitor, products: Iterable[Product | None], limit: int, taken: set[str]
    ) -> list[Product]:
        found: list[Product] = []
        for p in products:
            if len(found) >= limit:
                break
            if p is not None and self.allowed(v, p, taken):
                found.append(p)
                taken.add(p.sku)
        return found


def _viewed(v: Visitor) -> list[str]:
    viewed = v.contact.recently_viewed if v.contact is not None else []
    return [str(s) for s in viewed if s not in (None, "")] if isinstance(viewed, list) else []


def _recently_viewed(batch: _Batch, limit: int) -> dict[Hashable, list[Product]]:
    catalog = batch.products(sku for v in batch.visitors for sku in _viewed(v))
    return {
        v.key: batch.pick(v, (catalog.get(s) for s in _viewed(v)), limit, set())
        for v in batch.visitors
    }


def _similarity(seed: Product, p: Product) -> tuple[int, float]:
    """In the seed's price band first, then the nearest prices (on a ratio scale)."""
    if seed.price is None or p.price is None or seed.price <= 0 or p.price <= 0:
        return (1, math.inf)
    ratio = p.price / seed.price
    in_band = 1 / PRICE_BAND <= ratio <= PRICE_BAND
    return (0 if in_band else 1, abs(math.log(float(ratio))))


def _nearest(tenant: Tenant, seed: Product, n: int) -> list[Product]:
    """The seed's category's in-stock products nearest in price: up to `n` at or above its
    price and `n` below, each an ordered index range (tenant, category, price_cents); the
    newest of the category when the seed has no price."""
    same = Product.objects.filter(tenant=tenant, category=seed.category, in_stock=True)
    if seed.price_cents is None:
        return list(same.order_by("-created_at", "-pk")[: 2 * n])
    above = same.filter(price_cents__gte=seed.price_cents).order_by("price_cents", "pk")[:n]
    below = same.filter(price_cents__lt=seed.price_cents).order_by("-price_cents", "-pk")[:n]
    return [*above, *below]


def _category_candidates(
    tenant: Tenant, bands: dict[str, tuple[int, int] | None], *, banded: bool
) -> dict[str, list[Product]]:
    """Up to SIMILAR_CANDIDATES in-stock products of each category, the newest first: within
    its price band in cents (`banded`, where the category has one), else any."""
    where = Q()
    for category, band in bands.items():
        if banded and band is not None:
            where |= Q(category=category, price_cents__gte=band[0], price_cents__lte=band[1])
        else:
            where |= Q(category=category)
    ranked = (
        Product.objects.filter(where, tenant=tenant, in_stock=True)
        .annotate(
            place=Window(
                RowNumber(),
                partition_by=[F("category")],
                order_by=[F("created_at").desc(), F("pk").desc()],
            )
        )
        .filter(place__lte=SIMILAR_CANDIDATES)
    )
    found: dict[str, list[Product]] = {}
    for p in ranked:
        found.setdefault(p.category, []).append(p)
    return found


def _similar_seed(v: Visitor) -> str | None:
    if v.seeds:
        return v.seeds[0]
    viewed = _viewed(v)
    return viewed[0] if viewed else None


def _similar(batch: _Batch, limit: int) -> dict[Hashable, list[Product]]:
    """Same category as the visitor's product (else the one they viewed last), in its price
    band first: one query for the bands, one more for categories the band leaves short."""
    catalog = batch.products(s for v in batch.visitors if (s := _similar_seed(v)))
    seeds = {
        v.key: p
        for v in batch.visitors
        if (s := _similar_seed(v)) and (p := catalog.get(s)) is not None and p.category
    }
    result: dict[Hashable, list[Product]] = {v.key: [] for v in batch.visitors}
    if not seeds:
        return result
    distinct = {seed.sku: seed for seed in seeds.values()}
    if len(distinct) <= NEAREST_SEEDS:  # a page's product: two short index ranges each
        pools = {
            sku: _nearest(batch.tenant, seed, limit + NEAREST_MARGIN)
            for sku, seed in distinct.items()
        }
        for v in batch.visitors:
            if v.key in seeds:
                seed = seeds[v.key]
                ranked_ = sorted(pools[seed.sku], key=lambda p: (*_similarity(seed, p), p.sku))
                result[v.key] = batch.pick(v, ranked_, limit, {seed.sku})
        return result
    # A batch of many products (a send): one query for every band, one for short categories.
    bands: dict[str, tuple[int, int] | None] = {}
    for seed in seeds.values():
        band = None
        if seed.price is not None and seed.price > 0:
            band = (int(seed.price * 100 / PRICE_BAND), int(seed.price * 100 * PRICE_BAND) + 1)
        if seed.category in bands:
            old = bands[seed.category]
            band = (
                None
                if old is None or band is None
                else (min(old[0], band[0]), max(old[1], band[1]))
            )
        bands[seed.category] = band
    candidates = _category_candidates(batch.tenant, bands, banded=True)

    def ranked(v: Visitor, pool: dict[str, list[Product]]) -> list[Product]:
        seed = seeds[v.key]
        return sorted(pool.get(seed.category, ()), key=lambda p: (*_similarity(seed, p), p.sku))

    short = set()
    for v in batch.visitors:
        if v.key in seeds:
            taken = {seeds[v.key].sku}  # the product itself, when it is the one viewed last
            result[v.key] = batch.pick(v, ranked(v, candidates), limit, taken)
            if len(result[v.key]) < limit and bands[seeds[v.key].category] is not None:
                short.add(seeds[v.key].category)
    if short:
        wider = _category_candidates(batch.tenant, dict.fromkeys(short), banded=False)
        for v in batch.visitors:
            if v.key in seeds and seeds[v.key].category in short and len(result[v.key]) < limit:
                taken = {seeds[v.key].sku, *(p.sku for p in result[v.key])}
                more = batch.pick(v, ranked(v, wider), limit - len(result[v.key]), taken)
                result[v.key] += more
    return result


def _together_seeds(v: Visitor) -> list[str]:
    if v.seeds:
        return list(v.seeds)
    return contact_interests(v.contact)[:SEEDS_READ] if v.contact is not None else []


def _bought_together(batch: _Batch, limit: int) -> dict[Hashable, list[Product]]:
    """Co-purchase counts (ProductPair, precomputed) of the visitor's product, else of their
    cart, wishlist and recently viewed: the partners most often in the same orders first."""
    seeds = {v.key: _together_seeds(v) for v in batch.visitors}
    wanted = set().union(*seeds.values()) if seeds else set()
    partners: dict[str, list[tuple[str, int]]] = {}
    if wanted:
        pairs = ProductPair.objects.filter(tenant=batch.tenant, sku__in=wanted).values_list(
            "sku", "other_sku", "orders"
        )
        for sku, other, n in pairs:
            partners.setdefault(sku, []).append((other, n))
    catalog = batch.products(o for pairs_ in partners.values() for o, _ in pairs_)
    result = {}
    for v in batch.visitors:
        counts: Counter[str] = Counter()
        for sku in seeds[v.key]:
            counts.update(dict(partners.get(sku, ())))
        mine = set(seeds[v.key])
        order = sorted((s for s in counts if s not in mine), key=lambda s: (-counts[s], s))
        result[v.key] = batch.pick(v, (catalog.get(s) for s in order), limit, set())
    return result


def _favourite_categories(batch: _Batch, v: Visitor) -> list[str]:
    """The categories of what they bought (3 each), carted or wished (2) and viewed (1), with
    the page's product (1): the FAVOURITE_CATEGORIES heaviest."""
    weights: Counter[str] = Counter()
    catalog = batch.catalog
    if v.contact is not None:
        c = v.contact
        cart = (
            [str(i.get("sku")) for i in c.cart if isinstance(i, dict)]
            if isinstance(c.cart, list)
            else []
        )
        wished = [str(s) for s in c.wishlist] if isinstance(c.wishlist, list) else []
        for skus, weight in (
            (batch.bought.get(c.pk, set()), 3),
            (cart, 2),
            (wished, 2),
            (_viewed(v), 1),
        ):
            for sku in skus:
                if (p := catalog.get(sku)) is not None and p.category:
                    weights[p.category] += weight
    for sku in v.seeds[:1]:
        if (p := catalog.get(sku)) is not None and p.category:
            weights[p.category] += 1
    return [c for c, _ in sorted(weights.items(), key=lambda cw: (-cw[1], cw[0]))][
        :FAVOURITE_CATEGORIES
    ]


def _trending(batch: _Batch, limit: int) -> dict[Hashable, list[Product]]:
    """The precomputed trending products (TrendingProduct) of the visitor's favourite
    categories, best ranked first, then the catalog's; before the first computation, the best
    sellers of the recent orders."""
    batch.products(
        sku
        for v in batch.visitors
        for sku in [
            *v.seeds[:1],
            *(contact_interests(v.contact) if v.contact is not None else []),
            *(batch.bought.get(v.contact.pk, set()) if v.contact is not None else []),
        ]
    )
    favourites = {v.key: _favourite_categories(batch, v) for v in batch.visitors}
    categories = set().union(*favourites.values()) if favourites else set()
    rows = (
        TrendingProduct.objects.filter(tenant=batch.tenant, rank__lte=limit + TRENDING_MARGIN)
        .filter(Q(overall=True) | Q(overall=False, category__in=categories))
        .order_by("rank")
        .values_list("overall", "category", "sku")
    )
    by_category: dict[str, list[str]] = {}
    overall: list[str] = []
    for is_overall, category, sku in rows:
        (overall if is_overall else by_category.setdefault(category, [])).append(sku)
    if not overall and not by_category:
        sales = Counter(sku for skus in _recent_orders(batch.tenant) for sku in skus)
        overall = [sku for sku, _ in sales.most_common(BEST_SELLERS)]
    catalog = batch.products([*overall, *(s for skus in by_category.values() for s in skus)])
    result = {}
    for v in batch.visitors:
        order = [s for c in favourites[v.key] for s in by_category.get(c, ())] + overall
        result[v.key] = batch.pick(v, (catalog.get(s) for s in order), limit, set())
    return result


def _back_in_stock(batch: _Batch, limit: int) -> dict[Hashable, list[Product]]:
    """Wishlist items that came back in stock in the last BACK_IN_STOCK_DAYS (the catalog's
    `Product Back in Stock` events of this contact), the latest return first."""
    result: dict[Hashable, list[Product]] = {v.key: [] for v in batch.visitors}
    wishers = {
        v.contact.pk: v
        for v in batch.visitors
        if v.contact is not None and v.contact.pk and v.contact.wishlist
    }
    if not wishers:
        return result
    returns = (
        Event.objects.filter(
            tenant=batch.tenant,
            contact_id__in=list(wishers),
            name=BACK_IN_STOCK_EVENT,
            occurred_at__gte=now() - timedelta(days=BACK_IN_STOCK_DAYS),
        )
        .annotate(product=KeyTextTransform("sku", "properties"))
        .order_by("-occurred_at")
        .values_list("contact_id", "product")
    )
    restocked: dict[int, list[str]] = {}
    for contact_id, sku in returns:
        if sku and sku in wishers[contact_id].contact.wishlist:  # type: ignore[union-attr]
            restocked.setdefault(contact_id, []).append(str(sku))
    catalog = batch.products(s for skus in restocked.values() for s in skus)
    for contact_id, skus in restocked.items():
        v = wishers[contact_id]
        result[v.key] = batch.pick(v, (catalog.get(s) for s in dict.fromkeys(skus)), limit, set())
    return result


_STRATEGY_FUNCTIONS = {
    RECENTLY_VIEWED: _recently_viewed,
    SIMILAR: _similar,
    BOUGHT_TOGETHER: _bought_together,
    TRENDING: _trending,
    BACK_IN_STOCK: _back_in_stock,
}


def _blend(
    v: Visitor, found: dict[str, dict[Hashable, list[Product]]], limit: int
) -> list[Product]:
    """AUTO for one visitor: each strategy of AUTO_ORDER in turn fills the places left."""
    picked: list[Product] = []
    taken: set[str] = set()
    for strategy in AUTO_ORDER:
        if strategy == SIMILAR and not v.seeds:
            continue  # similar to the page's product only
        for p in found.get(strategy, {}).get(v.key, ()):
            if len(picked) >= limit:
                return picked
            if p.sku not in taken:
                picked.append(p)
                taken.add(p.sku)
    return picked


def _auto(batch: _Batch, limit: int) -> dict[Hashable, list[Product]]:
    """Each strategy is asked only for the visitors it still has places for."""
    found: dict[str, dict[Hashable, list[Product]]] = {}
    result: dict[Hashable, list[Product]] = {v.key: [] for v in batch.visitors}
    for strategy in AUTO_ORDER:
        short = [v for v in batch.visitors if len(_blend(v, found, limit)) < limit]
        if strategy == SIMILAR:
            short = [v for v in short if v.seeds]
        if short:
            sub = _Batch(batch.tenant, short, batch.catalog)
            sub.missing, sub.__dict__["bought"] = batch.missing, batch.bought
            found[strategy] = _STRATEGY_FUNCTIONS[strategy](sub, limit)
    for v in batch.visitors:
        result[v.key] = _blend(v, found, limit)
    return result


def recommend_strategies(
    *,
    tenant: Tenant,
    visitors: Sequence[Visitor],
    limit: int = 4,
    known: dict[str, Product] | None = None,
) -> dict[str, dict[Hashable, list[Product]]]:
    """Every strategy and AUTO at once, {strategy: {visitor key: products}}, sharing what they
    load (Liquid's `recommended`, when a template names it)."""
    if not visitors or limit <= 0:
        return {s: {v.key: [] for v in visitors} for s in (*STRATEGIES, AUTO)}
    batch = _Batch(tenant, visitors, known)
    found = {s: function(batch, limit) for s, function in _STRATEGY_FUNCTIONS.items()}
    found[AUTO] = {v.key: _blend(v, found, limit) for v in visitors}
    return found


def recommend_strategy(
    *,
    tenant: Tenant,
    strategy: str,
    visitors: Sequence[Visitor],
    limit: int = 4,
    known: dict[str, Product] | None = None,
) -> dict[Hashable, list[Product]]:
    """Up to `limit` products for each visitor by `strategy` (STRATEGIES or AUTO), by visitor
    key, best first. Never a product out of stock, one the contact bought, or the visitor's
    own `seeds`. Batched: a strategy costs a fixed handful of queries whatever the number of
    visitors (`known`: catalog products loaded already, by sku)."""
    if strategy != AUTO and strategy not in _STRATEGY_FUNCTIONS:
        raise ValueError(f"unknown strategy {strategy!r}")
    if not visitors or limit <= 0:
        return {v.key: [] for v in visitors}
    batch = _Batch(tenant, visitors, known)
    if strategy == AUTO:
        return _auto(batch, limit)
    return _STRATEGY_FUNCTIONS[strategy](batch, limit)
