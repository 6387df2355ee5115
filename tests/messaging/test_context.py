"""The Liquid context of a message: what each part holds, plain data only, the same shape for
the sample contact, per-tenant products, and a fixed number of queries per send batch."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import pytest

from audience.models import Contact, Product
from audience.segment_spec import parse_call
from audience.services import calls_record
from audience.stages import stages_refresh
from messaging import links
from messaging.context import context_for_contact, contexts_build, sample_context
from messaging.models import Channel, Delivery, Template
from messaging.services import Decision, deliveries_create, sender_identity_update
from tenants.models import Tenant

PLAIN = (dict, list, str, int, float, bool, type(None))


def track(tenant: Tenant, user_id: str, event: str, **properties: Any) -> None:
    message = {
        "type": "track",
        "userId": user_id,
        "event": event,
        "properties": properties,
        "messageId": str(uuid.uuid4()),
    }
    calls_record(tenant=tenant, calls=[parse_call(message)])


def add_products(tenant: Tenant, prefix: str = "") -> None:
    Product.objects.bulk_create(
        [
            Product(
                tenant=tenant,
                sku="SHOE",
                name=f"{prefix}Trail Shoes",
                url="https://shop.example/shoe",
                image_url="https://shop.example/shoe.jpg",
                price=Decimal("89.90"),
                category="Shoes",
            ),
            Product(
                tenant=tenant,
                sku="SOCK",
                name=f"{prefix}Socks",
                url="https://shop.example/sock",
                price=Decimal("4.50"),
                currency="EUR",
                category="Accessories",
            ),
            Product(
                tenant=tenant,
                sku="BOOT",
                name=f"{prefix}Boots",
                url="https://shop.example/boot",
                price=Decimal("120"),
                category="Shoes",
                in_stock=False,
            ),
            Product(tenant=tenant, sku="CAP", name=f"{prefix}Cap", category="Accessories"),
        ]
    )


def shopper(tenant: Tenant, user_id: str) -> Contact:
    """A contact whose cart, wishlist and views come from real events."""
    track(tenant, user_id, "Product Added", sku="SHOE", name="Trail Shoes", price=95, quantity=2)
    track(tenant, user_id, "Product Added", sku="GONE", name="Old Thing", price="3.25")
    track(tenant, user_id, "Product Added to Wishlist", sku="BOOT")
    track(tenant, user_id, "Product Added to Wishlist", sku="UNKNOWN")
    track(tenant, user_id, "Product Viewed", sku="SOCK")
    track(tenant, user_id, "Product Viewed", sku="SHOE")
    return Contact.objects.get(tenant=tenant, user_id=user_id)


def deliveries(tenant: Tenant, contacts: list[Contact], **decision: Any) -> list[Delivery]:
    template = Template.objects.create(
        tenant=tenant, name=f"T {uuid.uuid4()}", channel=Channel.EMAIL, subject="s", html="h"
    )
    deliveries_create(
        tenant=tenant,
        template=template,
        source="campaign:1",
        decisions=[Decision(contact=c, idempotency_key=f"k-{c.pk}", **decision) for c in contacts],
    )
    # Loaded as the outbox's claim loads them.
    return list(
        Delivery.objects.filter(tenant=tenant, template=template)
        .select_related("contact", "tenant")
        .order_by("pk")
    )


def assert_plain(value: Any, path: str = "context") -> None:
    assert isinstance(value, PLAIN), f"{path} is a {type(value).__name__}"
    if isinstance(value, dict):
        for key, item in value.items():
            assert isinstance(key, str)
            assert_plain(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            assert_plain(item, f"{path}[{i}]")


def shape(value: Any) -> Any:
    """The keys of nested dicts (and of a list's first item), for comparing structures."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return None


@pytest.fixture
def ann(world: Any) -> Contact:
    add_products(world.acme)
    track(world.acme, "ann", "Signed Up")
    Contact.objects.filter(tenant=world.acme, user_id="ann").update(
        email="ann@example.com",
        first_name="Ann",
        last_name="Lee",
        phone="+33 1 23 45 67 89",
        timezone="Europe/Paris",
        locale="fr-FR",
        birthday_month=4,
        birthday_day=2,
        attributes={"plan": "gold", "points": 120},
    )
    stages_refresh(tenant=world.acme)  # what ingestion's follow-up task does: just signed up
    return shopper(world.acme, "ann")


def test_it_gives_the_contact_event_tenant_data_and_links(world: Any, ann: Contact) -> None:
    sender_identity_update(
        tenant=world.acme, sender_name="Acme Shop", sender_email="shop@acme.example", verified=True
    )
    event = {"name": "Cart Abandoned", "properties": {"value": 179.8, "items": [{"sku": "SHOE"}]}}
    [delivery] = deliveries(world.acme, [ann], event=event, data={"coupon": "BACK10"})

    context = contexts_build([delivery])[delivery.pk]

    assert context["contact"] == {
        "id": str(ann.public_id),
        "email": "ann@example.com",
        "first_name": "Ann",
        "last_name": "Lee",
        "name": "Ann Lee",
        "phone": "+33 1 23 45 67 89",
        "user_id": "ann",
        "timezone": "Europe/Paris",
        "locale": "fr-FR",
        "lifecycle_stage": "onboarding",
        "birthday": {"month": 4, "day": 2},
        "attributes": {"plan": "gold", "points": 120},
    }
    assert context["event"] == event
    assert context["tenant"] == {
        "name": "Acme",
        "sender_name": "Acme Shop",
        "sender_email": "shop@acme.example",
    }
    assert context["data"] == {"coupon": "BACK10"}
    assert context["unsubscribe_url"] == links.unsubscribe_url(delivery)
    assert context["preferences_url"] == links.preferences_url(delivery)
    assert context["now"].startswith(str(delivery.created_at.year))


def test_its_links_are_signed_for_the_delivery_and_open_their_pages(
    world: Any, ann: Contact, client: Any
) -> None:
    [delivery] = deliveries(world.acme, [ann])

    context = contexts_build([delivery])[delivery.pk]

    for name in ("unsubscribe_url", "preferences_url"):
        path = urlsplit(context[name]).path
        assert links.delivery_public_id(path.rstrip("/").rsplit("/", 1)[1]) == delivery.public_id
        assert client.get(path).status_code == 200


def test_it_fills_the_cart_from_the_catalog(world: Any, ann: Contact) -> None:
    [delivery] = deliveries(world.acme, [ann])

    cart = contexts_build([delivery])[delivery.pk]["cart"]

    assert cart == {
        "items": [
            {
                # The catalog's current name, links and price, the cart's quantity.
                "sku": "SHOE",
                "name": "Trail Shoes",
                "url": "https://shop.example/shoe",
                "image_url": "https://shop.example/shoe.jpg",
                "price": 89.9,
                "currency": "EUR",
                "in_stock": True,
                "category": "Shoes",
                "quantity": 2,
                "line_total": 179.8,
            },
            {
                # No longer in the catalog: what the "Product Added" event said.
                "sku": "GONE",
                "name": "Old Thing",
                "url": "",
                "image_url": "",
                "price": 3.25,
                "currency": "EUR",
                "in_stock": True,
                "category": "",
                "quantity": 1,
                "line_total": 3.25,
            },
        ],
        "total": 183.05,
        "count": 3,
        "currency": "EUR",
    }


def test_it_lists_wishlist_recently_viewed_and_recommendations(world: Any, ann: Contact) -> None:
    track(world.acme, "other", "Order Completed", products=[{"sku": "SOCK"}, {"sku": "CAP"}])
    [delivery] = deliveries(world.acme, [ann])

    context = contexts_build([delivery])[delivery.pk]

    # Skus the catalog does not know are left out; the wishlist keeps what is out of stock.
    assert [p["sku"] for p in context["wishlist"]] == ["BOOT"]
    assert context["wishlist"][0]["in_stock"] is False
    assert [p["sku"] for p in context["recently_viewed"]] == ["SHOE", "SOCK"]
    # Bought with the socks she viewed; nothing else is in stock that she has not seen.
    assert [p["sku"] for p in context["recommendations"]] == ["CAP"]
    assert context["recommendations"][0] == {
        "sku": "CAP",
        "name": "Cap",
        "url": "",
        "image_url": "",
        "price": None,
        "currency": "EUR",
        "in_stock": True,
        "category": "Accessories",
    }


def test_it_holds_plain_data_only(world: Any, ann: Contact) -> None:
    [delivery] = deliveries(world.acme, [ann], event={"name": "X", "properties": {"a": [1]}})

    context = contexts_build([delivery])[delivery.pk]

    assert_plain(context)
    assert_plain(sample_context(world.acme))


def test_it_gives_a_contact_without_history_empty_parts(world: Any) -> None:
    track(world.acme, "nobody", "Signed Up")
    nobody = Contact.objects.get(tenant=world.acme, user_id="nobody")
    [delivery] = deliveries(world.acme, [nobody])

    context = contexts_build([delivery])[delivery.pk]

    assert context["cart"] == {"items": [], "total": 0.0, "count": 0, "currency": "EUR"}
    assert context["wishlist"] == context["recently_viewed"] == context["recommendations"] == []
    assert context["event"] == {"name": "", "properties": {}}
    assert context["data"] == {}
    assert context["contact"]["birthday"] == {"month": None, "day": None}
    assert context["contact"]["timezone"] == "UTC"  # the tenant's


def test_it_takes_each_tenants_own_products(world: Any, ann: Contact) -> None:
    add_products(world.globex, prefix="Globex ")
    gus = shopper(world.globex, "gus")
    batch = deliveries(world.acme, [ann]) + deliveries(world.globex, [gus])

    contexts = contexts_build(batch)

    acme_context, globex_context = contexts[batch[0].pk], contexts[batch[1].pk]
    assert acme_context["cart"]["items"][0]["name"] == "Trail Shoes"
    assert globex_context["cart"]["items"][0]["name"] == "Globex Trail Shoes"
    assert [p["name"] for p in globex_context["wishlist"]] == ["Globex Boots"]
    assert globex_context["tenant"]["name"] == "Globex"


def test_it_builds_a_batch_with_the_same_queries_whatever_its_size(
    world: Any, ann: Contact, django_assert_num_queries: Any
) -> None:
    track(world.acme, "other", "Order Completed", products=[{"sku": "SOCK"}, {"sku": "CAP"}])
    few = deliveries(world.acme, [ann, shopper(world.acme, "bo")])
    many = deliveries(world.acme, [shopper(world.acme, f"c{n}") for n in range(40)])
    add_products(world.globex)
    track(world.globex, "g", "Order Completed", products=[{"sku": "SOCK"}])
    both = few + deliveries(world.globex, [shopper(world.globex, "gus")])

    # Per tenant: the batch's products, then the recommendations' recent orders, the
    # contacts' orders, and candidates by sku and by category, and the sender identity. Links
    # and dicts: no queries.
    with django_assert_num_queries(6):
        contexts_build(few)
    with django_assert_num_queries(6):
        contexts = contexts_build(many)
    with django_assert_num_queries(12):
        contexts_build(both)

    assert len(contexts) == 40


def test_a_preview_context_has_placeholder_links_and_the_given_event(
    world: Any, ann: Contact
) -> None:
    context = context_for_contact(
        tenant=world.acme, contact=ann, event={"name": "Viewed", "properties": {"sku": "SHOE"}}
    )

    assert context["unsubscribe_url"] == context["preferences_url"] == "#"
    assert context["event"] == {"name": "Viewed", "properties": {"sku": "SHOE"}}
    assert context["contact"]["first_name"] == "Ann"
    assert context["cart"]["count"] == 3


def test_a_delivery_preview_context_equals_the_send_context(world: Any, ann: Contact) -> None:
    [delivery] = deliveries(world.acme, [ann], data={"x": 1}, event={"name": "E"})

    preview = context_for_contact(
        tenant=world.acme,
        contact=ann,
        event=delivery.event,
        data=delivery.data,
        delivery=delivery,
    )
    sent = contexts_build([delivery])[delivery.pk]

    assert {**preview, "now": ""} == {**sent, "now": ""}


def test_the_sample_context_has_every_part_filled_in_the_real_shape(
    world: Any, ann: Contact
) -> None:
    [delivery] = deliveries(world.acme, [ann], event={"name": "E", "properties": {}})
    real = contexts_build([delivery])[delivery.pk]

    sample = sample_context(world.acme)

    def fixed(context: dict[str, Any]) -> Any:
        # Attributes, event properties and data are the integrator's: free-form.
        contact = {**context["contact"], "attributes": {}}
        event = {**context["event"], "properties": {}}
        return shape({**context, "contact": contact, "event": event, "data": {}})

    # `recommended` is made only for templates that name it (tests/personalisation/
    # recommendations/test_liquid.py compares its real shape with the sample's).
    assert fixed(sample) == {
        **fixed(real),
        "recommendations": shape(sample["wishlist"]),
        "recommended": shape(sample["recommended"]),
    }
    assert all(value not in (None, "", [], {}) for value in sample["contact"].values())
    assert len(sample["cart"]["items"]) == 3
    assert sample["wishlist"] and sample["recently_viewed"] and sample["event"]["name"]
    assert len(sample["recommendations"]) == 4
    assert all(p["url"].startswith("https://") for p in sample["recommendations"])
