"""What a message's Liquid can read: contact, event, cart, wishlist, recently
viewed, recommendations (and `recommended.<strategy>`: the recommendations API's strategies,
made only for a batch whose content names them), tenant, data, unsubscribe and preference
links, now.

Plain dicts, lists, strings and numbers only — never a model object — so a template can reach
nothing but this data (messaging/rendering.py). `contexts_build()` runs in the sender's hot
loop: a claimed batch costs a handful of queries (the batch's products in one, the
recommendations' four and the sender identity per tenant), and each delivery only dict
building. Product dicts are built once per batch and shared by every contact that has the
product: Liquid cannot change its context, so sharing is safe.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, NamedTuple

from django.conf import settings
from django.utils.timezone import now

from audience.models import MAX_QUANTITY, Contact, Product
from audience.selectors import (
    RECOMMENDATION_AUTO,
    RECOMMENDATION_STRATEGIES,
    RecommendationVisitor,
    contact_interests,
    order_lines,
    recommend,
    recommend_strategies,
)
from messaging import links, registry
from messaging.models import Delivery, SenderIdentity
from messaging.selectors import sender_identity_get
from tenants.models import Tenant

RECOMMENDATIONS = 4
# `{{ recommended.<name> }}`: the recommendations API's strategies (audience/recommendations.py,
# docs/personalisation/recommendations.md), RECOMMENDATIONS products each.
RECOMMENDED_NAMES = (*RECOMMENDATION_STRATEGIES, RECOMMENDATION_AUTO)
MAX_LISTED = 20  # wishlist and recently viewed items a template can list
MAX_CART_ITEMS = 50
DEFAULT_CURRENCY = "EUR"  # Product.currency's default


_PAGE_LINKS: dict[tuple[Any, ...], tuple[str, str]] = {}
_PAGE_LINKS_KEPT = 4096


def page_links(delivery: Delivery) -> tuple[str, str]:
    """(unsubscribe URL, preferences URL) of a delivery. Each costs a reverse and a signature,
    and both the context and the email's headers need them: made once per delivery (the key
    holds what they depend on, so a changed setting never serves a stale link)."""
    key = (delivery.tenant_id, delivery.public_id, settings.SITE_URL, settings.SECRET_KEY)
    found = _PAGE_LINKS.get(key)
    if found is None:
        if len(_PAGE_LINKS) >= _PAGE_LINKS_KEPT:
            _PAGE_LINKS.clear()
        found = _PAGE_LINKS[key] = (
            links.unsubscribe_url(delivery),
            links.preferences_url(delivery),
        )
    return found


class _Wanted(NamedTuple):
    key: int
    contact: Contact
    event: dict[str, Any] | None
    data: dict[str, Any] | None
    delivery: Delivery | None


def _number(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(Decimal(str(value)))
    except (ArithmeticError, ValueError):
        return None


def product_dict(product: Product) -> dict[str, Any]:
    return {
        "sku": product.sku,
        "name": product.name,
        "url": product.url,
        "image_url": product.image_url,
        "price": _number(product.price),
        "currency": product.currency,
        "in_stock": product.in_stock,
        "category": product.category,
    }


def tenant_dict(tenant: Tenant, sender: SenderIdentity | None) -> dict[str, Any]:
    """The tenant as templates see it; without a `sender` identity (validating a template, which
    needs the shape, not the values) the name stands in for the sender."""
    return {
        "name": tenant.name,
        "sender_name": (sender and sender.sender_name) or tenant.name,
        "sender_email": sender.sender_email if sender else "",
    }


def contact_dict(contact: Contact, tenant: Tenant) -> dict[str, Any]:
    return {
        "id": str(contact.public_id),
        "email": contact.email,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "name": f"{contact.first_name} {contact.last_name}".strip(),
        "phone": contact.phone,
        "user_id": contact.user_id,
        "timezone": contact.timezone or tenant.timezone,
        "locale": contact.locale,
        "lifecycle_stage": contact.lifecycle_stage,
        "birthday": {"month": contact.birthday_month, "day": contact.birthday_day},
        "attributes": contact.attributes if isinstance(contact.attributes, dict) else {},
    }


def _event_dict(event: dict[str, Any] | None) -> dict[str, Any]:
    if not isinstance(event, dict):
        return {"name": "", "properties": {}}
    properties = event.get("properties")
    return {
        **event,
        "name": str(event.get("name") or event.get("event") or ""),
        "properties": properties if isinstance(properties, dict) else {},
    }


def _quantity(value: Any) -> int:
    # Clamped as audience keeps it: a cart stored before the edge refused huge quantities
    # must not break a message.
    try:
        return min(MAX_QUANTITY, max(1, int(value or 1)))
    except (TypeError, ValueError, OverflowError):
        return 1


def _cart(cart: list[Any], products: dict[str, dict[str, Any]], currency: str) -> dict[str, Any]:
    """The cart with the catalog's current name, links, price and stock for each item (what the
    item stored at "Product Added" when the catalog does not know it)."""
    items, total, count = [], 0.0, 0
    for item in cart[:MAX_CART_ITEMS]:
        if not isinstance(item, dict):
            continue
        sku = str(item.get("sku") or "")
        product = products.get(sku)
        quantity = _quantity(item.get("quantity"))
        if product is not None:
            price = product["price"] if product["price"] is not None else _number(item.get("price"))
            line = {**product, "price": price, "quantity": quantity}
        else:
            price = _number(item.get("price"))
            line = {
                "sku": sku,
                "name": str(item.get("name") or sku),
                "url": "",
                "image_url": "",
                "price": price,
                "currency": currency,
                "in_stock": True,
                "category": "",
                "quantity": quantity,
            }
        line["line_total"] = round(price * quantity, 2) if price is not None else None
        total += line["line_total"] or 0.0
        count += quantity
        items.append(line)
    return {
        "items": items,
        "total": round(total, 2),
        "count": count,  # units, as a cart badge counts them
        "currency": items[0]["currency"] if items else currency,
    }


def _listed(skus: Any, products: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    if not isinstance(skus, list):
        return []
    found = (products.get(str(sku)) for sku in skus)
    return [p for p in found if p is not None][:MAX_LISTED]


def _event_seeds(event: dict[str, Any]) -> tuple[str, ...]:
    """The products a message's event is about (a viewed or carted product, an order's lines):
    what "similar" and "bought together" start from, and never recommend back."""
    properties = event["properties"]
    sku = properties.get("sku") or properties.get("product_id")
    seeds = [str(sku)[:100]] if sku not in (None, "") and isinstance(sku, (str, int)) else []
    seeds += [line_sku for line_sku, _q, _p in order_lines(properties)]
    return tuple(dict.fromkeys(seeds))


def _names_recommended(delivery: Delivery | None) -> bool:
    """Whether a message's content may read `recommended` (a preview without a delivery may:
    its template is not known here)."""
    if delivery is None or not isinstance(delivery.content, dict):
        return True
    return any(isinstance(v, str) and "recommended" in v for v in delivery.content.values())


def _recommended(
    tenant: Tenant,
    wanted: Sequence[_Wanted],
    catalog: dict[str, Product],
    shared: dict[int, dict[str, Any]],
) -> dict[int, dict[str, list[dict[str, Any]]]]:
    """`recommended` of each message: {strategy: [product, …]}. Made for the whole batch at once
    (a fixed handful of queries) when one of its messages names it; empty lists otherwise, so
    a batch whose template does not use it costs nothing (the sender's statement pins)."""
    if not any(_names_recommended(w.delivery) for w in wanted):
        return {w.key: {name: [] for name in RECOMMENDED_NAMES} for w in wanted}
    visitors = [
        RecommendationVisitor(
            key=w.key, contact=w.contact, seeds=_event_seeds(_event_dict(w.event))
        )
        for w in wanted
    ]
    found = recommend_strategies(
        tenant=tenant, visitors=visitors, limit=RECOMMENDATIONS, known=catalog
    )

    def product(p: Product) -> dict[str, Any]:
        if p.pk not in shared:
            shared[p.pk] = product_dict(p)
        return shared[p.pk]

    return {
        w.key: {name: [product(p) for p in found[name][w.key]] for name in RECOMMENDED_NAMES}
        for w in wanted
    }


def _build(tenant: Tenant, wanted: Sequence[_Wanted], *, stamp: str) -> dict[int, dict[str, Any]]:
    """Contexts for contacts of one tenant: one query for their products, four for their
    recommendations, one for the sender identity."""
    skus = {sku for w in wanted for sku in contact_interests(w.contact)}
    catalog = (
        {p.sku: p for p in Product.objects.filter(tenant=tenant, sku__in=skus)} if skus else {}
    )
    recommended = recommend(
        tenant=tenant,
        contacts={w.contact.pk: w.contact for w in wanted}.values(),
        limit=RECOMMENDATIONS,
        known=catalog,
    )
    products = {sku: product_dict(p) for sku, p in catalog.items()}
    shared: dict[int, dict[str, Any]] = {}  # recommended products, once per product
    tenant_data = tenant_dict(tenant, sender_identity_get(tenant=tenant))
    by_strategy = _recommended(tenant, wanted, catalog, shared)
    contexts = {}
    for w in wanted:
        contact = w.contact
        picks = []
        for p in recommended.get(contact.pk, []):
            if p.pk not in shared:
                shared[p.pk] = product_dict(p)
            picks.append(shared[p.pk])
        # Without a delivery (a preview) there is nothing to sign: the links go nowhere.
        unsubscribe, preferences = page_links(w.delivery) if w.delivery else ("#", "#")
        contexts[w.key] = {
            "contact": contact_dict(contact, tenant),
            "event": _event_dict(w.event),
            "cart": _cart(
                contact.cart if isinstance(contact.cart, list) else [], products, DEFAULT_CURRENCY
            ),
            "wishlist": _listed(contact.wishlist, products),
            "recently_viewed": _listed(contact.recently_viewed, products),
            "recommendations": picks,
            "recommended": by_strategy[w.key],
            "tenant": tenant_data,
            "data": w.data if isinstance(w.data, dict) else {},
            "unsubscribe_url": unsubscribe,
            "preferences_url": preferences,
            "now": stamp,
        }
    _extend(tenant, contexts, [registry.ContextItem(w.key, w.contact, w.delivery) for w in wanted])
    return contexts


def _extend(
    tenant: Tenant, contexts: dict[int, dict[str, Any]], items: list[registry.ContextItem]
) -> None:
    """Names the apps above messaging add (messaging/registry.py); ours win a clash."""
    for extender in registry.CONTEXT_EXTENDERS:
        for key, names in extender(tenant=tenant, items=items).items():
            if key in contexts:
                contexts[key] = {**names, **contexts[key]}


def contexts_build(deliveries: list[Delivery]) -> dict[int, dict[str, Any]]:
    """The Liquid context of each delivery, by delivery pk (contact and tenant loaded)."""
    stamp = now().isoformat()
    by_tenant: dict[int, list[_Wanted]] = {}
    tenants: dict[int, Tenant] = {}
    for d in deliveries:
        tenants[d.tenant_id] = d.tenant
        by_tenant.setdefault(d.tenant_id, []).append(_Wanted(d.pk, d.contact, d.event, d.data, d))
    contexts: dict[int, dict[str, Any]] = {}
    for tenant_id, wanted in by_tenant.items():
        contexts.update(_build(tenants[tenant_id], wanted, stamp=stamp))
    return contexts


def context_for_contact(
    *,
    tenant: Tenant,
    contact: Contact,
    event: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
    delivery: Delivery | None = None,
) -> dict[str, Any]:
    """One contact's context, as a send would build it (the editor's preview, a test send)."""
    wanted = _Wanted(0, contact, event, data, delivery)
    return _build(tenant, [wanted], stamp=now().isoformat())[0]


def _sample_product(n: int, name: str, category: str, price: float) -> dict[str, Any]:
    return {
        "sku": f"SAMPLE-{n}",
        "name": name,
        "url": f"https://shop.example/products/sample-{n}",
        "image_url": f"https://shop.example/images/sample-{n}.jpg",
        "price": price,
        "currency": DEFAULT_CURRENCY,
        "in_stock": True,
        "category": category,
    }


def sample_context(tenant: Tenant, *, sender: SenderIdentity | None = None) -> dict[str, Any]:
    """A made-up contact with every field filled, for validating templates and the editor's
    preview: a cart of three, a wishlist, recently viewed, recommendations and an event.
    Reads no database: the tenant's own fields and the `sender` given (a preview's)."""
    products = [
        _sample_product(1, "Trail Running Shoes", "Shoes", 89.90),
        _sample_product(2, "Merino Wool Socks", "Accessories", 14.50),
        _sample_product(3, "Rain Jacket", "Outerwear", 129.00),
        _sample_product(4, "Insulated Bottle", "Accessories", 24.00),
        _sample_product(5, "Hiking Boots", "Shoes", 149.00),
        _sample_product(6, "Fleece Beanie", "Accessories", 19.90),
        _sample_product(7, "Down Vest", "Outerwear", 99.00),
    ]
    quantities = (1, 2, 1)
    items = [
        {**p, "quantity": q, "line_total": round(p["price"] * q, 2)}
        for p, q in zip(products[:3], quantities, strict=True)
    ]
    sample: dict[int, dict[str, Any]] = {
        0: {
            "contact": {
                "id": "00000000-0000-4000-8000-000000000000",
                "email": "ada.lovelace@example.com",
                "first_name": "Ada",
                "last_name": "Lovelace",
                "name": "Ada Lovelace",
                "phone": "+44 20 7946 0000",
                "user_id": "user-1815",
                "timezone": tenant.timezone or "UTC",
                "locale": "en-GB",
                "lifecycle_stage": "engagement",
                "birthday": {"month": 12, "day": 10},
                "attributes": {"plan": "gold", "loyalty_points": 1200, "city": "London"},
            },
            "event": {
                "name": "Product Viewed",
                "properties": {**products[4], "product_id": products[4]["sku"]},
            },
            "cart": {
                "items": items,
                "total": round(sum(i["line_total"] for i in items), 2),
                "count": sum(quantities),
                "currency": DEFAULT_CURRENCY,
            },
            "wishlist": [products[4], products[6]],
            "recently_viewed": [products[4], products[0], products[3]],
            "recommendations": products[3:7],
            "recommended": {
                "recently_viewed": [products[0], products[3]],
                "similar": [products[4], products[0]],
                "bought_together": [products[1], products[5]],
                "trending": products[2:6],
                "back_in_stock": [products[6]],
                "auto": [products[6], products[1], products[4], products[2]],
            },
            "tenant": tenant_dict(tenant, sender),
            "data": {"coupon": "WELCOME10", "discount": 10},
            "unsubscribe_url": "#",
            "preferences_url": "#",
            "now": now().isoformat(),
        }
    }
    _extend(tenant, sample, [registry.ContextItem(0, None, None)])
    return sample[0]
