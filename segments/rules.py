"""Segment rule trees: their JSON shape, validation with messages that name the bad condition,
and a human-readable summary. Pure functions, no database (except `segment` references, which
the caller checks through `references`).

A tree is a group:

    {"type": "group", "match": "all" | "any", "negate": false, "children": [node, …]}

and each child is a group or a condition. A condition's "type" names its kind: one class per
kind in the registry (segments/registry.py; segments' own in segments/conditions/, "reachable"
from messaging), which validates, describes, compiles and evaluates it. `KINDS` is that
registry by name. This module holds the tree-level checks and words, and the value checks the
kinds share.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Iterator
from datetime import date
from typing import Any

from segments import registry
from segments.registry import RuleError, display_path, require

__all__ = ["KINDS", "RuleError", "describe", "display_path", "references", "validate"]

MAX_DEPTH = 5
MAX_CONDITIONS = 50

# Contact fields a rule may test, with their kind of value.
CONTACT_FIELDS: dict[str, str] = {
    "email": "text",
    "phone": "text",
    "first_name": "text",
    "last_name": "text",
    "user_id": "text",
    "timezone": "text",
    "locale": "text",
    "created_at": "date",
    "last_seen_at": "date",
    "birthday": "birthday",
    "cart": "list",
    "wishlist": "list",
}
TEXT_OPERATORS = {
    "equals",
    "not_equals",
    "contains",
    "not_contains",
    "starts_with",
    "exists",
    "not_exists",
    "in_list",
    "not_in_list",
}
NUMBER_OPERATORS = {"gt", "gte", "lt", "lte"}
DATE_OPERATORS = {
    "before",
    "after",
    "within_last_days",
    "more_than_days_ago",
    "exists",
    "not_exists",
}
BIRTHDAY_OPERATORS = {"in_next_days", "this_month", "exists", "not_exists"}
LIST_OPERATORS = {"exists", "not_exists"}  # a cart or wishlist with something in it
ATTRIBUTE_OPERATORS = TEXT_OPERATORS | NUMBER_OPERATORS | DATE_OPERATORS | BIRTHDAY_OPERATORS
NO_VALUE = {"exists", "not_exists", "this_month"}
PROPERTY_OPERATORS = {"equals", "not_equals", "contains", "gt", "gte", "lt", "lte", "exists"}
COUNT_OPERATORS = {"at_least", "at_most", "exactly"}
METRICS = {"orders_count", "total_spent", "average_order_value", "last_order_date"}
ATTRIBUTE_KEY_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_\- ]{0,99}$")

OPERATOR_WORDS = {
    "equals": "is",
    "not_equals": "is not",
    "contains": "contains",
    "not_contains": "does not contain",
    "starts_with": "starts with",
    "exists": "is set",
    "not_exists": "is not set",
    "in_list": "is one of",
    "not_in_list": "is none of",
    "gt": ">",
    "gte": "≥",
    "lt": "<",
    "lte": "≤",
    "before": "is before",
    "after": "is after",
    "within_last_days": "is within the last",
    "more_than_days_ago": "is more than",
    "in_next_days": "is within the next",
    "this_month": "is this month",
}


def _child(path: str, index: int) -> str:
    return f"{path}.{index}" if path else str(index)


def whole(value: object, name: str, path: str, *, low: int = 0, high: int = 100_000) -> int:
    ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
    require(ok, f"{name} must be a whole number from {low} to {high}.", path)
    return int(value)  # type: ignore[call-overload]  # require raised unless it is an int


def among(value: object, options: Collection[str]) -> bool:
    """`value in options` for any JSON value: a list or an object is never among them (and
    would not be hashable for a set)."""
    return isinstance(value, str) and value in options


def scalar(value: object) -> bool:
    """Text, a number or true/false, as a rule compares with. Not NaN or infinity (1e400 reads
    as infinity, which no JSON column stores), nor an integer too big for a float."""
    if isinstance(value, (str, bool)):
        return value != ""
    if isinstance(value, (int, float)):
        try:
            return math.isfinite(value)
        except OverflowError:
            return False
    return False


def number(value: object, name: str, path: str) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and scalar(value)
    require(ok, f"{name} must be a number.", path)
    return float(value)  # type: ignore[arg-type]


def _date(value: object, name: str, path: str) -> date:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise RuleError(f"{name} must be a date like 2026-01-31.", path=path) from None


def text(value: object, name: str, path: str, *, max_length: int = 200) -> str:
    ok = isinstance(value, str) and 0 < len(value.strip()) <= max_length
    require(ok, f"{name} must be text of 1 to {max_length} characters.", path)
    return str(value).strip()


def window(raw: object, path: str) -> dict[str, Any] | None:
    if raw in (None, {}):
        return None
    require(isinstance(raw, dict), "window must be an object.", path)
    assert isinstance(raw, dict)
    if "last_days" in raw:
        require(set(raw) == {"last_days"}, "window takes last_days alone.", path)
        return {"last_days": whole(raw["last_days"], "window.last_days", path, low=1, high=3650)}
    require(
        set(raw) <= {"after", "before"} and bool(raw),
        "window takes last_days, or after/before.",
        path,
    )
    dates = {key: _date(raw[key], f"window.{key}", path).isoformat() for key in raw}
    if "after" in dates and "before" in dates:
        require(
            dates["after"] < dates["before"], "window.after must be before window.before.", path
        )
    return dates


def shown(value: object) -> str:
    """A value as a person reads it: 100 rather than 100.0, true rather than True."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def window_words(window: dict[str, Any] | None) -> str:
    if not window:
        return ""
    if "last_days" in window:
        days = window["last_days"]
        return " in the last day" if days == 1 else f" in the last {days} days"
    # A window includes its `after` day, unlike the attribute test "is after".
    parts = []
    if "after" in window:
        parts.append(f"on or after {window['after']}")
    if "before" in window:
        parts.append(f"before {window['before']}")
    return " " + " and ".join(parts)


