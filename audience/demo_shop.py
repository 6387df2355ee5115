"""The demo shop: a pretend web shop inside Wayfarer that sells the team's own catalog and sends
real events through static/js/tracker.js, so a marketer can watch a visitor become a contact, and
the carts and wishlists that result name products the catalog knows.

The tracker needs a raw write key, and Wayfarer stores only hashes. So GET explains, and POST
(marketers and above; TenantMiddleware refuses viewers) mints a fresh "Demo shop" write key,
revokes the previous one, and renders the shop's home page with the new key embedded (never
cached). A team whose catalog is empty is offered the sample outdoor catalog
(audience.demo.seed_catalog) first.

The shop has pages, as a real one does, so that what personalisation changes from one page view
to the next can be seen: the home page (`?page=home`, with the "home-banner" placement, picks for
the visitor and the team's NPS survey), a category (`?category=tents`) and a product
(`?product=TEN-01`, with recommendations). Those GET pages reuse the key the marketer's POST
minted, kept in their session (a write key is public by design: every shop page carries one),
as long as it is still the team's live demo key; otherwise they show the explanation again.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from accounts.models import User
from audience import registry, selectors
from audience.demo import seed_catalog
from audience.models import Product
from tenants.decorators import TenantRequest
from tenants.models import ApiKey, ApiKeyKind, Tenant, hash_api_key
from tenants.services import api_key_create, api_key_revoke

DEMO_KEY_NAME = "Demo shop"
SESSION_KEYS = "demo_shop_keys"  # in the marketer's session: {tenant pk: the raw demo key}
HOME_BANNER = "home-banner"  # the placement the home page shows (ops/demo.py seeds its variants)
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


def shop_categories(*, tenant: Tenant) -> list[str]:
    """The catalog's categories, for the shop's navigation."""
    names = selectors.product_list(tenant=tenant).exclude(category="").values_list("category")
    return sorted({name for (name,) in names.distinct()}, key=str.lower)


def demo_survey_id(*, tenant: Tenant) -> str | None:
    """The public id of the survey the home page embeds (the team's newest active NPS survey,
    registered by personalisation's surveys: audience.registry); None without."""
    for find in registry.DEMO_SURVEY_FINDERS:
        found = find(tenant=tenant)
        if found:
            return found
    return None


def _remember_key(request: HttpRequest, tenant: Tenant, raw_key: str) -> None:
    keys = dict(request.session.get(SESSION_KEYS) or {})
    keys[str(tenant.pk)] = raw_key
    request.session[SESSION_KEYS] = keys


def remembered_key(request: HttpRequest, tenant: Tenant) -> str | None:
    """The demo key this marketer's session opened the shop with, if it is still the team's live
    demo key (opening the shop again, anywhere, revokes it)."""
    raw = (request.session.get(SESSION_KEYS) or {}).get(str(tenant.pk))
    if not isinstance(raw, str) or not raw:
        return None
    live = ApiKey.objects.filter(
        tenant=tenant,
        kind=ApiKeyKind.WRITE,
        name=DEMO_KEY_NAME,
        revoked_at__isnull=True,
        key_hash=hash_api_key(raw),
    ).exists()
    return raw if live else None


SHOP_PAGE_PARAMS = ("page", "category", "product")


@require_http_methods(["GET", "POST"])
def demo_shop(request: TenantRequest, tenant_slug: str) -> HttpResponse:
    tenant = request.tenant
    if request.method == "POST":
        new_key, sample_added = demo_shop_open(
            tenant=tenant,
            actor=request.user,
            sample_catalog=request.POST.get("sample_catalog") == "1",
        )
        _remember_key(request, tenant, new_key)
        return _shop_page(request, new_key, sample_added=sample_added)
    asked_for_page = any(name in request.GET for name in SHOP_PAGE_PARAMS)
    raw_key = remembered_key(request, tenant)
    if asked_for_page and raw_key is not None:
        return _shop_page(request, raw_key, sample_added=False)
    has_catalog = Product.objects.filter(tenant=tenant).exists()
    ctx = {
        "shop_open": False,
        "has_catalog": has_catalog,
        "shop_is_open": raw_key is not None,
        "key_expired": asked_for_page and raw_key is None,
    }
    return render(request, "audience/demo_shop.html", ctx)


def _shop_page(request: TenantRequest, raw_key: str, *, sample_added: bool) -> HttpResponse:
    """One page of the open shop: the home page, a category, or a product."""
    tenant = request.tenant
    category = request.GET.get("category", "").strip()
    sku = request.GET.get("product", "").strip()
    product = None
    if sku:
        found = selectors.product_list(tenant=tenant).filter(sku=sku).first()
        if found is None:
            raise Http404("No such product in the catalog.")
        product = ShopProduct.of(found)
    products, catalog_size = shop_products(tenant=tenant)
    if category:
        shown = selectors.product_list(tenant=tenant).filter(category=category)
        products = [ShopProduct.of(p) for p in shown.order_by("-in_stock", "name", "sku")]
    # The script needs every product a button on the page names, the product page's included.
    on_page = products + ([product] if product and product not in products else [])
    currencies = [p.currency for p in on_page]
    shop_url = reverse("demo_shop", args=[tenant.slug])
    ctx = {
        "shop_open": True,
        "shop_page": "product" if product else "category" if category else "home",
        "write_key": raw_key,
        # The shop is served by Wayfarer itself, so the tracker's host is this very origin.
        "tracker_host": f"{request.scheme}://{request.get_host()}",
        "shop_url": shop_url,
        # Recommendations and search results link to the shop's own product pages.
        "product_url_template": f"{shop_url}?product={{sku}}",
        "products": products,
        "product": product,
        "category": category,
        "categories": shop_categories(tenant=tenant),
        "catalog_size": catalog_size,
        "sample_added": sample_added,
        "product_data": {p.sku: p.as_properties() for p in on_page},
        "home_banner": HOME_BANNER,
        "survey_id": demo_survey_id(tenant=tenant) if not (product or category) else None,
        # Cart and order totals are in the catalog's most common currency.
        "currency": max(set(currencies), key=currencies.count) if currencies else "EUR",
    }
    response = render(request, "audience/demo_shop.html", ctx)
    response["Cache-Control"] = "no-store"  # the page holds a live write key
    return response
