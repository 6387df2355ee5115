"""The demo shop: a pretend outdoor-gear store inside Wayfarer that sends real events through
static/js/tracker.js, so a marketer can watch a visitor become a contact.

The tracker needs a raw write key, and Wayfarer stores only hashes. So GET explains, and POST
(marketers and above; TenantMiddleware refuses viewers) mints a fresh "Demo shop" write key,
revokes the previous one, and renders the shop with the new key embedded (never cached).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from accounts.models import User
from tenants.models import ApiKey, ApiKeyKind, Tenant
from tenants.services import api_key_create, api_key_revoke

DEMO_KEY_NAME = "Demo shop"
CURRENCY = "EUR"


@dataclass(frozen=True)
class DemoProduct:
    sku: str
    name: str
    category: str
    price: Decimal
    blurb: str
    art: str  # which inline drawing templates/audience/demo_shop.html uses
    hue: int  # background colour of the drawing

    def as_properties(self) -> dict[str, object]:
        """The product for the page's script: its Segment E-commerce properties (which the
        script tracks) and what the product dialog shows."""
        return {
            "product_id": self.sku,
            "sku": self.sku,
            "name": self.name,
            "category": self.category,
            "price": float(self.price),
            "currency": CURRENCY,
            "blurb": self.blurb,
            "art": self.art,
            "hue": self.hue,
        }


PRODUCTS = [
    DemoProduct(
        "TENT-2P",
        "Ridgeline 2-Person Tent",
        "Tents",
        Decimal("249.00"),
        "Freestanding, 2.1 kg, pitches in five minutes in the rain.",
        "tent",
        150,
    ),
    DemoProduct(
        "BAG-DOWN-0",
        "Alpine Down Sleeping Bag 0 °C",
        "Sleeping",
        Decimal("189.00"),
        "700-fill responsibly sourced down; packs to the size of a loaf.",
        "bag",
        25,
    ),
    DemoProduct(
        "PACK-38",
        "Summit 38 L Backpack",
        "Packs",
        Decimal("139.00"),
        "Adjustable back length, hip-belt pockets, rain cover included.",
        "pack",
        210,
    ),
    DemoProduct(
        "STOVE-EMBER",
        "Ember Camp Stove",
        "Cooking",
        Decimal("59.00"),
        "Boils a litre in three minutes; folds into its own pot.",
        "stove",
        10,
    ),
    DemoProduct(
        "LAMP-300",
        "Beacon 300 Headlamp",
        "Lighting",
        Decimal("34.90"),
        "300 lumens, red night mode, USB-C rechargeable.",
        "lamp",
        50,
    ),
    DemoProduct(
        "JACKET-STORM",
        "Stormline Rain Jacket",
        "Clothing",
        Decimal("159.00"),
        "Three-layer waterproof shell with pit zips and a helmet hood.",
        "jacket",
        190,
    ),
    DemoProduct(
        "BOTTLE-1L",
        "Trailhead Insulated Bottle 1 L",
        "Hydration",
        Decimal("29.00"),
        "Keeps tea hot for 12 hours and water cold for 24.",
        "bottle",
        180,
    ),
    DemoProduct(
        "POLES-CARBON",
        "Carbon Trekking Poles",
        "Hiking",
        Decimal("99.00"),
        "A pair at 420 g, flick-lock, cork grips.",
        "poles",
        270,
    ),
]


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


@require_http_methods(["GET", "POST"])
def demo_shop(request: HttpRequest, tenant_slug: str) -> HttpResponse:
    if request.method == "GET":
        return render(request, "audience/demo_shop.html", {"shop_open": False})
    _, raw_key = demo_shop_key_rotate(tenant=request.tenant, actor=request.user)
    ctx = {
        "shop_open": True,
        "write_key": raw_key,
        # The shop is served by Wayfarer itself, so the tracker's host is this very origin.
        "tracker_host": f"{request.scheme}://{request.get_host()}",
        "products": PRODUCTS,
        "product_data": {p.sku: p.as_properties() for p in PRODUCTS},
        "currency": CURRENCY,
    }
    response = render(request, "audience/demo_shop.html", ctx)
    response["Cache-Control"] = "no-store"  # the page holds a live write key
    return response
