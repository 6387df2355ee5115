"""A shop for the search tests, recorded through the real paths: the catalog through the
products upsert, shoppers' behaviour through track calls (views, carts, wishlists and orders
keep the profile and the order ledger that affinity reads).

acme's catalog (sku: name, category, price, in stock):

    SNK-RUN  Trail running sneakers  Running   90
    SNK-CAS  Canvas sneakers         Casual    60
    SNK-KID  Kids sneakers           Kids      40
    SNK-LTH  Leather sneakers        Formal    95   out of stock
    BOOT     Hiking boots            Hiking   120
    JACKET   Rain jacket             Outerwear 150
    TEE      Cotton tee              Casual    20
    SOCKS    Wool socks              Casual    12

Shoppers (user ids): "casual-cat" viewed TEE, carted SOCKS and bought TEE (Casual, cheap);
"runner" viewed SNK-RUN and wished it (Running); "big-spender" bought JACKET (Outerwear, around
150: no sneaker category, only a price).
globex sells sneakers too (GLX-SNK "Globex sneakers", Running): never in acme's answers.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest

from audience.catalog import products_upsert
from audience.models import Contact
from audience.segment_spec import parse_call
from audience.services import calls_record
from tenants.models import Tenant

CATALOG = [
    ("SNK-RUN", "Trail running sneakers", "Running", "90", True),
    ("SNK-CAS", "Canvas sneakers", "Casual", "60", True),
    ("SNK-KID", "Kids sneakers", "Kids", "40", True),
    ("SNK-LTH", "Leather sneakers", "Formal", "95", False),
    ("BOOT", "Hiking boots", "Hiking", "120", True),
    ("JACKET", "Rain jacket", "Outerwear", "150", True),
    ("TEE", "Cotton tee", "Casual", "20", True),
    ("SOCKS", "Wool socks", "Casual", "12", True),
]
SNEAKERS = {"SNK-RUN", "SNK-CAS", "SNK-KID", "SNK-LTH"}


def catalog_item(sku: str, name: str, category: str, price: str, in_stock: bool) -> dict[str, Any]:
    return {
        "sku": sku,
        "name": name,
        "category": category,
        "price": Decimal(price),
        "in_stock": in_stock,
        "url": f"https://shop.example/p/{sku.lower()}",
    }


def track(tenant: Tenant, user_id: str, event: str, **properties: Any) -> None:
    message = {
        "type": "track",
        "userId": user_id,
        "event": event,
        "properties": properties,
        "messageId": str(uuid.uuid4()),
    }
    calls_record(tenant=tenant, calls=[parse_call(message)])


def product(sku: str) -> dict[str, Any]:
    row = next(r for r in CATALOG if r[0] == sku)
    return {"sku": sku, "name": row[1], "category": row[2], "price": float(row[3])}


@pytest.fixture
def shop(world: Any) -> Any:
    products_upsert(tenant=world.acme, items=[catalog_item(*row) for row in CATALOG])
    products_upsert(
        tenant=world.globex,
        items=[catalog_item("GLX-SNK", "Globex sneakers", "Running", "70", True)],
    )
    track(world.acme, "casual-cat", "Product Viewed", **product("TEE"))
    track(world.acme, "casual-cat", "Product Added", **product("SOCKS"), quantity=1)
    track(world.acme, "casual-cat", "Order Completed", order_id="o-1", products=[product("TEE")])
    track(world.acme, "runner", "Product Viewed", **product("SNK-RUN"))
    track(world.acme, "runner", "Product Added to Wishlist", **product("SNK-RUN"))
    track(
        world.acme, "big-spender", "Order Completed", order_id="o-2", products=[product("JACKET")]
    )
    return world


def contact(tenant: Tenant, user_id: str) -> Contact:
    return Contact.objects.get(tenant=tenant, user_id=user_id)
