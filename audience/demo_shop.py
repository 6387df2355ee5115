"""The demo shop: a pretend web shop inside Wayfarer that sells the team's own catalog and sends
real events through static/js/tracker.js, so a marketer can watch a visitor become a contact, and
the carts and wishlists that result name products the catalog knows.

The tracker needs a raw write key, and Wayfarer stores only hashes. So GET explains, and POST
(marketers and above; TenantMiddleware refuses viewers) mints a fresh "Demo shop" write key,
revokes the previous one, and renders the shop with the new key embedded (never cached). A team
whose catalog is empty is offered the sample outdoor catalog (audience.demo.seed_catalog) first.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from accounts.models import User
from audience import selectors
from audience.demo import seed_catalog
from audience.models import Product
from tenants.decorators import TenantRequest
from tenants.models import ApiKey, ApiKeyKind, Tenant
from tenants.services import api_key_create, api_key_revoke

DEMO_KEY_NAME = "Demo shop"
SHOP_SIZE = 60  # products on the page: a real catalog may hold thousands
CURRENCY_SIGNS = {"EUR": "€", "USD": "$", "GBP": "£"}
# The inline drawing (templates/audience/demo_shop.html) for a category containing the word.
ART_BY_WORD = {
    "tent": "tent",
    "shelter": "tent",
    "sleep": "bag",
    "pack": "pack",
    "bag": "pack",
    "cook": "stove",
    "stove": "stove",
    "light": "lamp",
    "lamp": "lamp",
    "cloth": "jacket",
    "jacket": "jacket",
    "foot": "boot",
    "shoe": "boot",
    "boot": "boot",
    "hydrat": "bottle",
    "bottle": "bottle",
    "hik": "poles",
    "pole": "poles",
}


@dataclass(frozen=True)
class ShopProduct:
    """A catalog product as the shop shows it."""

    sku: str
    name: str
    category: str
    price: Decimal | None
    currency: str
    in_stock: bool
    url: str
    image_url: str

    @classmethod
    def of(cls, product: Product) -> ShopProduct:
        return cls(
            sku=product.sku,
            name=product.name,
            category=product.category,
            price=product.price,
            currency=product.currency,
            in_stock=product.in_stock,
            url=product.url,
            image_url=product.image_url,
        )

    @property
    def art(self) -> str:
        category = self.category.lower()
        return next((art for word, art in ART_BY_WORD.items() if word in category), "tag")

    @property
    def hue(self) -> int:
        """The drawing's background colour: stable per category."""
        return zlib.crc32(self.category.lower().encode()) % 360

    @property
    def price_label(self) -> str:
        if self.price is None:
            return ""
        sign = CURRENCY_SIGNS.get(self.currency)
        return f"{sign}{self.price}" if sign else f"{self.price} {self.currency}"

    def as_properties(self) -> dict[str, object]:
        """The product for the page's script: what its events carry (Segment E-commerce product
        properties; the script leaves out empty ones) and what the product dialog shows."""
        return {
            "product_id": self.sku,
            "sku": self.sku,
            "name": self.name,
            "category": self.category,
            "price": float(self.price) if self.price is not None else None,
            "currency": self.currency,
            "url": self.url,
            "image_url": self.image_url,
            "in_stock": self.in_stock,
        }


def shop_products(*, tenant: Tenant) -> tuple[list[ShopProduct], int]:
    """The products the shop shows (in stock first, by category and name) and how many the
    tenant's catalog holds."""
    catalog = selectors.product_list(tenant=tenant)
    shown = catalog.order_by("-in_stock", "category", "name", "sku")[:SHOP_SIZE]
    return [ShopProduct.of(p) for p in shown], catalog.count()


@transaction.atomic
def demo_shop_key_rotate(*, tenant: Tenant, actor: User) -> tuple[ApiKey, str]:
    """A fresh "Demo shop" write key for the tenant; its earlier demo keys are revoked, so at most
    one demo key works at a time. Returns (key, raw key)."""
    # Lock the tenant row: two concurrent openings must not revoke each other's new key.
    Tenant.objects.select_for_update().filter(pk=tenant.pk).first()
    key, raw = api_key_create(tenant=tenant, kind=ApiKeyKind.WRITE, name=DEMO_KEY_NAME, actor=actor)
    earlier = ApiKey.objects.filter(
        tenant=tenant, kind=ApiKeyKind.WRITE, name=DEMO_KEY_NAME, revoked_at__isnull=True
    ).exclude(pk=key.pk)
    for old in earlier:
        api_key_revoke(tenant=tenant, api_key=old)
    return key, raw


@transaction.atomic
def demo_shop_open(*, tenant: Tenant, actor: User, sample_catalog: bool) -> tuple[str, bool]:
    """Rotate the demo key and, when asked and the tenant's catalog is empty, add the sample
    catalog. Returns (raw key, whether the sample catalog was added)."""
    _, raw_key = demo_shop_key_rotate(tenant=tenant, actor=actor)
    # The tenant row is locked now: two openings cannot both find the catalog empty.
    add_sample = sample_catalog and not Product.objects.filter(tenant=tenant).exists()
    if add_sample:
        seed_catalog(tenant=tenant)
    return raw_key, add_sample


@require_http_methods(["GET", "POST"])
def demo_shop(request: TenantRequest, tenant_slug: str) -> HttpResponse:
    if request.method == "GET":
        has_catalog = Product.objects.filter(tenant=request.tenant).exists()
        return render(
            request, "audience/demo_shop.html", {"shop_open": False, "has_catalog": has_catalog}
        )
    raw_key, sample_added = demo_shop_open(
        tenant=request.tenant,
        actor=request.user,
        sample_catalog=request.POST.get("sample_catalog") == "1",
    )
    products, catalog_size = shop_products(tenant=request.tenant)
    currencies = [p.currency for p in products]
    ctx = {
        "shop_open": True,
        "write_key": raw_key,
        # The shop is served by Wayfarer itself, so the tracker's host is this very origin.
        "tracker_host": f"{request.scheme}://{request.get_host()}",
        "products": products,
        "catalog_size": catalog_size,
        "sample_added": sample_added,
        "product_data": {p.sku: p.as_properties() for p in products},
        # Cart and order totals are in the catalog's most common currency.
        "currency": max(set(currencies), key=currencies.count) if currencies else "EUR",
    }
    response = render(request, "audience/demo_shop.html", ctx)
    response["Cache-Control"] = "no-store"  # the page holds a live write key
    return response
