"""The compiler against hand-computed answers: every condition kind and every operator, on small
sets of contacts made the way real ones are (Segment-style messages with explicit timestamps),
evaluated at a fixed `now`. Contacts are named by their one identity (user id or anonymous id)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from audience.models import Consent, Contact
from audience.segment_spec import parse_call
from audience.services import calls_record
from segments import rules, services
from segments.compiler import segment_contacts

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)


# --- making contacts ---------------------------------------------------------------------------


def _record(tenant: Any, who: str, message: dict[str, Any]) -> None:
    key = "anonymousId" if who.startswith("anon-") else "userId"
    calls_record(tenant=tenant, calls=[parse_call({**message, key: who})])


def identify(tenant: Any, who: str, at: str = "2026-01-01T09:00:00Z", **traits: Any) -> None:
    _record(tenant, who, {"type": "identify", "traits": traits, "timestamp": at})


def track(tenant: Any, who: str, event: str, at: str, **properties: Any) -> None:
    """`who` is a user id, or an anonymous id when it starts with "anon-"."""
    _record(
        tenant,
        who,
        {"type": "track", "event": event, "properties": properties, "timestamp": at},
    )


def update(tenant: Any, who: str, **fields: Any) -> None:
    """Set what messages cannot (creation time, consent) straight on the row."""
    assert Contact.objects.filter(tenant=tenant, user_id=who).update(**fields) == 1


def everyone(tenant: Any) -> set[str]:
    return set(Contact.objects.filter(tenant=tenant).values_list("identities__value", flat=True))


def group(*children: Any, match: str = "all", negate: bool = False) -> dict[str, Any]:
    return {"type": "group", "match": match, "negate": negate, "children": list(children)}


def members(
    tenant: Any,
    tree: dict[str, Any],
    *,
    now: datetime = NOW,
    scope: list[int] | None = None,
) -> set[str]:
    """Who a tree (a group, or one condition) selects, by identity."""
    if tree["type"] != "group":
        tree = group(tree)
    contacts = segment_contacts(tenant=tenant, rules=rules.validate(tree), now=now, scope=scope)
    return set(contacts.values_list("identities__value", flat=True))


def attribute(field: str, operator: str, value: Any = None) -> dict[str, Any]:
    return {"type": "attribute", "field": field, "operator": operator, "value": value}


def event(name: str = "Order Completed", **extra: Any) -> dict[str, Any]:
    return {"type": "event", "event": name, **extra}


def where(prop: str, operator: str, value: Any = None) -> dict[str, Any]:
    return {"property": prop, "operator": operator, "value": value}


def metric(name: str, operator: str, value: Any, window: Any = None) -> dict[str, Any]:
    return {
        "type": "metric",
        "metric": name,
        "operator": operator,
        "value": value,
        "window": window,
    }


def event_time(which: str, operator: str, value: Any) -> dict[str, Any]:
    return {
        "type": "event_time",
        "event": "Product Viewed",
        "which": which,
        "operator": operator,
        "value": value,
    }


def cases(table: list[tuple[str, dict[str, Any], set[str]]]) -> Any:
    return pytest.mark.parametrize(
        ("node", "expected"),
        [(node, expected) for _, node, expected in table],
        ids=[name for name, _, _ in table],
    )


# --- contact text fields -----------------------------------------------------------------------


@pytest.fixture
def profiles(world: Any) -> Any:
    identify(
        world.acme,
        "ann",
        email="Ann@Example.com",  # ingestion keeps emails in lower case
        firstName="Ann",
        lastName="Lee",
        phone="+49 30 1234",
        locale="de-DE",
        timezone="Europe/Berlin",
    )
    identify(world.acme, "bob", email="bob@shop.test", firstName="bob", lastName="O_Neil")
    identify(world.acme, "cyd", firstName="CYD", locale="en-US")
    identify(world.globex, "globex-ann", email="ann@example.com", firstName="Ann")
    return world.acme


TEXT_CASES = [
    ("email equals, any case", attribute("email", "equals", "ANN@example.COM"), {"ann"}),
    ("email not equals", attribute("email", "not_equals", "ann@example.com"), {"bob", "cyd"}),
    ("email contains", attribute("email", "contains", "EXAMPLE"), {"ann"}),
    ("email not contains", attribute("email", "not_contains", "example"), {"bob", "cyd"}),
    ("email starts with", attribute("email", "starts_with", "Bob@"), {"bob"}),
    ("email exists", attribute("email", "exists"), {"ann", "bob"}),
    ("email not exists", attribute("email", "not_exists"), {"cyd"}),
    (
        "email in list, any case",
        attribute("email", "in_list", ["BOB@shop.test", "nobody@x.y"]),
        {"bob"},
    ),
    ("email not in list", attribute("email", "not_in_list", ["bob@shop.test"]), {"ann", "cyd"}),
    ("first name equals, any case", attribute("first_name", "equals", "cyd"), {"cyd"}),
    (
        "first name in list, any case",
        attribute("first_name", "in_list", ["ANN", "Cyd"]),
        {
            "ann",
            "cyd",
        },
    ),
    ("first name not in list", attribute("first_name", "not_in_list", ["Bob"]), {"ann", "cyd"}),
    ("first name starts with", attribute("first_name", "starts_with", "c"), {"cyd"}),
    ("last name not exists", attribute("last_name", "not_exists"), {"cyd"}),
    ("underscore is no wildcard", attribute("last_name", "contains", "O_N"), {"bob"}),
    ("percent is no wildcard", attribute("last_name", "contains", "%"), set()),
    ("phone exists", attribute("phone", "exists"), {"ann"}),
    ("phone contains", attribute("phone", "contains", "30 12"), {"ann"}),
    ("user id equals", attribute("user_id", "equals", "BOB"), {"bob"}),
    ("locale in list", attribute("locale", "in_list", ["de-de", "fr-FR"]), {"ann"}),
    ("timezone starts with", attribute("timezone", "starts_with", "europe/"), {"ann"}),
    (
        "timezone not equals",
        attribute("timezone", "not_equals", "Europe/Berlin"),
        {
            "bob",
            "cyd",
        },
    ),
]


@cases(TEXT_CASES)
def test_it_tests_contact_text_fields(profiles: Any, node: dict[str, Any], expected: set) -> None:
    assert members(profiles, node) == expected


# --- custom attributes (JSON) ------------------------------------------------------------------


@pytest.fixture
def attributes(world: Any) -> Any:
    t = world.acme
    identify(t, "ann", plan="Gold", score=3, vip=True, ratio=2.5, nickname="A_1")
    identify(t, "bob", plan="silver", score=3.0, vip=False, ratio="2.5")
    identify(t, "cyd", score="3", vip="true", tags=["x", "y"], note=None, profile={"a": 1})
    identify(t, "dee", firstName="Dee")  # no attributes at all
    identify(world.globex, "eve", plan="gold", score=3)
    return t


ATTRIBUTE_CASES = [
    ("text equals, any case", attribute("attributes.plan", "equals", "GOLD"), {"ann"}),
    (
        "text not equals counts a missing key",
        attribute("attributes.plan", "not_equals", "gold"),
        {"bob", "cyd", "dee"},
    ),
    ("text contains", attribute("attributes.plan", "contains", "L"), {"ann", "bob"}),
    (
        "text not contains counts a missing key",
        attribute("attributes.plan", "not_contains", "gold"),
        {"bob", "cyd", "dee"},
    ),
    ("text starts with", attribute("attributes.plan", "starts_with", "SIL"), {"bob"}),
    (
        "text in list, any case",
        attribute("attributes.plan", "in_list", ["gold", "bronze"]),
        {"ann"},
    ),
    (
        "text not in list counts a missing key",
        attribute("attributes.plan", "not_in_list", ["GOLD"]),
        {"bob", "cyd", "dee"},
    ),
    ("key exists", attribute("attributes.plan", "exists"), {"ann", "bob"}),
    ("key not exists", attribute("attributes.plan", "not_exists"), {"cyd", "dee"}),
    ("a null value still exists", attribute("attributes.note", "exists"), {"cyd"}),
    ("underscore is no wildcard", attribute("attributes.nickname", "contains", "a_"), {"ann"}),
    ("number equals, 3 is 3.0", attribute("attributes.score", "equals", 3), {"ann", "bob"}),
    (
        "number not equals: text and missing are not the number",
        attribute("attributes.score", "not_equals", 3),
        {"cyd", "dee"},
    ),
    (
        "text equals reads a number as JSON",
        attribute("attributes.score", "equals", "3"),
        {
            "ann",
            "cyd",
        },
    ),
    (
        "text in list reads a number as JSON",
        attribute("attributes.score", "in_list", ["3"]),
        {
            "ann",
            "cyd",
        },
    ),
    ("number gt", attribute("attributes.score", "gt", 2), {"ann", "bob"}),
    ("number gt, not equal", attribute("attributes.score", "gt", 3), set()),
    ("number gte", attribute("attributes.score", "gte", 3), {"ann", "bob"}),
    ("number lt", attribute("attributes.score", "lt", 3), set()),
    ("number lte", attribute("attributes.score", "lte", 3), {"ann", "bob"}),
    ("number fraction", attribute("attributes.ratio", "gt", 2.4), {"ann"}),  # "2.5" is text
    ("number on text and booleans", attribute("attributes.vip", "gte", 0), set()),
    ("boolean equals true", attribute("attributes.vip", "equals", True), {"ann"}),
    ("boolean equals false", attribute("attributes.vip", "equals", False), {"bob"}),
    (
        "boolean not equals",
        attribute("attributes.vip", "not_equals", True),
        {
            "bob",
            "cyd",
            "dee",
        },
    ),
    (
        "text equals reads true as JSON",
        attribute("attributes.vip", "equals", "TRUE"),
        {
            "ann",
            "cyd",
        },
    ),
    ("a list is no number", attribute("attributes.tags", "lt", 100), set()),
    ("a list is not a boolean", attribute("attributes.tags", "equals", True), set()),
]


@cases(ATTRIBUTE_CASES)
def test_it_tests_custom_attributes(attributes: Any, node: dict[str, Any], expected: set) -> None:
    assert members(attributes, node) == expected


@pytest.mark.parametrize("key", ["plan", "score", "vip", "ratio", "tags", "note", "profile", "x"])
def test_it_never_breaks_on_mixed_attribute_types(attributes: Any, key: str) -> None:
    for operator, value in [
        ("equals", "gold"),
        ("equals", 3),
        ("equals", 2.5),
        ("equals", True),
        ("not_equals", "gold"),
        ("not_equals", 3),
        ("contains", "1"),
        ("not_contains", "x"),
        ("starts_with", "["),
        ("in_list", ["3", "true", "gold"]),
        ("not_in_list", ["3"]),
        ("gt", 0),
        ("gte", -1),
        ("lt", 1e9),
        ("lte", 3),
        ("exists", None),
        ("not_exists", None),
    ]:
        node = attribute(f"attributes.{key}", operator, value)
        matched = members(attributes, node)
        negated = members(attributes, group(node, negate=True))
        assert matched | negated == {"ann", "bob", "cyd", "dee"}, (operator, value)
        assert not matched & negated, (operator, value)


# --- date fields -------------------------------------------------------------------------------


@pytest.fixture
def dated(world: Any) -> Any:
    t = world.acme
    for who in ("old", "mid", "new", "never"):
        identify(t, who)
    update(t, "old", created_at=datetime(2025, 1, 10, 9, tzinfo=UTC))
    update(t, "old", last_seen_at=datetime(2025, 12, 31, 23, 30, tzinfo=UTC))
    update(t, "mid", created_at=datetime(2026, 2, 28, 23, 59, 59, tzinfo=UTC))
    update(t, "mid", last_seen_at=datetime(2026, 3, 8, 12, tzinfo=UTC))  # exactly 7 days ago
    update(t, "new", created_at=datetime(2026, 3, 1, tzinfo=UTC))
    update(t, "new", last_seen_at=datetime(2026, 3, 15, 11, tzinfo=UTC))
    update(t, "never", created_at=datetime(2026, 3, 10, tzinfo=UTC), last_seen_at=None)
    return t


DATE_CASES = [
    ("before a day", attribute("created_at", "before", "2026-03-01"), {"old", "mid"}),
    ("after a day, not on it", attribute("created_at", "after", "2026-02-28"), {"new", "never"}),
    ("within the last days", attribute("created_at", "within_last_days", 14), {"never"}),
    (
        "more than days ago",
        attribute("created_at", "more_than_days_ago", 14),
        {"old", "mid", "new"},
    ),
    ("always created", attribute("created_at", "exists"), {"old", "mid", "new", "never"}),
    ("never not created", attribute("created_at", "not_exists"), set()),
    (
        "within the last days, boundary included",
        attribute("last_seen_at", "within_last_days", 7),
        {"mid", "new"},
    ),
    (
        "within the last 0 days: from now on",
        attribute("last_seen_at", "within_last_days", 0),
        set(),
    ),
    (
        "more than days ago, unseen excluded",
        attribute("last_seen_at", "more_than_days_ago", 7),
        {"old"},
    ),
    ("seen", attribute("last_seen_at", "exists"), {"old", "mid", "new"}),
    ("never seen", attribute("last_seen_at", "not_exists"), {"never"}),
    ("seen before a day", attribute("last_seen_at", "before", "2026-01-01"), {"old"}),
    ("seen after a day", attribute("last_seen_at", "after", "2026-03-14"), {"new"}),
]


@cases(DATE_CASES)
def test_it_tests_date_fields(dated: Any, node: dict[str, Any], expected: set) -> None:
    assert members(dated, node) == expected


def test_it_counts_days_in_the_tenants_time_zone(world: Any) -> None:
    t = world.acme
    t.timezone = "America/New_York"  # UTC-5 in winter
    t.save()
    identify(t, "late")  # 22:00 on 28 February in New York
    update(t, "late", created_at=datetime(2026, 3, 1, 3, tzinfo=UTC))
    assert members(t, attribute("created_at", "before", "2026-03-01")) == {"late"}
    assert members(t, attribute("created_at", "after", "2026-02-28")) == set()
    t.timezone = "UTC"
    t.save()
    assert members(t, attribute("created_at", "before", "2026-03-01")) == set()
    assert members(t, attribute("created_at", "after", "2026-02-28")) == {"late"}


# --- birthdays ---------------------------------------------------------------------------------


@pytest.fixture
def birthdays(world: Any) -> Any:
    t = world.acme
    for who, birthday in [
        ("dec19", "1990-12-19"),
        ("dec20", "--12-20"),
        ("dec31", "1985-12-31"),
        ("jan03", "2001-01-03"),
        ("jan04", "--01-04"),
        ("feb28", "1999-02-28"),
        ("feb29", "2000-02-29"),
        ("mar01", "--03-01"),
    ]:
        identify(t, who, birthday=birthday)
    identify(t, "unknown", firstName="No Birthday")
    return t


YEAR_END = datetime(2026, 12, 20, 12, tzinfo=UTC)
BIRTHDAY_CASES = [
    (
        "across the year end, today included",
        YEAR_END,
        attribute("birthday", "in_next_days", 14),
        {"dec20", "dec31", "jan03"},
    ),
    ("today only", YEAR_END, attribute("birthday", "in_next_days", 0), {"dec20"}),
    ("this month", YEAR_END, attribute("birthday", "this_month"), {"dec19", "dec20", "dec31"}),
    (
        "known",
        YEAR_END,
        attribute("birthday", "exists"),
        {"dec19", "dec20", "dec31", "jan03", "jan04", "feb28", "feb29", "mar01"},
    ),
    ("unknown", YEAR_END, attribute("birthday", "not_exists"), {"unknown"}),
    (
        "a year ahead is everyone's",
        YEAR_END,
        attribute("birthday", "in_next_days", 366),
        {"dec19", "dec20", "dec31", "jan03", "jan04", "feb28", "feb29", "mar01"},
    ),
    (
        "29 February on the 28th in a common year",
        datetime(2027, 2, 20, tzinfo=UTC),
        attribute("birthday", "in_next_days", 8),
        {"feb28", "feb29"},
    ),
    (
        "not before the 28th in a common year",
        datetime(2027, 2, 20, tzinfo=UTC),
        attribute("birthday", "in_next_days", 7),
        set(),
    ),
    (
        "29 February on the 29th in a leap year",
        datetime(2028, 2, 20, tzinfo=UTC),
        attribute("birthday", "in_next_days", 8),
        {"feb28"},
    ),
    (
        "up to the 29th in a leap year",
        datetime(2028, 2, 20, tzinfo=UTC),
        attribute("birthday", "in_next_days", 9),
        {"feb28", "feb29"},
    ),
    (
        "February in a common year",
        datetime(2027, 2, 1, tzinfo=UTC),
        attribute("birthday", "this_month"),
        {"feb28", "feb29"},
    ),
]


@pytest.mark.parametrize(
    ("now", "node", "expected"),
    [case[1:] for case in BIRTHDAY_CASES],
    ids=[case[0] for case in BIRTHDAY_CASES],
)
def test_it_tests_birthdays(birthdays: Any, now: datetime, node: dict, expected: set) -> None:
    assert members(birthdays, node, now=now) == expected


def test_it_takes_today_from_the_tenants_time_zone_for_birthdays(birthdays: Any) -> None:
    birthdays.timezone = "Asia/Tokyo"  # 23:30 UTC on 31 December is 1 January there
    birthdays.save()
    now = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)
    assert members(birthdays, attribute("birthday", "this_month"), now=now) == {"jan03", "jan04"}
    assert members(birthdays, attribute("birthday", "in_next_days", 2), now=now) == {"jan03"}


# --- cart and wishlist -------------------------------------------------------------------------


def test_it_tests_whether_cart_and_wishlist_hold_something(world: Any) -> None:
    t = world.acme
    track(t, "carter", "Product Added", "2026-03-01T10:00:00Z", sku="A", price=10)
    track(t, "buyer", "Product Added", "2026-03-01T10:00:00Z", sku="A")
    track(t, "buyer", "Order Completed", "2026-03-01T11:00:00Z", total=10)  # empties the cart
    track(t, "wisher", "Product Added to Wishlist", "2026-03-02T10:00:00Z", sku="B")
    track(t, "unwisher", "Product Added to Wishlist", "2026-03-02T10:00:00Z", sku="B")
    track(t, "unwisher", "Product Removed from Wishlist", "2026-03-02T11:00:00Z", sku="B")
    identify(t, "nobody")
    all_five = {"carter", "buyer", "wisher", "unwisher", "nobody"}
    assert members(t, attribute("cart", "exists")) == {"carter"}
    assert members(t, attribute("cart", "not_exists")) == all_five - {"carter"}
    assert members(t, attribute("wishlist", "exists")) == {"wisher"}
    assert members(t, attribute("wishlist", "not_exists")) == all_five - {"wisher"}


# --- events ------------------------------------------------------------------------------------


@pytest.fixture
def orders(world: Any) -> Any:
    t = world.acme
    track(t, "ann", "Order Completed", "2026-03-10T10:00:00Z", total=120, currency="EUR")
    track(t, "ann", "Order Completed", "2026-02-01T10:00:00Z", total=40, currency="usd")
    track(t, "ann", "Order Completed", "2025-12-24T10:00:00Z", total=15.5, coupon="XMAS")
    track(t, "bob", "Order Completed", "2026-03-14T10:00:00Z", total=300, currency="EUR")
    track(t, "cyd", "Product Viewed", "2026-03-12T10:00:00Z", sku="A")
    identify(t, "dee")
    for n in range(5):  # globex's Ann orders a lot; acme's rules never see it
        track(world.globex, "ann", "Order Completed", f"2026-03-1{n}T10:00:00Z", total=999)
    return t


EVENT_CASES = [
    ("did", event(), {"ann", "bob"}),
    ("did not", event(did=False), {"cyd", "dee"}),
    ("event names are exact", event("order completed"), set()),
    ("where number gt", event(where=[where("total", "gt", 100)]), {"ann", "bob"}),
    ("where number gte", event(where=[where("total", "gte", 120)]), {"ann", "bob"}),
    ("where number lt", event(where=[where("total", "lt", 40)]), {"ann"}),
    ("where number lte", event(where=[where("total", "lte", 40)]), {"ann"}),
    ("where number equals", event(where=[where("total", "equals", 300)]), {"bob"}),
    ("where number not equals", event(where=[where("total", "not_equals", 300)]), {"ann"}),
    ("where text equals, any case", event(where=[where("currency", "equals", "USD")]), {"ann"}),
    (
        "where text not equals counts a missing property",
        event(where=[where("currency", "not_equals", "eur")]),
        {"ann"},
    ),
    ("where contains", event(where=[where("coupon", "contains", "ma")]), {"ann"}),
    ("where contains a number's digits", event(where=[where("total", "contains", 12)]), {"ann"}),
    ("where exists", event(where=[where("coupon", "exists")]), {"ann"}),
    (
        "where filters all apply to one event",
        event(where=[where("total", "gt", 100), where("currency", "equals", "usd")]),
        set(),
    ),
    (
        "where two filters",
        event(where=[where("total", "gte", 15.5), where("total", "lt", 100)]),
        {"ann"},
    ),
    ("at least 2", event(count={"operator": "at_least", "value": 2}), {"ann"}),
    (
        "at least 0 is everyone",
        event(count={"operator": "at_least", "value": 0}),
        {"ann", "bob", "cyd", "dee"},
    ),
    ("at most 1", event(count={"operator": "at_most", "value": 1}), {"bob", "cyd", "dee"}),
    ("at most 0", event(count={"operator": "at_most", "value": 0}), {"cyd", "dee"}),
    ("exactly 3", event(count={"operator": "exactly", "value": 3}), {"ann"}),
    ("exactly 1", event(count={"operator": "exactly", "value": 1}), {"bob"}),
    ("exactly 0", event(count={"operator": "exactly", "value": 0}), {"cyd", "dee"}),
    (
        "did not at least 2",
        event(did=False, count={"operator": "at_least", "value": 2}),
        {"bob", "cyd", "dee"},
    ),
    (
        "did not at least 0 is no one",
        event(did=False, count={"operator": "at_least", "value": 0}),
        set(),
    ),
    (
        "did not exactly 0",
        event(did=False, count={"operator": "exactly", "value": 0}),
        {"ann", "bob"},
    ),
    ("did not at most 1", event(did=False, count={"operator": "at_most", "value": 1}), {"ann"}),
    (
        "counted with a filter",
        event(where=[where("total", "lt", 100)], count={"operator": "exactly", "value": 2}),
        {"ann"},
    ),
    ("in the last 3 days", event(window={"last_days": 3}), {"bob"}),
    ("in the last 7 days", event(window={"last_days": 7}), {"ann", "bob"}),
    (
        "at least 2 in the last 60 days",
        event(window={"last_days": 60}, count={"operator": "at_least", "value": 2}),
        {"ann"},
    ),
    (
        "from a day (included) to a day (excluded)",
        event(window={"after": "2026-02-01", "before": "2026-03-10"}),
        {"ann"},
    ),
    ("before a day", event(window={"before": "2026-01-01"}), {"ann"}),
    ("from a day", event(window={"after": "2026-03-11"}), {"bob"}),
    ("did not in the last 7 days", event(did=False, window={"last_days": 7}), {"cyd", "dee"}),
    (
        "did not with a filter",
        event(did=False, where=[where("currency", "equals", "USD")]),
        {"bob", "cyd", "dee"},
    ),
    ("another event", event("Product Viewed", where=[where("sku", "equals", "a")]), {"cyd"}),
]


@cases(EVENT_CASES)
def test_it_tests_events(orders: Any, node: dict[str, Any], expected: set) -> None:
    assert members(orders, node) == expected


def test_it_keeps_zero_times_meaningful_inside_groups(orders: Any) -> None:
    anyone = event(count={"operator": "at_least", "value": 0})
    assert members(orders, group(attribute("user_id", "equals", "bob"), anyone, match="any")) == {
        "ann",
        "bob",
        "cyd",
        "dee",
    }
    assert members(orders, group(anyone, negate=True)) == set()


# --- first and last time of an event -----------------------------------------------------------


@pytest.fixture
def views(world: Any) -> Any:
    t = world.acme
    track(t, "ann", "Product Viewed", "2025-06-01T10:00:00Z")
    track(t, "ann", "Product Viewed", "2026-03-14T10:00:00Z")
    track(t, "bob", "Product Viewed", "2026-02-20T10:00:00Z")
    track(t, "cyd", "Product Viewed", "2024-01-01T10:00:00Z")
    track(t, "cyd", "Product Viewed", "2025-01-01T10:00:00Z")
    track(t, "dee", "Order Completed", "2026-03-14T10:00:00Z")
    return t


EVENT_TIME_CASES = [
    ("first before", event_time("first", "before", "2026-01-01"), {"ann", "cyd"}),
    ("first after", event_time("first", "after", "2026-01-01"), {"bob"}),
    ("last before", event_time("last", "before", "2026-01-01"), {"cyd"}),
    ("last after", event_time("last", "after", "2026-03-13"), {"ann"}),
    ("last after, not on the day", event_time("last", "after", "2026-03-14"), set()),
    ("last within", event_time("last", "within_last_days", 30), {"ann", "bob"}),
    ("first within", event_time("first", "within_last_days", 30), {"bob"}),
    ("last more than days ago", event_time("last", "more_than_days_ago", 30), {"cyd"}),
    ("first more than days ago", event_time("first", "more_than_days_ago", 365), {"cyd"}),
    (
        "never viewed: no first time to test",
        event_time("first", "before", "2030-01-01"),
        {"ann", "bob", "cyd"},
    ),
]


@cases(EVENT_TIME_CASES)
def test_it_tests_first_and_last_times(views: Any, node: dict[str, Any], expected: set) -> None:
    assert members(views, node) == expected


def test_it_negates_a_time_test_to_include_who_never_did_it(views: Any) -> None:
    recent = event_time("last", "within_last_days", 30)
    assert members(views, group(recent, negate=True)) == {"cyd", "dee"}


# --- order metrics -----------------------------------------------------------------------------


@pytest.fixture
def spending(world: Any) -> Any:
    t = world.acme
    # Order values: "total", else "revenue", else "value", else 0 (a number, not text).
    track(t, "ann", "Order Completed", "2026-03-10T10:00:00Z", total=100)
    track(t, "ann", "Order Completed", "2026-01-15T10:00:00Z", revenue=50)
    track(t, "ann", "Order Completed", "2025-06-01T10:00:00Z", total="n/a", value=30)
    track(t, "bob", "Order Completed", "2026-03-01T10:00:00Z", total=20)
    track(t, "bob", "Order Completed", "2026-03-02T10:00:00Z", coupon="FREE")
    track(t, "cyd", "Product Viewed", "2026-03-01T10:00:00Z", total=500)
    identify(t, "dee")
    track(world.globex, "ann", "Order Completed", "2026-03-10T10:00:00Z", total=5000)
    return t


# ann: 3 orders, 180 spent, 60 on average, last on 10 March; bob: 2, 20, 10, 2 March.
METRIC_CASES = [
    ("orders gt", metric("orders_count", "gt", 2), {"ann"}),
    ("orders gte", metric("orders_count", "gte", 2), {"ann", "bob"}),
    ("orders lt counts no orders", metric("orders_count", "lt", 1), {"cyd", "dee"}),
    ("orders lte", metric("orders_count", "lte", 2), {"bob", "cyd", "dee"}),
    ("orders equals 0", metric("orders_count", "equals", 0), {"cyd", "dee"}),
    ("orders equals", metric("orders_count", "equals", 2), {"bob"}),
    ("spent gt", metric("total_spent", "gt", 100), {"ann"}),
    ("spent lt counts no orders", metric("total_spent", "lt", 50), {"bob", "cyd", "dee"}),
    ("spent equals", metric("total_spent", "equals", 180), {"ann"}),
    ("spent gte 0 is everyone", metric("total_spent", "gte", 0), {"ann", "bob", "cyd", "dee"}),
    ("spent lte 0", metric("total_spent", "lte", 0), {"cyd", "dee"}),
    ("average gt", metric("average_order_value", "gt", 50), {"ann"}),
    ("average lte: no orders, no average", metric("average_order_value", "lte", 10), {"bob"}),
    ("average lt", metric("average_order_value", "lt", 100), {"ann", "bob"}),
    ("average gte", metric("average_order_value", "gte", 60), {"ann"}),
    ("average equals", metric("average_order_value", "equals", 10), {"bob"}),
    ("last order within", metric("last_order_date", "within_last_days", 10), {"ann"}),
    ("last order more than days ago", metric("last_order_date", "more_than_days_ago", 10), {"bob"}),
    ("last order before", metric("last_order_date", "before", "2026-03-03"), {"bob"}),
    ("last order after", metric("last_order_date", "after", "2026-03-02"), {"ann"}),
    ("orders in a window", metric("orders_count", "gte", 2, {"last_days": 30}), {"bob"}),
    ("spent in a window", metric("total_spent", "gt", 60, {"last_days": 90}), {"ann"}),
    (
        "no orders in a window",
        metric("orders_count", "equals", 0, {"last_days": 7}),
        {"bob", "cyd", "dee"},
    ),
    (
        "average in a window",
        metric("average_order_value", "equals", 75, {"last_days": 90}),
        {"ann"},
    ),
    (
        "last order in dated window",
        metric("last_order_date", "after", "2026-01-01", {"before": "2026-03-01"}),
        {"ann"},
    ),
    (
        "spent since a day counts who has not ordered since",
        metric("total_spent", "lt", 10, {"after": "2026-03-05"}),
        {"bob", "cyd", "dee"},
    ),
]


@cases(METRIC_CASES)
def test_it_tests_order_metrics(spending: Any, node: dict[str, Any], expected: set) -> None:
    assert members(spending, node) == expected


# --- reachability, lifecycle, other segments ---------------------------------------------------


def test_it_tests_reachability(world: Any) -> None:
    # Reachability is messaging's one definition (messaging/reachability.py): an address that is
    # not suppressed, or an active push subscription, and consent that is not revoked.
    from messaging.models import PushSubscription, Suppression

    t = world.acme
    identify(t, "plain", email="plain@x.test")
    identify(t, "revoked", email="revoked@x.test")
    identify(t, "granted", email="granted@x.test")
    identify(t, "bounced", email="Bounced@x.test")
    identify(t, "no-email", firstName="Nomail")
    update(t, "revoked", email_consent=Consent.REVOKED)
    update(t, "granted", email_consent=Consent.GRANTED, push_consent=Consent.GRANTED)
    update(t, "no-email", push_consent=Consent.REVOKED)
    update(t, "bounced", push_consent=Consent.GRANTED)
    Suppression.objects.create(tenant=t, address="bounced@x.test", reason="bounced")
    for who, active in (("granted", True), ("bounced", False), ("no-email", True)):
        PushSubscription.objects.create(
            tenant=t,
            contact=Contact.objects.get(tenant=t, user_id=who),
            endpoint=f"https://push.example/{who}",
            p256dh="k",
            auth="a",
            active=active,
        )
    email, push = (
        {"type": "reachable", "channel": "email"},
        {"type": "reachable", "channel": "push"},
    )
    assert members(t, email) == {"plain", "granted"}
    assert members(t, {**email, "reachable": False}) == {"revoked", "no-email", "bounced"}
    # A subscribed browser is needed (consent alone is not enough), and revoked consent wins.
    assert members(t, push) == {"granted"}
    assert members(t, {**push, "reachable": False}) == {"plain", "revoked", "no-email", "bounced"}


def test_it_tests_lifecycle_stages(world: Any) -> None:
    t = world.acme
    track(t, "anon-visitor", "Product Viewed", "2026-03-01T10:00:00Z")  # awareness, as it starts
    # The stages audience computes from behaviour (audience/stages.py), set here directly: this
    # is about the condition, tests/audience/test_stages.py about the rules.
    for who, stage in (
        ("lead", "acquisition"),
        ("new", "onboarding"),
        ("loyal", "engagement"),
        ("lapsed", "retention"),
        ("fan", "advocacy"),
    ):
        identify(t, who)
        Contact.objects.filter(tenant=t, user_id=who).update(lifecycle_stage=stage)
    stages = {"type": "lifecycle"}
    assert members(t, {**stages, "value": ["onboarding", "engagement"]}) == {"new", "loyal"}
    assert members(t, {**stages, "value": ["awareness"]}) == {"anon-visitor"}
    assert members(t, {**stages, "operator": "not_in", "value": ["awareness"]}) == {
        "lead",
        "new",
        "loyal",
        "lapsed",
        "fan",
    }
    assert members(t, {**stages, "operator": "not_in", "value": ["acquisition", "retention"]}) == {
        "anon-visitor",
        "new",
        "loyal",
        "fan",
    }


def test_it_tests_membership_of_another_segment(orders: Any, world: Any) -> None:
    buyers = services.segment_create(tenant=orders, name="Buyers", rules=group(event()))
    ref = {"type": "segment", "segment": str(buyers.public_id)}
    assert members(orders, ref) == {"ann", "bob"}
    assert members(orders, {**ref, "member": False}) == {"cyd", "dee"}
    # Globex's buyers are members of globex's own segment, never of acme's.
    theirs = services.segment_create(tenant=world.globex, name="Buyers", rules=group(event()))
    assert members(world.globex, {"type": "segment", "segment": str(theirs.public_id)}) == {"ann"}
    assert members(world.globex, ref) == set()


# --- groups ------------------------------------------------------------------------------------


@pytest.fixture
def mixed(orders: Any) -> Any:
    identify(orders, "ann", plan="gold", email="ann@x.test")
    identify(orders, "cyd", plan="gold")
    identify(orders, "dee", email="dee@x.test")
    return orders


def test_it_combines_all_any_and_negated_groups(mixed: Any) -> None:
    gold = attribute("attributes.plan", "equals", "gold")
    buyer = event()
    email = {"type": "reachable", "channel": "email"}
    assert members(mixed, group(gold, buyer)) == {"ann"}
    assert members(mixed, group(gold, buyer, match="any")) == {"ann", "bob", "cyd"}
    assert members(mixed, group(gold, buyer, negate=True)) == {"bob", "cyd", "dee"}
    assert members(mixed, group(gold, buyer, match="any", negate=True)) == {"dee"}
    # (gold or a buyer) and not (reachable by email and a buyer)
    tree = group(group(gold, buyer, match="any"), group(email, buyer, negate=True))
    assert members(mixed, tree) == {"bob", "cyd"}
    # Three levels: any of [dee by email, all of [buyer, not [any of [gold, 2+ orders]]]]
    deep = group(
        group(email, attribute("user_id", "equals", "dee")),
        group(
            buyer,
            group(
                gold,
                event(count={"operator": "at_least", "value": 2}),
                match="any",
                negate=True,
            ),
        ),
        match="any",
    )
    assert members(mixed, deep) == {"dee", "bob"}


COMPLEMENTS = {
    "text attribute": attribute("attributes.plan", "equals", "gold"),
    "number attribute": attribute("attributes.score", "gt", 1),
    "text field": attribute("first_name", "contains", "a"),
    "date field": attribute("last_seen_at", "within_last_days", 5),
    "birthday": attribute("birthday", "in_next_days", 30),
    "event with a filter": event(where=[where("currency", "not_equals", "eur")]),
    "event count": event(count={"operator": "at_most", "value": 1}),
    "event time": event_time("last", "before", "2026-03-01"),
    "average order": metric("average_order_value", "gt", 20),
    "last order": metric("last_order_date", "within_last_days", 30),
}


@pytest.mark.parametrize("node", COMPLEMENTS.values(), ids=COMPLEMENTS.keys())
def test_it_negates_a_group_into_the_exact_complement(mixed: Any, node: dict[str, Any]) -> None:
    matched, negated = members(mixed, node), members(mixed, group(node, negate=True))
    assert matched | negated == everyone(mixed)
    assert not matched & negated


# --- tenants and scope -------------------------------------------------------------------------


def test_it_never_selects_another_tenants_contacts(orders: Any, world: Any) -> None:
    identify(world.globex, "ann", plan="gold")
    many = event(count={"operator": "at_least", "value": 5})
    assert members(orders, many) == set()  # globex's Ann has the 5 orders
    assert members(world.globex, many) == {"ann"}
    assert members(orders, metric("total_spent", "gt", 1000)) == set()
    assert members(orders, attribute("attributes.plan", "exists")) == set()
    for tree in [event(did=False), metric("orders_count", "lt", 1), group(event(), negate=True)]:
        found = segment_contacts(tenant=orders, rules=rules.validate(group(tree)), now=NOW)
        assert set(found.values_list("tenant_id", flat=True)) == {orders.pk}


SCOPED = {
    "did": event(),
    "did not": event(did=False),
    "at most": event(count={"operator": "at_most", "value": 1}),
    "count": metric("orders_count", "lt", 2),
    "first time": event_time("first", "before", "2026-03-11"),
    "negated group": group(event(window={"last_days": 7}), negate=True),
}


@pytest.mark.parametrize("node", SCOPED.values(), ids=SCOPED.keys())
def test_it_narrows_to_a_scope_without_changing_answers(orders: Any, node: dict) -> None:
    full = members(orders, node)
    for names in [{"ann"}, {"bob", "cyd"}, {"dee"}, {"ann", "bob", "cyd", "dee"}]:
        ids = list(
            Contact.objects.filter(tenant=orders, identities__value__in=names).values_list(
                "pk", flat=True
            )
        )
        assert members(orders, node, scope=ids) == full & names
    assert members(orders, node, scope=[]) == set()
