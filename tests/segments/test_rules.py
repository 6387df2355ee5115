"""Rule trees without a database: validation (every bad tree is refused with a message that names
the condition as the builder numbers it), normalisation, summaries, and what the service asks of
a tree (is it time-relative, which segments does it use)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from segments import rules
from segments.rules import RuleError

SEGMENT_ID = "7d444840-9dc0-11d1-b245-5ffdce74fad2"


def group(*children: Any, match: str = "all", negate: bool = False) -> dict[str, Any]:
    return {"type": "group", "match": match, "negate": negate, "children": list(children)}


def attribute(field: str, operator: str, value: Any = None) -> dict[str, Any]:
    return {"type": "attribute", "field": field, "operator": operator, "value": value}


def event(name: str = "Order Completed", **extra: Any) -> dict[str, Any]:
    return {"type": "event", "event": name, **extra}


def metric(name: str, operator: str, value: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "metric", "metric": name, "operator": operator, "value": value, **extra}


def event_time(which: str, operator: str, value: Any) -> dict[str, Any]:
    return {
        "type": "event_time",
        "event": "Signed Up",
        "which": which,
        "operator": operator,
        "value": value,
    }


OK = attribute("email", "exists")
KIND_NAMES = ", ".join(rules.KINDS)


def nested(depth: int) -> dict[str, Any]:
    """`depth` groups inside each other, the innermost holding one condition."""
    tree: dict[str, Any] = OK
    for _ in range(depth):
        tree = group(tree)
    return tree


# (tree, the error message in full). Most cases sit at the first condition ("Condition 1: …");
# a few sit deeper to show the numbering a person sees: child 2 of group 2 is "Condition 2.2".
INVALID: dict[str, tuple[object, str]] = {
    # --- the tree's shape --------------------------------------------------------------------
    "root not an object": ([OK], "must be an object."),
    "root not a group": (OK, "The rules must start with a group (all / any)."),
    "root group empty": (
        group(),
        "an empty group matches nothing useful: add a condition or remove it.",
    ),
    "root without children": ({"type": "group"}, "a group needs a children list."),
    "node not an object": (group(OK, "email"), "Condition 2: must be an object."),
    "nested node not an object": (
        group(OK, group(OK, 42)),
        "Condition 2.2: must be an object.",
    ),
    "nested group empty": (
        group(OK, group()),
        "Condition 2: an empty group matches nothing useful: add a condition or remove it.",
    ),
    "group children not a list": (
        group(OK, {"type": "group", "children": "all"}),
        "Condition 2: a group needs a children list.",
    ),
    "group match unknown": (
        group(group(OK, match="most")),
        "Condition 1: match must be all or any.",
    ),
    "group negate not a boolean": (
        group(group(OK, negate="yes")),
        "Condition 1: negate must be true or false.",
    ),
    "groups nested too deep": (
        group(nested(5)),
        "Condition 1.1.1.1.1: groups nest at most 5 deep.",
    ),
    "too many conditions": (
        group(*[OK] * 51),
        "Condition 51: a segment has at most 50 conditions.",
    ),
    "too many conditions across groups": (
        group(group(*[OK] * 30), group(*[OK] * 30)),
        "Condition 2.21: a segment has at most 50 conditions.",
    ),
    "unknown kind": (
        group(OK, group(OK, {"type": "weather"})),
        f"Condition 2.2: “weather” is not a kind of condition; use one of {KIND_NAMES}.",
    ),
    "kind missing": (
        group({"field": "email"}),
        f"Condition 1: “None” is not a kind of condition; use one of {KIND_NAMES}.",
    ),
    "kind a list": (
        group(OK, {"type": ["attribute"]}),
        f"Condition 2: “['attribute']” is not a kind of condition; use one of {KIND_NAMES}.",
    ),
    # --- attribute ---------------------------------------------------------------------------
    "attribute without field": (
        group({"type": "attribute", "operator": "exists"}),
        "Condition 1: choose a field.",
    ),
    "attribute unknown field": (
        group(attribute("shoe_size", "equals", "42")),
        "Condition 1: “shoe_size” is not a contact field.",
    ),
    "attribute key with __": (
        group(attribute("attributes.plan__tier", "equals", "gold")),
        "Condition 1: “plan__tier” is not an attribute name.",
    ),
    "attribute key with a dot": (
        group(attribute("attributes.plan.tier", "equals", "gold")),
        "Condition 1: “plan.tier” is not an attribute name.",
    ),
    "attribute key empty": (
        group(attribute("attributes.", "exists")),
        "Condition 1: “” is not an attribute name.",
    ),
    "text operator unknown": (
        group(attribute("email", "ends_with", "@x.com")),
        "Condition 1: “ends_with” does not apply to email; use one of contains, equals, exists,"
        " in_list, not_contains, not_equals, not_exists, not_in_list, starts_with.",
    ),
    "number operator on a text field": (
        group(attribute("first_name", "gt", 3)),
        "Condition 1: “gt” does not apply to first_name; use one of contains, equals, exists,"
        " in_list, not_contains, not_equals, not_exists, not_in_list, starts_with.",
    ),
    "text operator on a date field": (
        group(attribute("created_at", "contains", "2026")),
        "Condition 1: “contains” does not apply to created_at; use one of after, before, exists,"
        " more_than_days_ago, not_exists, within_last_days.",
    ),
    "date operator on a birthday": (
        group(attribute("birthday", "before", "2026-01-01")),
        "Condition 1: “before” does not apply to birthday; use one of exists, in_next_days,"
        " not_exists, this_month.",
    ),
    "value operator on the cart": (
        group(attribute("cart", "equals", "sku-1")),
        "Condition 1: “equals” does not apply to cart; use one of exists, not_exists.",
    ),
    "date operator on an attribute": (
        group(attribute("attributes.renewal", "before", "2026-01-01")),
        "Condition 1: “before” does not apply to attributes.renewal; use one of contains,"
        " equals, exists, gt, gte, in_list, lt, lte, not_contains, not_equals, not_exists,"
        " not_in_list, starts_with.",
    ),
    "operator a list": (
        group(attribute("email", ["equals"], "a@b.c")),
        "Condition 1: “['equals']” does not apply to email; use one of contains, equals, exists,"
        " in_list, not_contains, not_equals, not_exists, not_in_list, starts_with.",
    ),
    "text value missing": (
        group(attribute("email", "equals")),
        "Condition 1: value must be text of 1 to 200 characters.",
    ),
    "text value blank": (
        group(attribute("first_name", "contains", "   ")),
        "Condition 1: value must be text of 1 to 200 characters.",
    ),
    "text value too long": (
        group(attribute("last_name", "starts_with", "x" * 201)),
        "Condition 1: value must be text of 1 to 200 characters.",
    ),
    "text value a number": (
        group(attribute("phone", "contains", 30)),
        "Condition 1: value must be text of 1 to 200 characters.",
    ),
    "list value empty": (
        group(attribute("email", "in_list", [])),
        "Condition 1: value must be a list of 1 to 500 items.",
    ),
    "list value not a list": (
        group(attribute("email", "in_list", "a@b.c")),
        "Condition 1: value must be a list of 1 to 500 items.",
    ),
    "list value too long": (
        group(attribute("user_id", "not_in_list", [str(n) for n in range(501)])),
        "Condition 1: value must be a list of 1 to 500 items.",
    ),
    "list item blank": (
        group(attribute("user_id", "in_list", ["u1", " "])),
        "Condition 1: each list item must be text of 1 to 200 characters.",
    ),
    "date value not a date": (
        group(attribute("created_at", "before", "yesterday")),
        "Condition 1: value must be a date like 2026-01-31.",
    ),
    "date value impossible": (
        group(attribute("created_at", "after", "2026-02-30")),
        "Condition 1: value must be a date like 2026-01-31.",
    ),
    "date value missing": (
        group(attribute("last_seen_at", "after")),
        "Condition 1: value must be a date like 2026-01-31.",
    ),
    "days negative": (
        group(attribute("last_seen_at", "within_last_days", -1)),
        "Condition 1: value (days) must be a whole number from 0 to 3650.",
    ),
    "days too many": (
        group(attribute("created_at", "more_than_days_ago", 3651)),
        "Condition 1: value (days) must be a whole number from 0 to 3650.",
    ),
    "days a fraction": (
        group(attribute("birthday", "in_next_days", 7.5)),
        "Condition 1: value (days) must be a whole number from 0 to 3650.",
    ),
    "days as text": (
        group(attribute("birthday", "in_next_days", "7")),
        "Condition 1: value (days) must be a whole number from 0 to 3650.",
    ),
    "days a boolean": (
        group(attribute("created_at", "within_last_days", True)),
        "Condition 1: value (days) must be a whole number from 0 to 3650.",
    ),
    "attribute number as text": (
        group(attribute("attributes.score", "gt", "ten")),
        "Condition 1: value must be a number.",
    ),
    "attribute number a boolean": (
        group(attribute("attributes.score", "lte", False)),
        "Condition 1: value must be a number.",
    ),
    "attribute number not a number": (
        group(attribute("attributes.score", "gt", float("nan"))),
        "Condition 1: value must be a number.",
    ),
    "attribute number infinite (1e400)": (
        group(attribute("attributes.score", "lt", float("inf"))),
        "Condition 1: value must be a number.",
    ),
    "attribute number beyond a float": (
        group(attribute("attributes.score", "gte", 10**400)),
        "Condition 1: value must be a number.",
    ),
    "attribute equals a list": (
        group(attribute("attributes.plan", "equals", ["gold"])),
        "Condition 1: value must be text, a number or true/false.",
    ),
    "attribute equals an object": (
        group(attribute("attributes.plan", "not_equals", {"tier": "gold"})),
        "Condition 1: value must be text, a number or true/false.",
    ),
    "attribute equals empty text": (
        group(attribute("attributes.plan", "equals", "")),
        "Condition 1: value must be text, a number or true/false.",
    ),
    "attribute equals infinity": (
        group(attribute("attributes.score", "equals", float("-inf"))),
        "Condition 1: value must be text, a number or true/false.",
    ),
    # --- event -------------------------------------------------------------------------------
    "event without a name": (
        group({"type": "event"}),
        "Condition 1: event must be text of 1 to 200 characters.",
    ),
    "event name blank": (
        group(event("  ")),
        "Condition 1: event must be text of 1 to 200 characters.",
    ),
    "event did not a boolean": (
        group(event(did="no")),
        "Condition 1: did must be true or false.",
    ),
    "event where not a list": (
        group(event(where={"property": "total"})),
        "Condition 1: where takes up to 5 filters.",
    ),
    "event where too long": (
        group(event(where=[{"property": "total", "operator": "exists"}] * 6)),
        "Condition 1: where takes up to 5 filters.",
    ),
    "event where item not an object": (
        group(event(where=["total > 100"])),
        "Condition 1: each where filter must be an object.",
    ),
    "event where without property": (
        group(event(where=[{"operator": "exists"}])),
        "Condition 1: where.property must be text of 1 to 100 characters.",
    ),
    "event where property too long": (
        group(event(where=[{"property": "p" * 101, "operator": "exists"}])),
        "Condition 1: where.property must be text of 1 to 100 characters.",
    ),
    "event where operator unknown": (
        group(event(where=[{"property": "sku", "operator": "starts_with", "value": "A"}])),
        "Condition 1: where.operator “starts_with” is unknown.",
    ),
    "event where operator a list": (
        group(event(where=[{"property": "sku", "operator": ["equals"], "value": "A"}])),
        "Condition 1: where.operator “['equals']” is unknown.",
    ),
    "event where number as text": (
        group(event(where=[{"property": "total", "operator": "gt", "value": "100"}])),
        "Condition 1: where.value must be a number.",
    ),
    "event where number infinite": (
        group(event(where=[{"property": "total", "operator": "gt", "value": float("inf")}])),
        "Condition 1: where.value must be a number.",
    ),
    "event where value missing": (
        group(event(where=[{"property": "coupon", "operator": "equals"}])),
        "Condition 1: where.value must be text, a number or true/false.",
    ),
    "event where value a list": (
        group(event(where=[{"property": "coupon", "operator": "contains", "value": ["X"]}])),
        "Condition 1: where.value must be text, a number or true/false.",
    ),
    "event where value NaN": (
        group(event(where=[{"property": "total", "operator": "equals", "value": float("nan")}])),
        "Condition 1: where.value must be text, a number or true/false.",
    ),
    "event count not an object": (
        group(event(count="3")),
        "Condition 1: count must be an object.",
    ),
    "event count operator unknown": (
        group(event(count={"operator": "more_than", "value": 3})),
        "Condition 1: count.operator must be at_least, at_most or exactly.",
    ),
    "event count operator a list": (
        group(event(count={"operator": ["at_least"], "value": 3})),
        "Condition 1: count.operator must be at_least, at_most or exactly.",
    ),
    "event count negative": (
        group(event(count={"operator": "at_least", "value": -1})),
        "Condition 1: count.value must be a whole number from 0 to 100000.",
    ),
    "event count huge": (
        group(event(count={"operator": "at_most", "value": 100_001})),
        "Condition 1: count.value must be a whole number from 0 to 100000.",
    ),
    "event count missing value": (
        group(event(count={"operator": "exactly"})),
        "Condition 1: count.value must be a whole number from 0 to 100000.",
    ),
    "event window not an object": (
        group(event(window="last 30 days")),
        "Condition 1: window must be an object.",
    ),
    "event window zero days": (
        group(event(window={"last_days": 0})),
        "Condition 1: window.last_days must be a whole number from 1 to 3650.",
    ),
    "event window too many days": (
        group(event(window={"last_days": 3651})),
        "Condition 1: window.last_days must be a whole number from 1 to 3650.",
    ),
    "event window days and dates": (
        group(event(window={"last_days": 7, "after": "2026-01-01"})),
        "Condition 1: window takes last_days alone.",
    ),
    "event window unknown key": (
        group(event(window={"since": "2026-01-01"})),
        "Condition 1: window takes last_days, or after/before.",
    ),
    "event window bad date": (
        group(event(window={"after": "2026-13-01"})),
        "Condition 1: window.after must be a date like 2026-01-31.",
    ),
    "event window dates reversed": (
        group(event(window={"after": "2026-02-01", "before": "2026-01-01"})),
        "Condition 1: window.after must be before window.before.",
    ),
    "event window dates equal": (
        group(event(window={"after": "2026-02-01", "before": "2026-02-01"})),
        "Condition 1: window.after must be before window.before.",
    ),
    # --- event_time --------------------------------------------------------------------------
    "event_time without event": (
        group({"type": "event_time", "which": "first", "operator": "before", "value": "2026"}),
        "Condition 1: event must be text of 1 to 200 characters.",
    ),
    "event_time which unknown": (
        group(event_time("middle", "before", "2026-01-01")),
        "Condition 1: which must be first or last.",
    ),
    "event_time operator unknown": (
        group(event_time("first", "exists", None)),
        "Condition 1: operator must be one of after, before, more_than_days_ago, within_last_days.",
    ),
    "event_time operator a list": (
        group(event_time("first", ["before"], "2026-01-01")),
        "Condition 1: operator must be one of after, before, more_than_days_ago, within_last_days.",
    ),
    "event_time bad date": (
        group(event_time("last", "after", "01/02/2026")),
        "Condition 1: value must be a date like 2026-01-31.",
    ),
    "event_time days negative": (
        group(event_time("last", "within_last_days", -7)),
        "Condition 1: value (days) must be a whole number from 0 to 3650.",
    ),
    # --- metric ------------------------------------------------------------------------------
    "metric unknown": (
        group(metric("lifetime_value", "gt", 100)),
        "Condition 1: metric must be one of average_order_value, last_order_date, orders_count,"
        " total_spent.",
    ),
    "metric a list": (
        group(metric(["orders_count"], "gt", 1)),
        "Condition 1: metric must be one of average_order_value, last_order_date, orders_count,"
        " total_spent.",
    ),
    "metric date operator on a number": (
        group(metric("orders_count", "before", "2026-01-01")),
        "Condition 1: operator must be one of equals, gt, gte, lt, lte.",
    ),
    "metric number operator on a date": (
        group(metric("last_order_date", "gt", "2026-01-01")),
        "Condition 1: operator must be one of after, before, more_than_days_ago, within_last_days.",
    ),
    "metric number as text": (
        group(metric("total_spent", "gt", "100")),
        "Condition 1: value must be a number.",
    ),
    "metric number missing": (
        group(metric("total_spent", "gt", None)),
        "Condition 1: value must be a number.",
    ),
    "metric number infinite": (
        group(metric("average_order_value", "lt", float("inf"))),
        "Condition 1: value must be a number.",
    ),
    "metric date not a date": (
        group(metric("last_order_date", "before", "last week")),
        "Condition 1: value must be a date like 2026-01-31.",
    ),
    "metric days huge": (
        group(metric("last_order_date", "within_last_days", 10**6)),
        "Condition 1: value (days) must be a whole number from 0 to 3650.",
    ),
    "metric window zero days": (
        group(metric("orders_count", "gte", 2, window={"last_days": 0})),
        "Condition 1: window.last_days must be a whole number from 1 to 3650.",
    ),
    # --- reachable ---------------------------------------------------------------------------
    "reachable channel unknown": (
        group({"type": "reachable", "channel": "sms"}),
        "Condition 1: channel must be email or push.",
    ),
    "reachable not a boolean": (
        group({"type": "reachable", "channel": "email", "reachable": "yes"}),
        "Condition 1: reachable must be true or false.",
    ),
    # --- lifecycle ---------------------------------------------------------------------------
    "lifecycle operator unknown": (
        group({"type": "lifecycle", "operator": "is", "value": ["acquisition"]}),
        "Condition 1: operator must be in or not_in.",
    ),
    "lifecycle empty": (
        group({"type": "lifecycle", "value": []}),
        "Condition 1: value must list stages among awareness, acquisition, onboarding,"
        " engagement, retention, advocacy.",
    ),
    "lifecycle unknown stage": (
        group({"type": "lifecycle", "value": ["engagement", "vip"]}),
        "Condition 1: value must list stages among awareness, acquisition, onboarding,"
        " engagement, retention, advocacy.",
    ),
    "lifecycle not a list": (
        group({"type": "lifecycle", "value": "engagement"}),
        "Condition 1: value must list stages among awareness, acquisition, onboarding,"
        " engagement, retention, advocacy.",
    ),
    "lifecycle stage an object": (
        group({"type": "lifecycle", "value": [{"stage": "acquisition"}]}),
        "Condition 1: value must list stages among awareness, acquisition, onboarding,"
        " engagement, retention, advocacy.",
    ),
    # --- segment -----------------------------------------------------------------------------
    "segment missing": (group({"type": "segment"}), "Condition 1: choose a segment."),
    "segment not an id": (
        group({"type": "segment", "segment": "VIPs"}),
        "Condition 1: choose a segment.",
    ),
    "segment member not a boolean": (
        group({"type": "segment", "segment": SEGMENT_ID, "member": "no"}),
        "Condition 1: member must be true or false.",
    ),
}


@pytest.mark.parametrize(("tree", "message"), INVALID.values(), ids=INVALID.keys())
def test_it_refuses_a_bad_tree_naming_the_condition(tree: object, message: str) -> None:
    with pytest.raises(RuleError) as caught:
        rules.validate(tree)
    assert str(caught.value) == message


def test_it_keeps_the_bad_nodes_path_on_the_error() -> None:
    with pytest.raises(RuleError) as caught:
        rules.validate(group(OK, group(OK, OK, {"type": "reachable", "channel": "fax"})))
    assert caught.value.path == "1.2"
    assert caught.value.message == "channel must be email or push."
    assert rules.display_path("1.2") == "2.3"


def test_it_allows_five_levels_of_groups_and_fifty_conditions() -> None:
    assert rules.validate(nested(5))["type"] == "group"
    assert len(rules.validate(group(*[OK] * 50))["children"]) == 50


def test_it_accepts_an_empty_root_only_when_asked() -> None:
    assert rules.validate({"type": "group", "match": "any", "children": []}, allow_empty=True) == {
        "type": "group",
        "match": "any",
        "negate": False,
        "children": [],
    }
    assert rules.validate({"children": [], "match": "most"}, allow_empty=True) == (
        rules.empty_tree()
    )
    with pytest.raises(RuleError, match="empty group"):
        rules.validate({"type": "group", "children": []})


# --- normalisation -----------------------------------------------------------------------------


def test_it_fills_in_defaults_and_tidies_values() -> None:
    tree = rules.validate(
        {
            "type": "group",
            "children": [
                attribute("email", "equals", "  ann@example.com "),
                attribute("cart", "exists", "ignored"),
                attribute("user_id", "in_list", [" u1", 7]),
                attribute("attributes.score", "gte", 3),
                attribute("attributes.vip", "equals", True),
                attribute("attributes.level", "not_equals", 2),
                attribute("created_at", "before", "20260131"),
                {"type": "event", "event": " Order Completed "},
                {"type": "reachable", "channel": "push"},
                {"type": "lifecycle", "value": ["retention", "engagement", "retention"]},
                {"type": "segment", "segment": SEGMENT_ID.upper()},
                metric("orders_count", "gt", 1, window={}),
            ],
        }
    )
    assert tree["match"] == "all" and tree["negate"] is False
    assert tree["children"] == [
        attribute("email", "equals", "ann@example.com"),
        attribute("cart", "exists", None),
        attribute("user_id", "in_list", ["u1", "7"]),
        attribute("attributes.score", "gte", 3.0),
        attribute("attributes.vip", "equals", True),  # a JSON value keeps its type
        attribute("attributes.level", "not_equals", 2),
        attribute("created_at", "before", "2026-01-31"),
        {
            "type": "event",
            "event": "Order Completed",
            "did": True,
            "where": [],
            "count": {"operator": "at_least", "value": 1},
            "window": None,
        },
        {"type": "reachable", "channel": "push", "reachable": True},
        {"type": "lifecycle", "operator": "in", "value": ["engagement", "retention"]},
        {"type": "segment", "segment": SEGMENT_ID, "member": True},
        {
            "type": "metric",
            "metric": "orders_count",
            "operator": "gt",
            "value": 1.0,
            "window": None,
        },
    ]


def test_it_normalises_event_filters_and_windows() -> None:
    node = rules.validate(
        group(
            event(
                did=False,
                where=[
                    {"property": " total ", "operator": "gt", "value": 100},
                    {"property": "coupon", "operator": "exists", "value": "ignored"},
                    {"property": "currency", "operator": "equals", "value": "EUR"},
                ],
                count={"operator": "exactly", "value": 0},
                window={"after": "2026-01-01", "before": "2026-02-01"},
            )
        )
    )["children"][0]
    assert node["where"] == [
        {"property": "total", "operator": "gt", "value": 100.0},
        {"property": "coupon", "operator": "exists", "value": None},
        {"property": "currency", "operator": "equals", "value": "EUR"},
    ]
    assert node["count"] == {"operator": "exactly", "value": 0}
    assert node["window"] == {"after": "2026-01-01", "before": "2026-02-01"}


def test_it_validates_a_validated_tree_to_itself() -> None:
    tree = rules.validate(
        group(
            attribute("first_name", "in_list", ["Ann", "Bob"]),
            group(
                event(where=[{"property": "total", "operator": "gte", "value": 5}]),
                event_time("last", "within_last_days", 30),
                match="any",
                negate=True,
            ),
            metric("last_order_date", "more_than_days_ago", 90, window={"last_days": 365}),
        )
    )
    assert rules.validate(tree) == tree


# --- describe ----------------------------------------------------------------------------------

DESCRIBED: dict[str, tuple[dict[str, Any], str]] = {
    "text": (attribute("email", "contains", "@shop.test"), "email contains @shop.test"),
    "text not set": (attribute("phone", "not_exists"), "phone is not set"),
    "list of values": (
        attribute("first_name", "in_list", ["Ann", "Bob"]),
        "first name is one of Ann, Bob",
    ),
    "attribute number": (
        attribute("attributes.loyalty_points", "gte", 100),
        "loyalty points ≥ 100",
    ),
    "attribute fraction": (attribute("attributes.score", "lt", 2.5), "score < 2.5"),
    "attribute true": (attribute("attributes.vip", "equals", True), "vip is true"),
    "date": (attribute("created_at", "before", "2026-01-31"), "created at is before 2026-01-31"),
    "days": (
        attribute("last_seen_at", "within_last_days", 7),
        "last seen at is within the last 7 days",
    ),
    "days ago": (
        attribute("created_at", "more_than_days_ago", 30),
        "created at is more than 30 days ago",
    ),
    "birthday soon": (
        attribute("birthday", "in_next_days", 7),
        "birthday is within the next 7 days",
    ),
    "birthday this month": (attribute("birthday", "this_month"), "birthday is this month"),
    "cart": (attribute("cart", "exists"), "has something in the cart"),
    "event": (event(), "did “Order Completed”"),
    "event not done": (
        event(did=False, window={"last_days": 90}),
        "did not do “Order Completed” in the last 90 days",
    ),
    "event in the last day": (
        event("Product Viewed", window={"last_days": 1}),
        "did “Product Viewed” in the last day",
    ),
    "event with filters, count and dates": (
        event(
            where=[
                {"property": "total", "operator": "gt", "value": 100},
                {"property": "coupon", "operator": "exists"},
            ],
            count={"operator": "at_least", "value": 3},
            window={"after": "2026-01-01", "before": "2026-02-01"},
        ),
        "did “Order Completed” where total > 100 and coupon is set at least 3 times"
        " on or after 2026-01-01 and before 2026-02-01",
    ),
    "event exactly": (
        event("Product Viewed", count={"operator": "exactly", "value": 2}),
        "did “Product Viewed” exactly 2 times",
    ),
    "event at most, since a date": (
        event(count={"operator": "at_most", "value": 1}, window={"after": "2026-03-01"}),
        "did “Order Completed” at most once on or after 2026-03-01",
    ),
    "first event": (
        event_time("first", "before", "2025-01-01"),
        "first “Signed Up” is before 2025-01-01",
    ),
    "last event": (
        event_time("last", "more_than_days_ago", 30),
        "last “Signed Up” is more than 30 days ago",
    ),
    "metric": (
        metric("orders_count", "gte", 3, window={"last_days": 365}),
        "orders count ≥ 3 in the last 365 days",
    ),
    "metric money": (metric("total_spent", "gt", 99.5), "total spent > 99.5"),
    "metric date": (
        metric("last_order_date", "within_last_days", 30),
        "last order date is within the last 30 days",
    ),
    "reachable": ({"type": "reachable", "channel": "email"}, "can receive email"),
    "not reachable": (
        {"type": "reachable", "channel": "push", "reachable": False},
        "cannot receive push",
    ),
    "lifecycle": (
        {"type": "lifecycle", "value": ["retention", "engagement"]},
        "lifecycle stage is Engagement or Retention risk",
    ),
    "lifecycle not": (
        {"type": "lifecycle", "operator": "not_in", "value": ["awareness"]},
        "lifecycle stage is not Awareness",
    ),
    "segment": ({"type": "segment", "segment": SEGMENT_ID}, "is in “VIPs”"),
    "not in segment": (
        {"type": "segment", "segment": SEGMENT_ID, "member": False},
        "is not in “VIPs”",
    ),
}


@pytest.mark.parametrize(("node", "sentence"), DESCRIBED.values(), ids=DESCRIBED.keys())
def test_it_describes_each_kind_of_condition(node: dict[str, Any], sentence: str) -> None:
    assert rules.describe(rules.validate(group(node)), {SEGMENT_ID: "VIPs"}) == sentence


def test_it_describes_groups_with_their_nesting() -> None:
    tree = rules.validate(
        group(
            attribute("email", "contains", "@shop.test"),
            group({"type": "reachable", "channel": "email"}, event()),
            match="any",
            negate=True,
        )
    )
    assert rules.describe(tree) == (
        "not (any of: email contains @shop.test; (all of: can receive email; did “Order"
        " Completed”))"
    )


def test_it_names_a_deleted_segment_as_such() -> None:
    tree = rules.validate(group({"type": "segment", "segment": SEGMENT_ID}))
    assert rules.describe(tree) == "is in “a deleted segment”"


# --- what the service asks of a tree ------------------------------------------------------------

TIME_RELATIVE = {
    "rolling event window": event(window={"last_days": 30}),
    "days since a date field": attribute("last_seen_at", "within_last_days", 7),
    "days ago": attribute("created_at", "more_than_days_ago", 30),
    "birthday soon": attribute("birthday", "in_next_days", 7),
    "birthday this month": attribute("birthday", "this_month"),
    "last event days ago": event_time("last", "more_than_days_ago", 30),
    "rolling metric window": metric("orders_count", "gte", 2, window={"last_days": 90}),
    "last order days ago": metric("last_order_date", "within_last_days", 30),
    "another segment": {"type": "segment", "segment": SEGMENT_ID},
}
NOT_TIME_RELATIVE = {
    "event ever": event(),
    "event between dates": event(window={"after": "2026-01-01", "before": "2026-02-01"}),
    "date field before a date": attribute("created_at", "before", "2026-01-01"),
    "first event after a date": event_time("first", "after", "2026-01-01"),
    "metric ever": metric("total_spent", "gt", 100),
    "text": attribute("email", "exists"),
    "birthday known": attribute("birthday", "exists"),
    "reachable": {"type": "reachable", "channel": "email"},
    "lifecycle": {"type": "lifecycle", "value": ["acquisition"]},
}


@pytest.mark.parametrize("node", TIME_RELATIVE.values(), ids=TIME_RELATIVE.keys())
def test_it_knows_when_the_clock_alone_changes_membership(node: dict[str, Any]) -> None:
    assert rules.is_time_relative(rules.validate(group(OK, group(node), match="any")))


@pytest.mark.parametrize("node", NOT_TIME_RELATIVE.values(), ids=NOT_TIME_RELATIVE.keys())
def test_it_knows_when_only_changes_to_contacts_do(node: dict[str, Any]) -> None:
    assert not rules.is_time_relative(rules.validate(group(OK, group(node))))


def test_it_lists_the_segments_a_tree_refers_to_at_any_depth() -> None:
    other = str(uuid.uuid4())
    tree = rules.validate(
        group(
            {"type": "segment", "segment": SEGMENT_ID},
            group(OK, group({"type": "segment", "segment": other, "member": False})),
            {"type": "segment", "segment": SEGMENT_ID},
        )
    )
    assert rules.references(tree) == {SEGMENT_ID, other}
    assert rules.references(rules.validate(group(OK))) == set()
    assert len(list(rules.conditions(tree))) == 4
