"""Demo data for the audience: a believable outdoor shop with products in several categories and
about a thousand contacts whose histories of views, searches, wishlists, carts and orders went
through the real ingestion path. Deterministic, and skipped when already there."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.utils.timezone import now

from audience.catalog import products_upsert
from audience.models import Contact, Product
from audience.segment_spec import parse_call
from audience.services import calls_record
from audience.stages import stages_refresh
from tenants.models import Tenant

CATALOG = {
    "tents": [
        ("Trail Tent 2P", "249.00"),
        ("Summit Tent 3P", "389.00"),
        ("Bivy Shelter", "159.00"),
    ],
    "sleeping": [
        ("Down Bag -5°C", "299.00"),
        ("Synthetic Bag 5°C", "119.00"),
        ("Air Mat", "89.00"),
    ],
    "footwear": [
        ("Ridge Hiking Boot", "179.00"),
        ("Trail Runner", "139.00"),
        ("Camp Sandal", "49.00"),
    ],
    "clothing": [("Rain Shell", "229.00"), ("Fleece Mid-layer", "89.00"), ("Merino Tee", "59.00")],
    "cooking": [("Gas Stove", "69.00"), ("Titanium Pot", "45.00"), ("Water Filter", "39.00")],
    "packs": [("Daypack 25L", "99.00"), ("Trek Pack 55L", "219.00"), ("Hip Belt Bag", "29.00")],
}
FIRST = [
    "Ann",
    "Ben",
    "Cara",
    "Dev",
    "Ella",
    "Finn",
    "Gia",
    "Hugo",
    "Ines",
    "Jon",
    "Kai",
    "Lena",
    "Mo",
    "Nora",
    "Omar",
    "Pia",
    "Quinn",
    "Rosa",
    "Sam",
    "Tara",
    "Uma",
    "Vik",
    "Wen",
    "Yara",
]
LAST = [
    "Adler",
    "Berg",
    "Costa",
    "Dahl",
    "Evans",
    "Fischer",
    "Garcia",
    "Hansen",
    "Ito",
    "Jensen",
    "Khan",
    "Larsen",
    "Meyer",
    "Novak",
    "Olsen",
    "Petrov",
    "Rossi",
    "Silva",
    "Tanaka",
    "Weber",
]
ZONES = ["Europe/Berlin", "Europe/Paris", "Europe/London", "America/New_York", "Asia/Tokyo"]
SEARCHES = ["tent", "waterproof jacket", "sleeping bag", "boots size 42", "stove", "backpack"]


SEED = 7  # the demo is deterministic: the same catalog and shoppers every time


def seed_shop(*, tenant: Tenant, contacts: int = 1000, seed: int = SEED) -> int:
    """Create the catalog and `contacts` shoppers with histories; returns the events stored."""
    if Contact.objects.filter(tenant=tenant).exists():
        return 0
    rng = random.Random(seed)
    seed_catalog(tenant=tenant, rng=rng)
    catalog = list(Product.objects.filter(tenant=tenant))
    start = now() - timedelta(days=180)
    batch: list[dict[str, object]] = []
    stored = 0
    for n in range(contacts):
        batch += _history(rng, n, catalog, start)
        if len(batch) >= 500:
            stored += _send(tenant, batch)
            batch = []
    if batch:
        stored += _send(tenant, batch)
    # The shoppers' lifecycle stages now, as the task after each recording would leave them
    # (audience/stages.py), each change an event: the demo's journey map has all its stages.
    stored += len(stages_refresh(tenant=tenant))
    return stored


def seed_catalog(*, tenant: Tenant, rng: random.Random | None = None) -> None:
    """The demo shop's catalog: 18 outdoor products in 6 categories, SKUs like `TEN-01`. The demo
    team gets it from seed_shop; any team can add it from the demo shop (audience/demo_shop.py)."""
    rng = rng or random.Random(SEED)
    items = [
        {
            "sku": f"{category[:3].upper()}-{i + 1:02d}",
            "name": name,
            "price": Decimal(price),
            "currency": "EUR",
            "category": category,
            "in_stock": rng.random() > 0.1,
            "url": f"https://demo-shop.example/p/{category}/{i + 1}",
        }
        for category, products in CATALOG.items()
        for i, (name, price) in enumerate(products)
    ]
    products_upsert(tenant=tenant, items=items)


def _send(tenant: Tenant, raw: list[dict[str, object]]) -> int:
    result = calls_record(tenant=tenant, calls=[parse_call(m) for m in raw], source="demo")
    return result.stored


def _companions(product: Any, liked: list[Any], key: str) -> list[Any]:
    """Half the orders hold one or two more products of the same kind (a tent with a sleeping
    bag): what "frequently bought together" learns from. Drawn from a generator of their own so
    that the rest of the shop's history stays what it was."""
    draw = random.Random(key)
    others = [p for p in liked if p.pk != product.pk]
    if not others or draw.random() < 0.5:
        return []
    return draw.sample(others, min(len(others), draw.randrange(1, 3)))


