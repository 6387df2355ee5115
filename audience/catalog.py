"""The product catalog: bulk upsert, and the events a price drop or a return to stock causes for
every contact who has that product in their wishlist or cart."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils.timezone import now

from audience.models import Contact, Product
from audience.services import Fact, events_record
from tenants.models import Tenant

PRODUCT_FIELDS = ("name", "url", "image_url", "price", "currency", "in_stock", "category")
PRICE_DROPPED = "Product Price Dropped"
BACK_IN_STOCK = "Product Back in Stock"
SOURCE = "catalog"


@dataclass
class CatalogChange:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    price_dropped: list[tuple[str, Decimal, Decimal]] = field(default_factory=list)
    back_in_stock: list[str] = field(default_factory=list)


@transaction.atomic
def products_upsert(*, tenant: Tenant, items: list[dict[str, Any]]) -> CatalogChange:
    """Create or update products by sku. `items` are validated dicts (serializer output)."""
    change = CatalogChange()
    skus = [item["sku"] for item in items]
    existing = {
        p.sku: p for p in Product.objects.select_for_update().filter(tenant=tenant, sku__in=skus)
    }
    stamp = now()
    to_create, to_update = [], []
    for item in items:
        product = existing.get(item["sku"])
        if product is None:
            to_create.append(Product(tenant=tenant, updated_at=stamp, **item))
            continue
        fields = {k: v for k, v in item.items() if k in PRODUCT_FIELDS}
        if all(getattr(product, k) == v for k, v in fields.items()):
            change.unchanged += 1
            continue
        old_price, was_in_stock = product.price, product.in_stock
        for k, v in fields.items():
            setattr(product, k, v)
        product.updated_at = stamp
        to_update.append(product)
        if old_price is not None and product.price is not None and product.price < old_price:
            change.price_dropped.append((product.sku, old_price, product.price))
        if not was_in_stock and product.in_stock:
            change.back_in_stock.append(product.sku)
    Product.objects.bulk_create(to_create)
    Product.objects.bulk_update(to_update, [*PRODUCT_FIELDS, "updated_at"])
    change.created, change.updated = len(to_create), len(to_update)
    for sku, old, _ in change.price_dropped:
        _notify_interested(tenant, existing[sku], PRICE_DROPPED, {"previous_price": str(old)})
    for sku in change.back_in_stock:
        _notify_interested(tenant, existing[sku], BACK_IN_STOCK, {})
    return change


def contacts_interested_in(*, tenant: Tenant, sku: str) -> QuerySet[Contact]:
    """Contacts with `sku` in their wishlist or cart."""
    qs = Contact.objects.filter(tenant=tenant)
    if connection.vendor == "postgresql":
        return qs.filter(Q(wishlist__contains=[sku]) | Q(cart__contains=[{"sku": sku}]))
    # Other backends have no JSON containment: narrow by text, then check exactly.
    candidates = qs.filter(Q(wishlist__icontains=sku) | Q(cart__icontains=sku))
    ids = [
        c.pk
        for c in candidates.only("pk", "wishlist", "cart")
        if sku in c.wishlist or any(item.get("sku") == sku for item in c.cart)
    ]
    return qs.filter(pk__in=ids)


def _notify_interested(tenant: Tenant, product: Product, name: str, extra: dict[str, Any]) -> None:
    properties = {
        "sku": product.sku,
        "name": product.name,
        "price": str(product.price) if product.price is not None else None,
        "currency": product.currency,
        "url": product.url,
        "image_url": product.image_url,
        "category": product.category,
        **extra,
    }
    # One such event per contact per change, however often the same update is sent.
    key = f"{name}:{product.sku}:{product.updated_at.isoformat()}"
    interested = contacts_interested_in(tenant=tenant, sku=product.sku)
    events_record(
        tenant=tenant,
        facts=[
            Fact(contact_id=pk, name=name, key=key, source=SOURCE, properties=properties)
            for pk in interested.values_list("pk", flat=True)
        ],
    )
