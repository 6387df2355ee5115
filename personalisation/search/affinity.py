"""What a contact tends to look at and buy, learnt from what audience already keeps on them:
the categories of the products they viewed, wishlisted, carted and bought, and the price they
usually pay. Search re-ranks its results with it (personalisation/search/engine.py).

Signals and their weights (buying says more than looking):
- recently viewed (Contact.recently_viewed, newest first): 1, fading with age (the 10th: 0.5);
- wishlisted (Contact.wishlist): 2;
- in the cart (Contact.cart): 3;
- bought (the order ledger audience.models.Order, the latest ORDERS orders): 4 per order line.

A category's affinity is its share of the weight relative to the favourite's (the favourite is
1.0). The typical price is the weighted median of those products' prices. Two or three queries
(orders, the catalog rows of the skus), each by a unique or leading index.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from audience.models import Contact, Order, Product
from tenants.models import Tenant

VIEWED_WEIGHT = 1.0
WISHLIST_WEIGHT = 2.0
CART_WEIGHT = 3.0
BOUGHT_WEIGHT = 4.0
RECENT_VIEWED = 30  # the newest views that count
ORDERS = 20  # the latest orders that count
MAX_SKUS = 200


@dataclass(frozen=True)
class Affinity:
    categories: dict[str, float] = field(default_factory=dict)  # category → 0..1, favourite 1
    price: float | None = None  # typical price paid or looked at

    @property
    def known(self) -> bool:
        return bool(self.categories) or self.price is not None

    def favourites(self, n: int = 3) -> list[str]:
        return sorted(self.categories, key=lambda c: (-self.categories[c], c))[:n]


NONE = Affinity()


def _price(value: Any) -> float | None:
    try:
        price = float(Decimal(str(value)))
    except (InvalidOperation, ValueError, TypeError):
        return None
    return price if price > 0 else None


def _signals(contact: Contact, orders: list[Order]) -> list[tuple[str, float, dict[str, Any]]]:
    """(sku, weight, what the event said about the product) for each signal."""
    found: list[tuple[str, float, dict[str, Any]]] = []
    for position, sku in enumerate(contact.recently_viewed[:RECENT_VIEWED]):
        found.append((str(sku), VIEWED_WEIGHT / (1 + position / 10), {}))
    for sku in contact.wishlist:
        found.append((str(sku), WISHLIST_WEIGHT, {}))
    for item in contact.cart:
        if isinstance(item, dict) and item.get("sku") not in (None, ""):
            found.append((str(item["sku"]), CART_WEIGHT, item))
    for order in orders:
        products = order.properties.get("products") if isinstance(order.properties, dict) else None
        for item in products if isinstance(products, list) else []:
            if isinstance(item, dict):
                sku = item.get("sku") or item.get("product_id")
                if sku not in (None, ""):
                    found.append((str(sku), BOUGHT_WEIGHT, item))
    return [s for s in found if s[0]][:MAX_SKUS]


def affinity_for_contact(*, tenant: Tenant, contact: Contact | None) -> Affinity:
    """The contact's category and price affinity (NONE for no contact or no signals yet)."""
    if contact is None:
        return NONE
    orders = list(
        Order.objects.filter(tenant=tenant, contact=contact).order_by("-occurred_at")[:ORDERS]
    )
    signals = _signals(contact, orders)
    if not signals:
        return NONE
    catalog = {
        sku: (category, price)
        for sku, category, price in Product.objects.filter(
            tenant=tenant, sku__in={sku for sku, _w, _p in signals}
        ).values_list("sku", "category", "price")
    }
    weights: dict[str, float] = {}
    prices: list[tuple[float, float]] = []
    for sku, weight, said in signals:
        category, price = catalog.get(sku, (None, None))
        # The catalog's word first; an order line's own category or price for a product the
        # catalog does not (or no longer) hold.
        category = category or str(said.get("category") or "")
        if category:
            weights[category] = weights.get(category, 0.0) + weight
        if (paid := _price(price) or _price(said.get("price"))) is not None:
            prices.append((paid, weight))
    top = max(weights.values(), default=0.0)
    categories = {c: round(w / top, 4) for c, w in weights.items()} if top else {}
    return Affinity(categories=categories, price=_weighted_median(prices))


def _weighted_median(values: list[tuple[float, float]]) -> float | None:
    if not values:
        return None
    values.sort()
    half, running = sum(w for _v, w in values) / 2, 0.0
    for value, weight in values:
        running += weight
        if running >= half:
            return value
    return values[-1][0]
