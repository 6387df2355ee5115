"""Event conditions on the order event read the order ledger, so they outlive the raw events:
after retention removed "Order Completed" events (and their dedupe keys), "did", "did not",
counts in a window, property filters and first/last order times select the same contacts,
compiled for everyone, counted set-wise and evaluated one contact at a time (as a journey
branches). Other events are still read from the events, and go with them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from audience.models import Contact, Event, EventKey, Order
from audience.orders import ORDER_EVENT
from audience.partitions import partitions_ensure, partitions_secure
from audience.retention import retention_apply
from audience.segment_spec import parse_call
from audience.services import calls_record
from segments import registry, rules, services
from segments.compiler import Compiler, segment_contacts, segment_count
from segments.conditions import sql
from segments.models import SegmentMembership
from segments.presets import PRESETS

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
ORDER = "Order Completed"


def track(tenant: Any, who: str, event: str, at: datetime | str, **properties: Any) -> None:
    """An event as ingestion stores it (the order ledger is written with it)."""
    when = at if isinstance(at, str) else at.isoformat()
    message = {
        "type": "track",
        "userId": who,
        "event": event,
        "properties": properties,
        "timestamp": when,
    }
    calls_record(tenant=tenant, calls=[parse_call(message)])


def identify(tenant: Any, who: str) -> None:
    calls_record(tenant=tenant, calls=[parse_call({"type": "identify", "userId": who})])


def retention(tenant: Any, name: str = ORDER, before: datetime | None = None) -> int:
    """What retention does to the tenant's events older than it keeps: they go, with their
    dedupe keys (every one of them called `name`, or those before `before`)."""
    old = Event.objects.filter(tenant=tenant, name=name)
    if before is not None:
        old = old.filter(occurred_at__lt=before)
    EventKey.objects.filter(tenant=tenant, message_id__in=old.values("message_id")).delete()
    deleted, _ = old.delete()
    return deleted


def did(event: str = ORDER, **extra: Any) -> dict[str, Any]:
    return {"type": "event", "event": event, **extra}


def times(operator: str, n: int) -> dict[str, Any]:
    return {"operator": operator, "value": n}


def first_last(which: str, operator: str, value: Any, event: str = ORDER) -> dict[str, Any]:
    return {
        "type": "event_time",
        "event": event,
        "which": which,
        "operator": operator,
        "value": value,
    }


def tree(*conditions: dict[str, Any], match: str = "all") -> dict[str, Any]:
    return rules.validate({"type": "group", "match": match, "children": list(conditions)})


def compiled(tenant: Any, rule_tree: dict[str, Any], now: datetime = NOW) -> set[str]:
    contacts = segment_contacts(tenant=tenant, rules=rule_tree, now=now)
    return set(contacts.values_list("user_id", flat=True))


def evaluated(tenant: Any, rule_tree: dict[str, Any], now: datetime = NOW) -> set[str]:
    return {
        contact.user_id
        for contact in Contact.objects.filter(tenant=tenant)
        if registry.contact_matches(tenant=tenant, rules=rule_tree, contact=contact, now=now)
    }


def counted_every_way(tenant: Any, rule_tree: dict[str, Any]) -> set[int]:
    """segment_count, and (PostgreSQL) each set-wise way of counting the tree it may choose."""
    counts = {segment_count(tenant=tenant, rules=rule_tree, now=NOW)}
    compiler = Compiler(tenant=tenant, now=NOW)
    parts = compiler.intersection_parts(rule_tree)
    if parts is not None and connection.vendor == "postgresql":
        for way in (compiler._intersection_sql(*parts), compiler._pushed_down_sql(*parts)):
            if way is not None:
                with connection.cursor() as cursor:
                    cursor.execute(*way)
                    counts.add(cursor.fetchone()[0])
    return counts


@pytest.fixture
def shop(world: Any) -> Any:
    t = world.acme
    for who in ("ann", "bob", "cyd", "dee", "eve"):
        identify(t, who)
    # ann: three orders (100 on 10 March, 50 with a coupon in January, 30 last June);
    # bob: two in early March (20, then one with a coupon and no total);
    # cyd: one of 5 two years ago; dee and eve never ordered. Everyone but eve browses.
    track(t, "ann", ORDER, "2026-03-10T10:00:00Z", total=100, currency="EUR")
    track(t, "ann", ORDER, "2026-01-15T10:00:00Z", total=50, coupon="WINTER")
    track(t, "ann", ORDER, "2025-06-01T10:00:00Z", total=30)
    track(t, "bob", ORDER, "2026-03-01T10:00:00Z", total=20)
    track(t, "bob", ORDER, "2026-03-02T10:00:00Z", coupon="FREE")
    track(t, "cyd", ORDER, "2024-03-01T10:00:00Z", total=5)
    for who in ("ann", "bob", "cyd", "dee"):
        track(t, who, "Product Viewed", "2026-03-12T10:00:00Z", sku="TENT")
    # Another team's orders never count for acme's contacts of the same user id.
    for n in range(3):
        track(world.globex, "dee", ORDER, f"2026-03-1{n}T10:00:00Z", total=999)
        track(world.globex, "eve", ORDER, f"2026-03-1{n}T10:00:00Z", total=999)
    return t


CONDITIONS = [
    ("did", did(), {"ann", "bob", "cyd"}),
    ("did not", did(did=False), {"dee", "eve"}),
    ("did in a window", did(window={"last_days": 30}), {"ann", "bob"}),
    ("did not in a window", did(did=False, window={"last_days": 365}), {"cyd", "dee", "eve"}),
    ("did in dates", did(window={"after": "2026-01-01", "before": "2026-03-01"}), {"ann"}),
    ("at least twice", did(count=times("at_least", 2)), {"ann", "bob"}),
    (
        "at least twice in a window",
        did(count=times("at_least", 2), window={"last_days": 30}),
        {"bob"},
    ),
    ("at most once", did(count=times("at_most", 1)), {"cyd", "dee", "eve"}),
    (
        "at most once in a window",
        did(count=times("at_most", 1), window={"last_days": 45}),
        {"ann", "cyd", "dee", "eve"},
    ),
    ("exactly three times", did(count=times("exactly", 3)), {"ann"}),
    (
        "exactly none in a window",
        did(count=times("exactly", 0), window={"last_days": 30}),
        {"cyd", "dee", "eve"},
    ),
    (
        "not exactly twice",
        did(did=False, count=times("exactly", 2)),
        {"ann", "cyd", "dee", "eve"},
    ),
    (
        "property: a number",
        did(where=[{"property": "total", "operator": "gt", "value": 40}]),
        {"ann"},
    ),
    (
        "property: set",
        did(where=[{"property": "coupon", "operator": "exists", "value": None}]),
        {"ann", "bob"},
    ),
    (
        "property: text",
        did(where=[{"property": "currency", "operator": "equals", "value": "eur"}]),
        {"ann"},
    ),
    (
        "did not, with a property",
        did(did=False, where=[{"property": "total", "operator": "gte", "value": 20}]),
        {"cyd", "dee", "eve"},
    ),
    (
        "property, count and window",
        did(
            where=[{"property": "total", "operator": "lt", "value": 60}],
            count=times("at_least", 2),
            window={"last_days": 180},
        ),
        set(),
    ),
    (
        "property and count",
        did(
            where=[{"property": "total", "operator": "lt", "value": 60}],
            count=times("at_least", 2),
        ),
        {"ann"},
    ),
    ("first time before", first_last("first", "before", "2025-01-01"), {"cyd"}),
    ("first time in the last days", first_last("first", "within_last_days", 30), {"bob"}),
    ("first time after", first_last("first", "after", "2025-05-31"), {"ann", "bob"}),
    ("last time long ago", first_last("last", "more_than_days_ago", 365), {"cyd"}),
    ("last time after", first_last("last", "after", "2026-03-05"), {"ann"}),
    ("last time before", first_last("last", "before", "2026-03-05"), {"bob", "cyd"}),
]


def test_it_names_the_event_the_ledger_records() -> None:
    assert sql.ORDER_EVENT == ORDER_EVENT == ORDER


@pytest.mark.parametrize(
    ("condition", "expected"),
    [(c, e) for _, c, e in CONDITIONS],
    ids=[name for name, _, _ in CONDITIONS],
)
def test_order_event_conditions_answer_the_same_when_the_order_events_are_gone(
    shop: Any, condition: dict[str, Any], expected: set[str]
) -> None:
    rule_tree = tree(condition)
    assert compiled(shop, rule_tree) == expected
    assert evaluated(shop, rule_tree) == expected

    assert retention(shop) == 6
    assert not Event.objects.filter(tenant=shop, name=ORDER).exists()
    assert (
        not EventKey.objects.filter(tenant=shop)
        .exclude(message_id__in=Event.objects.filter(tenant=shop).values("message_id"))
        .exists()
    )
    assert Order.objects.filter(tenant=shop).count() == 6

    assert compiled(shop, rule_tree) == expected
    assert evaluated(shop, rule_tree) == expected


@pytest.mark.parametrize(
    ("condition", "expected"),
    [(c, e) for _, c, e in CONDITIONS if c["type"] == "event"][::3],
    ids=[name for name, c, _ in CONDITIONS if c["type"] == "event"][::3],
)
def test_they_answer_the_same_when_only_the_old_order_events_are_gone(
    shop: Any, condition: dict[str, Any], expected: set[str]
) -> None:
    # A 1-month retention on 15 March: January's events and older go, March's stay.
    assert retention(shop, before=datetime(2026, 2, 1, tzinfo=UTC)) == 3
    rule_tree = tree(condition)
    assert compiled(shop, rule_tree) == expected
    assert evaluated(shop, rule_tree) == expected


@pytest.mark.parametrize(
    "condition",
    [
        did(count=times("at_least", 2), window={"last_days": 365}),
        did(count=times("at_most", 1)),
        first_last("last", "after", "2026-01-01"),
    ],
    ids=["at-least-twice-in-a-year", "at-most-once", "last-time-after"],
)
def test_counting_set_wise_agrees_before_and_after(shop: Any, condition: dict[str, Any]) -> None:
    # With another event condition and a test on the contact's row: segment_count may take
    # the intersection of the subqueries or push the row test into the order aggregate.
    rule_tree = tree(
        condition,
        did("Product Viewed", window={"last_days": 30}),
        {"type": "attribute", "field": "user_id", "operator": "exists", "value": None},
    )
    expected = compiled(shop, rule_tree)
    assert expected  # a telling tree: someone matches …
    assert expected != {"ann", "bob", "cyd", "dee", "eve"}  # … not everyone
    assert counted_every_way(shop, rule_tree) == {len(expected)}

    retention(shop)

    assert compiled(shop, rule_tree) == expected
    assert counted_every_way(shop, rule_tree) == {len(expected)}


def test_other_events_are_read_from_the_events_and_go_with_them(shop: Any) -> None:
    viewed = tree(did("Product Viewed", window={"last_days": 30}))
    first_view = tree(first_last("first", "after", "2026-03-01", event="Product Viewed"))
    # Case matters in event names, as ingestion stores them: not the order event.
    lower = tree(did("order completed"))
    track(shop, "eve", "order completed", "2026-03-12T10:00:00Z", total=1)
    assert compiled(shop, viewed) == evaluated(shop, viewed) == {"ann", "bob", "cyd", "dee"}
    assert compiled(shop, first_view) == evaluated(shop, first_view) == {"ann", "bob", "cyd", "dee"}
    assert compiled(shop, lower) == evaluated(shop, lower) == {"eve"}
    assert not Order.objects.filter(tenant=shop, contact__user_id="eve").exists()

    retention(shop, "Product Viewed")
    retention(shop, "order completed")

    assert compiled(shop, viewed) == evaluated(shop, viewed) == set()
    assert compiled(shop, first_view) == evaluated(shop, first_view) == set()
    assert compiled(shop, lower) == evaluated(shop, lower) == set()


def test_browsers_not_buyers_leaves_out_old_customers_after_the_nightly_retention(
    world: Any,
) -> None:
    """The preset offers first-order discounts: a customer whose orders are older than the
    team keeps raw events is no browser-not-buyer."""
    partitions_secure()  # as migrate leaves the events table (see tests/audience/test_retention)
    shop = world.acme
    shop.event_retention_months = 1
    shop.save(update_fields=["event_retention_months"])
    now = timezone.now()
    track(shop, "old", ORDER, now - timedelta(days=400), total=80)
    track(shop, "new", ORDER, now - timedelta(days=3), total=20)
    for who in ("old", "new", "browser"):
        track(shop, who, "Product Viewed", now - timedelta(days=1), sku="TENT")
    partitions_ensure(now=now)
    preset = PRESETS["browsers-not-buyers"]
    segment = services.segment_create_from_preset(tenant=shop, key=preset.key)

    def members() -> set[str]:
        return set(
            SegmentMembership.objects.filter(segment=segment).values_list(
                "contact__user_id", flat=True
            )
        )

    assert members() == {"browser"}
    assert evaluated(shop, segment.rules, now) == {"browser"}

    retention_apply(now=now)

    assert not Event.objects.filter(tenant=shop, contact__user_id="old", name=ORDER).exists()
    assert Event.objects.filter(tenant=shop, contact__user_id="old").exists()  # the view
    change = services.segment_membership_refresh(segment=segment, now=now)
    assert not change.entered and not change.exited
    assert members() == {"browser"}
    assert compiled(shop, segment.rules, now) == evaluated(shop, segment.rules, now) == {"browser"}
