"""A shop for the recommendation tests, recorded through the real paths: the catalog through
the products upsert (which records `Product Back in Stock` for wishers), behaviour through track
calls (views, carts, wishlists and orders keep the profile and the order ledger), then the
periodic refresh of trending products and co-purchase counts.

acme's catalog (sku: category, price, in stock at the end):

    Shoes:       TRAIL 100, ROAD 110, RACER 95 (out), BOOTS 120, KIDS 90, SLIPPER 20, HEAVY 180
    Accessories: SOCKS 15, LACES 5 (out), BOTTLE 25
    Outerwear:   JACKET 150

Other customers' orders: TRAIL with ROAD x4, with RACER x3, with SOCKS x2; JACKET alone x5.
eve wished ROAD, BOOTS and RACER; all three went out of stock and came back (RACER went out
again); she viewed ROAD, RACER, BOOTS, KIDS (KIDS last) and bought ROAD.
globex sells the same skus (other names): nothing of it may show in acme's answers.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import pytest

from audience.catalog import products_upsert
from audience.models import Contact, Product
from audience.recommendation_stats import recommendation_stats_refresh
from audience.segment_spec import parse_call
from audience.services import calls_record
from tenants.models import Tenant

CATALOG = [
    ("TRAIL", "Trail Shoes", "Shoes", 100),
    ("ROAD", "Road Shoes", "Shoes", 110),
    ("RACER", "Racer Flats", "Shoes", 95),
    ("BOOTS", "Hiking Boots", "Shoes", 120),
    ("KIDS", "Kids' Runners", "Shoes", 90),
    ("SLIPPER", "Slippers", "Shoes", 20),
    ("HEAVY", "Mountain Boots", "Shoes", 180),
    ("SOCKS", "Merino Socks", "Accessories", 15),
    ("LACES", "Spare Laces", "Accessories", 5),
    ("BOTTLE", "Bottle", "Accessories", 25),
    ("JACKET", "Rain Jacket", "Outerwear", 150),
]


def track(
    tenant: Tenant, user_id: str, event: str, at: datetime | None = None, **properties: Any
) -> None:
    message = {
        "type": "track",
        "userId": user_id,
        "event": event,
        "properties": properties,
        "messageId": str(uuid.uuid4()),
    }
    if at is not None:
        message["timestamp"] = at.isoformat()
    calls_record(tenant=tenant, calls=[parse_call(message)])


def order(
    tenant: Tenant,
    user_id: str,
    *skus: str,
    price: float = 10,
    quantity: int = 1,
    at: datetime | None = None,
) -> None:
    track(
        tenant,
        user_id,
        "Order Completed",
        at=at,
        order_id=str(uuid.uuid4()),
        products=[{"sku": sku, "price": price, "quantity": quantity} for sku in skus],
    )


def stock(tenant: Tenant, in_stock: bool, *skus: str) -> None:
    products_upsert(tenant=tenant, items=[{"sku": s, "in_stock": in_stock} for s in skus])


def contact(tenant: Tenant, user_id: str) -> Contact:
    return Contact.objects.get(tenant=tenant, user_id=user_id)


def catalog(tenant: Tenant, prefix: str = "") -> None:
    products_upsert(
        tenant=tenant,
        items=[
            {
                "sku": sku,
                "name": f"{prefix}{name}",
                "category": category,
                "price": price,
                "currency": "EUR",
                "url": f"https://{tenant.slug}.example/p/{sku.lower()}",
                "image_url": f"https://{tenant.slug}.example/i/{sku.lower()}.jpg",
            }
            for sku, name, category, price in CATALOG
        ],
    )


def build_shop(tenant: Tenant, prefix: str = "") -> None:
    catalog(tenant, prefix)
    for n in range(4):
        order(tenant, f"road-{n}", "TRAIL", "ROAD")
    for n in range(3):
        order(tenant, f"racer-{n}", "TRAIL", "RACER")
    for n in range(2):
        order(tenant, f"socks-{n}", "TRAIL", "SOCKS")
    for n in range(5):
        order(tenant, f"jacket-{n}", "JACKET")
    for sku in ("ROAD", "BOOTS", "RACER"):
        track(tenant, "eve", "Product Added to Wishlist", sku=sku)
    stock(tenant, False, "ROAD", "BOOTS", "RACER", "LACES")
    stock(tenant, True, "ROAD", "BOOTS", "RACER")
    stock(tenant, False, "RACER")
    for sku in ("ROAD", "RACER", "BOOTS", "KIDS"):
        track(tenant, "eve", "Product Viewed", sku=sku)
    order(tenant, "eve", "ROAD", price=110)
    recommendation_stats_refresh(tenant=tenant)


@pytest.fixture
def shop(world: Any) -> Tenant:
    build_shop(world.acme)
    build_shop(world.globex, prefix="Globex ")
    return world.acme


def product(tenant: Tenant, sku: str) -> Product:
    return Product.objects.get(tenant=tenant, sku=sku)
