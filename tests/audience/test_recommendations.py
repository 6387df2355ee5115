"""Recommendations from real events: bought together (Order Completed), same category, best
sellers; in stock only, never what the contact has or bought; batched and per tenant."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from audience import recommendations
from audience.models import Contact, Product
from audience.recommendations import recommend
from audience.segment_spec import parse_call
from audience.services import calls_record
from tenants.models import Tenant

CATALOG = [
    # sku, name, category, in stock
    ("TRAIL", "Trail Shoes", "Shoes", True),
    ("ROAD", "Road Shoes", "Shoes", True),
    ("BOOTS", "Hiking Boots", "Shoes", True),
    ("SANDALS", "Sandals", "Shoes", False),
    ("SOCKS", "Merino Socks", "Accessories", True),
    ("LACES", "Spare Laces", "Accessories", True),
    ("BOTTLE", "Bottle", "Accessories", True),
    ("JACKET", "Rain Jacket", "Outerwear", True),
    ("VEST", "Down Vest", "Outerwear", False),
]


def catalog(tenant: Tenant) -> None:
    Product.objects.bulk_create(
        Product(tenant=tenant, sku=sku, name=name, category=category, in_stock=stock, price=10)
        for sku, name, category, stock in CATALOG
    )


def track(tenant: Tenant, user_id: str, event: str, **properties: Any) -> None:
    message = {
        "type": "track",
        "userId": user_id,
        "event": event,
        "properties": properties,
        "messageId": str(uuid.uuid4()),
    }
    calls_record(tenant=tenant, calls=[parse_call(message)])


def order(tenant: Tenant, user_id: str, *skus: str) -> None:
    track(
        tenant,
        user_id,
        "Order Completed",
        order_id=str(uuid.uuid4()),
        products=[{"sku": sku, "price": 10, "quantity": 1} for sku in skus],
    )


def contact(tenant: Tenant, user_id: str) -> Contact:
    return Contact.objects.get(tenant=tenant, user_id=user_id)


def skus(products: list[Product]) -> list[str]:
    return [p.sku for p in products]


@pytest.fixture
def shop(world: Any) -> Tenant:
    """acme's catalog and the orders of its other customers: socks go with trail shoes (3
    orders), laces with trail shoes (1), and jackets sell on their own (4)."""
    catalog(world.acme)
    for n in range(3):
        order(world.acme, f"buyer-{n}", "TRAIL", "SOCKS")
    order(world.acme, "buyer-3", "TRAIL", "LACES")
    for n in range(4):
        order(world.acme, f"jacket-buyer-{n}", "JACKET")
    order(world.acme, "buyer-4", "BOOTS")
    return world.acme


def test_it_recommends_what_others_bought_with_what_they_viewed_then_its_category(
    shop: Tenant,
) -> None:
    track(shop, "ann", "Product Viewed", sku="TRAIL", name="Trail Shoes")
    ann = contact(shop, "ann")

    picks = recommend(tenant=shop, contacts=[ann], limit=4)

    # Bought together first (most often first), then other shoes in stock, best sellers first.
    assert skus(picks[ann.pk]) == ["SOCKS", "LACES", "BOOTS", "ROAD"]


def test_it_never_recommends_what_is_out_of_stock_in_the_cart_or_already_bought(
    shop: Tenant,
) -> None:
    track(shop, "bo", "Product Viewed", sku="TRAIL")
    track(shop, "bo", "Product Added", sku="SOCKS", quantity=1, price=10)
    track(shop, "bo", "Product Added to Wishlist", sku="ROAD")
    order(shop, "bo", "LACES")  # empties the cart, so add the socks again after it
    track(shop, "bo", "Product Added", sku="SOCKS", quantity=1, price=10)
    bo = contact(shop, "bo")

    picks = skus(recommend(tenant=shop, contacts=[bo], limit=10)[bo.pk])

    assert picks[:1] == ["BOOTS"]  # the one shoe left: Trail viewed, Road wished, Sandals out
    for excluded in ("TRAIL", "SOCKS", "ROAD", "LACES", "SANDALS", "VEST"):
        assert excluded not in picks


def test_it_recommends_best_sellers_to_a_contact_without_history(shop: Tenant) -> None:
    track(shop, "new", "Signed Up")
    new = contact(shop, "new")

    picks = recommend(tenant=shop, contacts=[new], limit=3)

    assert skus(picks[new.pk]) == ["JACKET", "TRAIL", "SOCKS"]


def test_it_counts_only_the_most_recent_orders(
    shop: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(2):
        order(shop, f"late-{n}", "TRAIL", "BOTTLE")
    track(shop, "cy", "Product Viewed", sku="TRAIL")
    cy = contact(shop, "cy")
    monkeypatch.setattr(recommendations, "RECENT_ORDERS", 2)

    picks = recommend(tenant=shop, contacts=[cy], limit=1)

    # In the two latest orders the bottle went with trail shoes; the socks' three are older.
    assert skus(picks[cy.pk]) == ["BOTTLE"]


def test_it_keeps_tenants_apart(shop: Tenant, world: Any) -> None:
    # globex sells the same skus, and its customers buy trail shoes with a bottle.
    catalog(world.globex)
    for n in range(5):
        order(world.globex, f"g-{n}", "TRAIL", "BOTTLE")
    track(shop, "ann", "Product Viewed", sku="TRAIL")
    track(world.globex, "gus", "Product Viewed", sku="TRAIL")
    ann, gus = contact(shop, "ann"), contact(world.globex, "gus")

    acme_picks = recommend(tenant=shop, contacts=[ann], limit=2)[ann.pk]
    globex_picks = recommend(tenant=world.globex, contacts=[gus], limit=2)[gus.pk]

    assert skus(acme_picks) == ["SOCKS", "LACES"]
    assert {p.tenant_id for p in acme_picks} == {shop.pk}
    assert skus(globex_picks) == ["BOTTLE", "BOOTS"]
    assert {p.tenant_id for p in globex_picks} == {world.globex.pk}


def test_it_answers_a_whole_batch_with_a_fixed_number_of_queries(
    shop: Tenant, django_assert_num_queries: Any
) -> None:
    for n in range(30):
        track(shop, f"c-{n}", "Product Viewed", sku=["TRAIL", "JACKET", "BOTTLE"][n % 3])
    contacts = list(Contact.objects.filter(tenant=shop, user_id__startswith="c-"))

    # The interests' products, recent orders, the batch's orders, candidates by sku and by
    # category: five, whatever the batch's size.
    with django_assert_num_queries(5):
        picks = recommend(tenant=shop, contacts=contacts, limit=4)
    known = {p.sku: p for p in Product.objects.filter(tenant=shop)}
    with django_assert_num_queries(4):
        recommend(tenant=shop, contacts=contacts, limit=4, known=known)

    assert len(picks) == 30
    assert all(len(products) == 4 for products in picks.values())


def test_it_reads_skus_named_product_id_and_ignores_malformed_orders(shop: Tenant) -> None:
    track(shop, "x", "Order Completed", products=[{"product_id": "ROAD"}, {"product_id": "BOTTLE"}])
    track(shop, "y", "Order Completed", products="not a list")
    track(shop, "z", "Order Completed", products=[None, 3, {"sku": ""}])
    track(shop, "dee", "Product Viewed", sku="ROAD")
    dee = contact(shop, "dee")

    picks = recommend(tenant=shop, contacts=[dee], limit=1)

    assert skus(picks[dee.pk]) == ["BOTTLE"]
