"""Order metrics and RFM groups read the order ledger, so they outlive the raw events: after
retention removed every "Order Completed" event (and its dedupe key), the same contacts match
the same conditions, windows included, compiled for everyone and evaluated one contact at a
time, and a segment's stored membership loses no one at its next refresh."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from audience.models import Contact, Event, EventKey, Order
from audience.segment_spec import parse_call
from audience.services import calls_record
from segments import registry, rules, services
from segments.compiler import segment_contacts
from segments.models import SegmentMembership

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)


def track(tenant: Any, who: str, event: str, at: str, **properties: Any) -> None:
    message = {
        "type": "track",
        "userId": who,
        "event": event,
        "properties": properties,
        "timestamp": at,
    }
    calls_record(tenant=tenant, calls=[parse_call(message)])


def retention(tenant: Any) -> None:
    """What retention does to events older than the tenant keeps: they go, with their keys.
    Here every order event goes (the other events stay, so "did" conditions still see them)."""
    orders = Event.objects.filter(tenant=tenant, name="Order Completed")
    EventKey.objects.filter(tenant=tenant, message_id__in=orders.values("message_id")).delete()
    orders.delete()


def metric(name: str, operator: str, value: Any, window: Any = None) -> dict[str, Any]:
    return {
        "type": "metric",
        "metric": name,
        "operator": operator,
        "value": value,
        "window": window,
    }


def rfm(**quintiles: list[int]) -> dict[str, Any]:
    return {"type": "rfm", **quintiles}


def tree(condition: dict[str, Any]) -> dict[str, Any]:
    return rules.validate({"type": "group", "match": "all", "children": [condition]})


def compiled(tenant: Any, condition: dict[str, Any]) -> set[str]:
    contacts = segment_contacts(tenant=tenant, rules=tree(condition), now=NOW)
    return set(contacts.values_list("user_id", flat=True))


def evaluated(tenant: Any, condition: dict[str, Any]) -> set[str]:
    rule_tree = tree(condition)
    return {
        contact.user_id
        for contact in Contact.objects.filter(tenant=tenant)
        if registry.contact_matches(tenant=tenant, rules=rule_tree, contact=contact, now=NOW)
    }


@pytest.fixture
def shop(world: Any) -> Any:
    t = world.acme
    # ann: 3 orders, 180 spent, 60 on average, last on 10 March; bob: 2, 20, 10, 2 March;
    # cyd: 1 order of 5 two years ago; dee never ordered.
    track(t, "ann", "Order Completed", "2026-03-10T10:00:00Z", total=100)
    track(t, "ann", "Order Completed", "2026-01-15T10:00:00Z", revenue=50)
    track(t, "ann", "Order Completed", "2025-06-01T10:00:00Z", total="n/a", value=30)
    track(t, "bob", "Order Completed", "2026-03-01T10:00:00Z", total=20)
    track(t, "bob", "Order Completed", "2026-03-02T10:00:00Z", coupon="FREE")
    track(t, "cyd", "Order Completed", "2024-03-01T10:00:00Z", total=5)
    track(t, "dee", "Product Viewed", "2026-03-01T10:00:00Z", total=500)
    track(world.globex, "ann", "Order Completed", "2026-03-10T10:00:00Z", total=5000)
    return t


CONDITIONS = [
    ("orders count", metric("orders_count", "gte", 2), {"ann", "bob"}),
    ("no orders", metric("orders_count", "equals", 0), {"dee"}),
    ("total spent", metric("total_spent", "gt", 100), {"ann"}),
    ("spent little or nothing", metric("total_spent", "lt", 25), {"bob", "cyd", "dee"}),
    ("average", metric("average_order_value", "equals", 10), {"bob"}),
    ("last order", metric("last_order_date", "before", "2026-03-03"), {"bob", "cyd"}),
    ("last order long ago", metric("last_order_date", "more_than_days_ago", 365), {"cyd"}),
    ("orders in a window", metric("orders_count", "gte", 2, {"last_days": 30}), {"bob"}),
    ("spent in a window", metric("total_spent", "gt", 60, {"last_days": 90}), {"ann"}),
    (
        "dated window",
        metric("last_order_date", "after", "2026-01-01", {"before": "2026-03-01"}),
        {"ann"},
    ),
    ("rfm recency", rfm(recency=[3]), {"ann"}),
    ("rfm frequency", rfm(frequency=[1]), {"cyd"}),
    ("rfm monetary", rfm(monetary=[2]), {"bob"}),
]


@pytest.mark.parametrize(
    ("condition", "expected"),
    [(c, e) for _, c, e in CONDITIONS],
    ids=[name for name, _, _ in CONDITIONS],
)
def test_it_keeps_order_metrics_when_the_order_events_are_gone(
    shop: Any, condition: dict[str, Any], expected: set[str]
) -> None:
    assert compiled(shop, condition) == expected
    assert evaluated(shop, condition) == expected

    retention(shop)
    assert not Event.objects.filter(tenant=shop, name="Order Completed").exists()
    assert Order.objects.filter(tenant=shop).count() == 6

    assert compiled(shop, condition) == expected
    assert evaluated(shop, condition) == expected


def test_it_keeps_a_segments_members_through_retention(shop: Any) -> None:
    big_spenders = services.segment_create(
        tenant=shop,
        name="Customers",
        rules={
            "type": "group",
            "match": "any",
            "children": [metric("total_spent", "gt", 10), rfm(frequency=[1, 2, 3, 4, 5])],
        },
    )
    members = set(
        SegmentMembership.objects.filter(segment=big_spenders).values_list(
            "contact__user_id", flat=True
        )
    )
    assert members == {"ann", "bob", "cyd"}

    retention(shop)
    change = services.segment_membership_refresh(segment=big_spenders)

    assert not change.exited and not change.entered
    assert (
        set(
            SegmentMembership.objects.filter(segment=big_spenders).values_list(
                "contact__user_id", flat=True
            )
        )
        == members
    )
