from __future__ import annotations

import pytest

from audience.demo import seed_shop
from audience.models import Contact, Event, Identity, Product
from audience.stages import STAGE_CHANGED

pytestmark = pytest.mark.django_db


def test_it_seeds_a_believable_shop_once(world, django_assert_max_num_queries) -> None:
    stored = seed_shop(tenant=world.acme, contacts=60)
    assert stored == Event.objects.filter(tenant=world.acme).count() > 60
    assert Product.objects.filter(tenant=world.acme).values("category").distinct().count() == 6
    contacts = Contact.objects.filter(tenant=world.acme)
    assert contacts.count() == 60  # one per shopper: identify merged their anonymous browsing
    assert (
        Identity.objects.filter(tenant=world.acme, kind="user_id").count()
        == contacts.exclude(user_id="").count()
    )
    stages = set(contacts.values_list("lifecycle_stage", flat=True))
    assert {"awareness", "acquisition", "onboarding", "engagement", "retention"} <= stages
    # Every stage but the first reached by a recorded change (audience/stages.py).
    moved = Event.objects.filter(tenant=world.acme, name=STAGE_CHANGED)
    assert moved.count() == contacts.exclude(lifecycle_stage="awareness").count()
    names = set(Event.objects.values_list("name", flat=True))
    assert {"Product Viewed", "Product Added", "Order Completed", "Products Searched"} <= names
    with django_assert_max_num_queries(1):
        assert seed_shop(tenant=world.acme) == 0  # already there: nothing again


def test_the_demo_shop_recommends_trending_and_bought_together_at_once(world) -> None:
    # Not only after the hourly task's first run: the demo shop's home and product pages show
    # "Picked for you" and "Often bought together" on a fresh `make run`.
    from audience.models import ProductPair, TrendingProduct
    from audience.services import demo_shop_seed

    assert demo_shop_seed(tenant=world.acme) > 0
    assert TrendingProduct.objects.filter(tenant=world.acme).exists()
    assert ProductPair.objects.filter(tenant=world.acme).exists()
    assert not TrendingProduct.objects.filter(tenant=world.globex).exists()


def test_the_shop_seed_dates_every_shopper_in_the_past(world) -> None:
    # Issue 18 item 2 (tests/audience/test_demo_time.py checks the whole `seed_demo`).
    from datetime import timedelta

    from django.db.models import Max, Min
    from django.utils.timezone import now

    started = now()
    seed_shop(tenant=world.acme, contacts=120)
    shop = Event.objects.filter(tenant=world.acme).exclude(name=STAGE_CHANGED)
    span = shop.aggregate(first=Min("occurred_at"), last=Max("occurred_at"))
    assert started - timedelta(days=181) <= span["first"] < span["last"] <= started
    for contact in Contact.objects.filter(tenant=world.acme):
        own = shop.filter(contact=contact).order_by("occurred_at")
        times = list(own.values_list("occurred_at", flat=True))
        # First seen at the first event, last seen at the last one: both before the seeding.
        assert contact.created_at == times[0]
        assert contact.last_seen_at == times[-1] <= started
    # Shoppers lately and long ago; the moves of stage recorded at the seeding, not after it.
    last_seen = Contact.objects.filter(tenant=world.acme).values_list("last_seen_at", flat=True)
    assert None not in last_seen
    assert any(at and started - at < timedelta(days=1) for at in last_seen)
    assert any(at and started - at > timedelta(days=60) for at in last_seen)
    moved = Event.objects.filter(tenant=world.acme, name=STAGE_CHANGED)
    assert moved.aggregate(last=Max("occurred_at"))["last"] <= now()
    assert not Event.objects.filter(tenant=world.globex).exists()
