"""Demo data for the audience: a believable outdoor shop with products in several categories and
about a thousand contacts whose histories of views, searches, wishlists, carts and orders went
through the real ingestion path. Deterministic, and skipped when already there.

Every history lies in the past of the moment of seeding, never after it: each shopper's visits
(a few minutes between the clicks of one visit, hours to days between visits) end at a moment
drawn from RECENCY (some in the last 24 hours, so "Cart abandoners (last 24 h)" has members who
really carted then, most weeks or months ago) and start no earlier than HISTORY_DAYS ago. A
contact is first seen (created) at its first event and last seen at its last."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import F, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils.timezone import now

from audience.catalog import products_upsert
from audience.models import Contact, Event, Product
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
HISTORY_DAYS = 180  # the oldest seeded activity
# How long before the seeding each shopper was last active: (share of shoppers, from, to). Dense
# lately (the last 24 hours, the last two weeks: what "last 24 h / 30 days" segments, the
# dashboards' recent days and the timeline show first), thinning out over half a year (lapsed
# customers, retention risks).
RECENCY = (
    (0.08, timedelta(minutes=5), timedelta(hours=24)),
    (0.22, timedelta(days=1), timedelta(days=14)),
    (0.30, timedelta(days=14), timedelta(days=60)),
    (0.40, timedelta(days=60), timedelta(days=170)),
)
CLICK = (1, 20)  # minutes between two clicks of one visit
RETURN = (2 * 60, 6 * 24 * 60)  # minutes between two visits: two hours to six days


def seed_shop(*, tenant: Tenant, contacts: int = 1000, seed: int = SEED) -> int:
    """Create the catalog and `contacts` shoppers with histories; returns the events stored."""
    if Contact.objects.filter(tenant=tenant).exists():
        return 0
    rng = random.Random(seed)
    seed_catalog(tenant=tenant, rng=rng)
    catalog = list(Product.objects.filter(tenant=tenant))
    seeded_at = now()  # every history ends before this moment
    batch: list[dict[str, object]] = []
    stored = 0
    for n in range(contacts):
        batch += _history(rng, n, catalog, seeded_at)
        if len(batch) >= 500:
            stored += _send(tenant, batch)
            batch = []
    if batch:
        stored += _send(tenant, batch)
    first_seen_settle(tenant=tenant)
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


def first_seen_settle(*, tenant: Tenant) -> int:
    """Contacts first seen when their first event happened rather than when the seed stored it:
    `created_at` moved back to the earliest event of each contact whose events start before it
    (one statement). Returns the contacts moved."""
    first = (
        Event.objects.filter(tenant=tenant, contact_id=OuterRef("pk"))
        .order_by("occurred_at")
        .values("occurred_at")[:1]
    )
    return (
        Contact.objects.filter(tenant=tenant)
        .annotate(first_event=Subquery(first))
        .filter(first_event__lt=F("created_at"))
        .update(created_at=Coalesce(Subquery(first), F("created_at")))
    )


def _last_active(rng: random.Random, before: datetime) -> datetime:
    """When a shopper was last active: a moment drawn from RECENCY before `before`."""
    roll, band = rng.random(), RECENCY[-1]
    for band in RECENCY:
        if roll < band[0]:
            break
        roll -= band[0]
    _, low, high = band
    return before - timedelta(seconds=rng.uniform(low.total_seconds(), high.total_seconds()))


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


def _history(
    rng: random.Random, n: int, catalog: list[Product], before: datetime
) -> list[dict[str, object]]:
    """One shopper's calls, in order, all of them at least five minutes before `before`: drawn
    one after the other from an arbitrary origin, then moved onto the clock so that the last one
    lands at the shopper's last activity (RECENCY) and the first no earlier than HISTORY_DAYS."""
    anonymous_id = str(uuid.UUID(int=rng.getrandbits(128)))
    known = rng.random() < 0.7
    user_id = f"cust-{n + 1:05d}" if known else None
    favourite = rng.choice(list(CATALOG))
    when = before  # the origin; placed on the clock at the end
    out: list[dict[str, object]] = []
    stamps: list[datetime] = []  # each call's moment, from the origin

    def add(kind: str, gap: tuple[int, int] = CLICK, **fields: object) -> None:
        nonlocal when
        when += timedelta(minutes=rng.randrange(*gap))
        ids: dict[str, object] = {"anonymousId": anonymous_id}
        if user_id and out and rng.random() < 0.8:
            ids["userId"] = user_id
        stamps.append(when)
        out.append({"type": kind, "messageId": f"demo-{n}-{len(out)}", **ids, **fields})

    def product_props(p: Product) -> dict[str, object]:
        return {"sku": p.sku, "name": p.name, "price": float(p.price or 0), "category": p.category}

    add("page", name="Home")
    if known:
        first, last = rng.choice(FIRST), rng.choice(LAST)
        stamps.append(when)
        out.append(
            {
                "type": "identify",
                "messageId": f"demo-{n}-id",
                "userId": user_id,
                "anonymousId": anonymous_id,
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
    for visit in range(rng.randrange(1, 6)):
        # The first visit goes on from the home page; each later one comes hours or days after.
        gap = RETURN if visit else CLICK
        if rng.random() < 0.3:
            add(
                "track",
                gap=gap,
                event="Products Searched",
                properties={"query": rng.choice(SEARCHES)},
            )
            gap = CLICK
        product = rng.choice(liked if rng.random() < 0.7 else catalog)
        add("track", gap=gap, event="Product Viewed", properties=product_props(product))
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
                gap=RETURN,
                event="Product Reviewed",
                properties={**product_props(product), "rating": rating},
            )
        else:
            add(
                "track",
                gap=RETURN,
                event="NPS Submitted",
                properties={"score": rng.randrange(5, 11)},
            )
    # Onto the clock: the last call at the shopper's last activity, the first not before
    # HISTORY_DAYS ago (a history spans at most a few weeks: still well before `before`).
    shift = _last_active(rng, before) - stamps[-1]
    too_old = before - timedelta(days=HISTORY_DAYS) - (stamps[0] + shift)
    if too_old > timedelta(0):
        shift += too_old
    for message, stamp in zip(out, stamps, strict=True):
        message["timestamp"] = (stamp + shift).isoformat()
    return out