def _days(n: int) -> str:
    return "1 day" if n == 1 else f"{n} days"


def check_value(field_kind: str, operator: str, value: object, path: str) -> object:
    if operator in NO_VALUE:
        return None
    if operator in ("in_list", "not_in_list"):
        ok = isinstance(value, list) and 0 < len(value) <= 500
        require(ok, "value must be a list of 1 to 500 items.", path)
        assert isinstance(value, list)
        return [text(str(v), "each list item", path) for v in value]
    if operator in ("within_last_days", "more_than_days_ago", "in_next_days"):
        return whole(value, "value (days)", path, low=0, high=3650)
    if operator in ("before", "after"):
        return _date(value, "value", path).isoformat()
    if operator in NUMBER_OPERATORS:
        if field_kind == "date":
            return _date(value, "value", path).isoformat()
        return number(value, "value", path)
    # equals / not_equals / contains / not_contains / starts_with
    if field_kind == "json" and operator in ("equals", "not_equals"):
        ok = scalar(value)
        require(ok, "value must be text, a number or true/false.", path)
        return value
    return text(value, "value", path)


def comparison_words(subject: str, operator: str, value: Any) -> str:
    """“<subject> <operator in words> <value>” for a profile field (“attributes.<key>” reads
    as its key), an event's first/last time or an order metric."""
    field = subject.removeprefix("attributes.").replace("_", " ")
    words = OPERATOR_WORDS[operator]
    if operator in ("within_last_days", "in_next_days"):
        return f"{field} {words} {_days(value)}"
    if operator == "more_than_days_ago":
        return f"{field} {words} {_days(value)} ago"
    if subject in ("cart", "wishlist"):
        has = "has" if operator == "exists" else "has nothing in"
        return f"{has} something in the {field}" if has == "has" else f"{has} the {field}"
    if value is None:
        return f"{field} {words}"
    if isinstance(value, list):
        value = ", ".join(value)
    return f"{field} {words} {shown(value)}"


RFM_DIMENSIONS = ("recency", "frequency", "monetary")

# The registered condition kinds by name, in builder order (live: kinds registered later show).
KINDS = registry.KindView()


def validate(tree: object, *, allow_empty: bool = False) -> dict[str, Any]:
    """The normalised tree, or RuleError naming the first bad node. `allow_empty` accepts a root
    group without conditions (everyone), as the builder shows before the first condition."""
    if allow_empty and isinstance(tree, dict) and tree.get("children") == []:
        return {
            **empty_tree(),
            "match": tree.get("match", "all") if tree.get("match") in ("all", "any") else "all",
        }
    count = [0]
    return _validate_node(tree, "", 0, count, root=True)


def _validate_node(
    raw: object, path: str, depth: int, count: list[int], *, root: bool = False
) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise RuleError("must be an object.", path=path)
    kind = raw.get("type")
    if root and kind != "group":
        raise RuleError("The rules must start with a group (all / any).")
    if kind == "group":
        require(depth < MAX_DEPTH, f"groups nest at most {MAX_DEPTH} deep.", path)
        match = raw.get("match", "all")
        require(match in ("all", "any"), "match must be all or any.", path)
        negate = raw.get("negate", False)
        require(isinstance(negate, bool), "negate must be true or false.", path)
        children = raw.get("children")
        require(isinstance(children, list), "a group needs a children list.", path)
        assert isinstance(children, list)
        require(
            bool(children),
            "an empty group matches nothing useful: add a condition or remove it.",
            path,
        )
        return {
            "type": "group",
            "match": match,
            "negate": negate,
            "children": [
                _validate_node(child, _child(path, i), depth + 1, count)
                for i, child in enumerate(children)
            ],
        }
    if not among(kind, KINDS):
        raise RuleError(
            f"“{kind}” is not a kind of condition; use one of {', '.join(KINDS)}.", path=path
        )
    count[0] += 1
    require(count[0] <= MAX_CONDITIONS, f"a segment has at most {MAX_CONDITIONS} conditions.", path)
    return registry.get(kind).validate(raw, path)


def conditions(tree: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every condition of a (validated) tree."""
    if tree["type"] == "group":
        for child in tree["children"]:
            yield from conditions(child)
    else:
        yield tree


def references(tree: dict[str, Any]) -> set[str]:
    """Public ids of the segments a tree refers to."""
    return {ref for c in conditions(tree) for ref in KINDS[c["type"]].references(c)}


def is_time_relative(tree: dict[str, Any]) -> bool:
    """Whether membership can change with the clock alone (so a scheduled refresh is needed)."""
    return any(KINDS[c["type"]].time_relative(c) for c in conditions(tree))


def describe(tree: dict[str, Any], segment_names: dict[str, str] | None = None) -> str:
    """A sentence a marketer can read back: 'all of: did “Order Completed” …; any of: …'."""
    names = segment_names or {}
    if tree["type"] != "group":
        return registry.get(tree["type"]).describe(tree, names)
    parts = [describe(child, names) for child in tree["children"]]
    joined = (
        parts[0]
        if len(parts) == 1
        else f"{'all' if tree['match'] == 'all' else 'any'} of: "
        + "; ".join(f"({p})" if " of: " in p else p for p in parts)
    )
    return f"not ({joined})" if tree["negate"] else joined


def empty_tree() -> dict[str, Any]:
    return {"type": "group", "match": "all", "negate": False, "children": []}