def _history(rng: random.Random, n: int, catalog: list[Product], start) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    anonymous_id = str(uuid.UUID(int=rng.getrandbits(128)))
    known = rng.random() < 0.7
    user_id = f"cust-{n + 1:05d}" if known else None
    favourite = rng.choice(list(CATALOG))
    when = start + timedelta(minutes=rng.randrange(0, 180 * 24 * 60))
    out: list[dict[str, object]] = []

    def add(kind: str, **fields: object) -> None:
        nonlocal when
        when += timedelta(minutes=rng.randrange(1, 3 * 24 * 60))
        ids: dict[str, object] = {"anonymousId": anonymous_id}
        if user_id and out and rng.random() < 0.8:
            ids["userId"] = user_id
        out.append(
            {
                "type": kind,
                "messageId": f"demo-{n}-{len(out)}",
                "timestamp": when.isoformat(),
                **ids,
                **fields,
            }
        )

    def product_props(p: Product) -> dict[str, object]:
        return {"sku": p.sku, "name": p.name, "price": float(p.price or 0), "category": p.category}

    add("page", name="Home")
    if known:
        first, last = rng.choice(FIRST), rng.choice(LAST)
        out.append(
            {
                "type": "identify",
                "messageId": f"demo-{n}-id",
                "userId": user_id,
                "anonymousId": anonymous_id,
                "timestamp": when.isoformat(),
                "traits": {
                    "email": f"{first.lower()}.{last.lower()}{n}@example.com",
                    "firstName": first,
                    "lastName": last,
                    "timezone": rng.choice(ZONES),
                    "birthday": f"{rng.randrange(1960, 2005)}-{rng.randrange(1, 13):02d}-"
                    f"{rng.randrange(1, 29):02d}",
                },
            }
        )
    liked = [p for p in catalog if p.category == favourite] or catalog
    for _ in range(rng.randrange(1, 6)):
        if rng.random() < 0.3:
            add("track", event="Products Searched", properties={"query": rng.choice(SEARCHES)})
        product = rng.choice(liked if rng.random() < 0.7 else catalog)
        add("track", event="Product Viewed", properties=product_props(product))
        if rng.random() < 0.25:
            add("track", event="Product Added to Wishlist", properties=product_props(product))
        if rng.random() < 0.35:
            add("track", event="Product Added", properties=product_props(product))
            if rng.random() < 0.5:
                add(
                    "track",
                    event="Checkout Started",
                    properties={"value": float(product.price or 0)},
                )
                if rng.random() < 0.7:
                    basket = [product, *_companions(product, liked, f"{n}-{len(out)}")]
                    add(
                        "track",
                        event="Order Completed",
                        properties={
                            "order_id": f"o-{n}-{len(out)}",
                            "total": float(sum(p.price or 0 for p in basket)),
                            "currency": "EUR",
                            "products": [product_props(p) for p in basket],
                        },
                    )
    # Some buyers say what they think: a review, or an answer to the NPS survey (advocacy,
    # docs/lifecycle.md).
    if any(m.get("event") == "Order Completed" for m in out) and rng.random() < 0.4:
        if rng.random() < 0.5:
            rating = rng.randrange(3, 6)
            add(
                "track",
                event="Product Reviewed",
                properties={**product_props(product), "rating": rating},
            )
        else:
            add("track", event="NPS Submitted", properties={"score": rng.randrange(5, 11)})
    return out
