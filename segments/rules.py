"""Segment rule trees: their JSON shape, validation with messages that name the bad condition,
and a human-readable summary. Pure functions, no database (except `segment` references, which
the caller checks through `references`).

A tree is a group:

    {"type": "group", "match": "all" | "any", "negate": false, "children": [node, …]}

and each child is a group or a condition. Condition kinds live in `KINDS` (a registry: kind →
class with `validate()` and `describe()`); the compiler (`segments/compiler.py`) has the matching
SQL for each kind.

    attribute   {"field": "email" | "first_name" | … | "attributes.<key>",
                 "operator": see ATTRIBUTE_OPERATORS, "value": …}
    event       {"event": "Order Completed", "did": true,
                 "where": [{"property": "total", "operator": "gt", "value": 100}],
                 "count": {"operator": "at_least" | "at_most" | "exactly", "value": 1},
                 "window": {"last_days": 30} | {"after": "2026-01-01", "before": "2026-02-01"}}
    event_time  {"event": "…", "which": "first" | "last",
                 "operator": "before" | "after" | "within_last_days" | "more_than_days_ago",
                 "value": "2026-01-01" | 30}
    metric      {"metric": "orders_count" | "total_spent" | "average_order_value"
                           | "last_order_date",
                 "operator": "gt" | "gte" | "lt" | "lte" | "equals"   (numbers)
                           | "within_last_days" | "more_than_days_ago" (last_order_date),
                 "value": …, "window": {"last_days": 365} (optional)}
    reachable   {"channel": "email" | "push", "reachable": true}
    lifecycle   {"operator": "in" | "not_in", "value": ["customer", …]}
    segment     {"segment": "<segment public id>", "member": true}
    rfm         {"recency": [4, 5], "frequency": [1, 2, 3, 4, 5], "monetary": [5]}
                (quintiles 1-5 of the tenant's customers, 5 = best: the most recent last
                order, the most orders, the most spent; any of the three may be left out, not
                all; contacts without orders are in no quintile)
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any, ClassVar

from audience.models import LifecycleStage

MAX_DEPTH = 5
MAX_CONDITIONS = 50
ORDER_EVENT = "Order Completed"

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


class RuleError(ValueError):
    """A rule tree that cannot be used. `path` locates the node ("1.0" = second child's first)."""

    def __init__(self, message: str, *, path: str = "") -> None:
        where = f"Condition {display_path(path)}: " if path else ""
        super().__init__(f"{where}{message}")
        self.message = message
        self.path = path


def display_path(path: str) -> str:
    """'0.2' → '1.3': the numbering a person sees in the builder."""
    return ".".join(str(int(part) + 1) for part in path.split(".") if part != "")


def _child(path: str, index: int) -> str:
    return f"{path}.{index}" if path else str(index)


def _require(condition: bool, message: str, path: str) -> None:
    if not condition:
        raise RuleError(message, path=path)


def _int(value: object, name: str, path: str, *, low: int = 0, high: int = 100_000) -> int:
    ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
    _require(ok, f"{name} must be a whole number from {low} to {high}.", path)
    return int(value)  # type: ignore[call-overload]  # _require raised unless it is an int


def _among(value: object, options: Collection[str]) -> bool:
    """`value in options` for any JSON value: a list or an object is never among them (and
    would not be hashable for a set)."""
    return isinstance(value, str) and value in options


def _scalar(value: object) -> bool:
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


def _number(value: object, name: str, path: str) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and _scalar(value)
    _require(ok, f"{name} must be a number.", path)
    return float(value)  # type: ignore[arg-type]


def _date(value: object, name: str, path: str) -> date:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise RuleError(f"{name} must be a date like 2026-01-31.", path=path) from None


def _text(value: object, name: str, path: str, *, max_length: int = 200) -> str:
    ok = isinstance(value, str) and 0 < len(value.strip()) <= max_length
    _require(ok, f"{name} must be text of 1 to {max_length} characters.", path)
    return str(value).strip()


def _window(raw: object, path: str) -> dict[str, Any] | None:
    if raw in (None, {}):
        return None
    _require(isinstance(raw, dict), "window must be an object.", path)
    assert isinstance(raw, dict)
    if "last_days" in raw:
        _require(set(raw) == {"last_days"}, "window takes last_days alone.", path)
        return {"last_days": _int(raw["last_days"], "window.last_days", path, low=1, high=3650)}
    _require(
        set(raw) <= {"after", "before"} and bool(raw),
        "window takes last_days, or after/before.",
        path,
    )
    window = {key: _date(raw[key], f"window.{key}", path).isoformat() for key in raw}
    if "after" in window and "before" in window:
        _require(
            window["after"] < window["before"], "window.after must be before window.before.", path
        )
    return window


def _shown(value: object) -> str:
    """A value as a person reads it: 100 rather than 100.0, true rather than True."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _window_words(window: dict[str, Any] | None) -> str:
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


@dataclass(frozen=True)
class Kind:
    """A condition kind: `validate` returns the normalised condition (raising RuleError), and
    `describe` a sentence fragment for the summary."""

    name: ClassVar[str]
    label: ClassVar[str]

    @staticmethod
    def validate(raw: dict[str, Any], path: str) -> dict[str, Any]:
        raise NotImplementedError

    @staticmethod
    def describe(node: dict[str, Any], segment_names: dict[str, str]) -> str:
        raise NotImplementedError


def _check_value(field_kind: str, operator: str, value: object, path: str) -> object:
    if operator in NO_VALUE:
        return None
    if operator in ("in_list", "not_in_list"):
        ok = isinstance(value, list) and 0 < len(value) <= 500
        _require(ok, "value must be a list of 1 to 500 items.", path)
        assert isinstance(value, list)
        return [_text(str(v), "each list item", path) for v in value]
    if operator in ("within_last_days", "more_than_days_ago", "in_next_days"):
        return _int(value, "value (days)", path, low=0, high=3650)
    if operator in ("before", "after"):
        return _date(value, "value", path).isoformat()
    if operator in NUMBER_OPERATORS:
        if field_kind == "date":
            return _date(value, "value", path).isoformat()
        return _number(value, "value", path)
    # equals / not_equals / contains / not_contains / starts_with
    if field_kind == "json" and operator in ("equals", "not_equals"):
        ok = _scalar(value)
        _require(ok, "value must be text, a number or true/false.", path)
        return value
    return _text(value, "value", path)


class Attribute(Kind):
    name = "attribute"
    label = "Profile field"

    @staticmethod
    def validate(raw: dict[str, Any], path: str) -> dict[str, Any]:
        field = raw.get("field")
        _require(isinstance(field, str) and field != "", "choose a field.", path)
        assert isinstance(field, str)
        if field.startswith("attributes."):
            key = field.removeprefix("attributes.")
            ok = bool(ATTRIBUTE_KEY_RE.match(key)) and "__" not in key
            _require(ok, f"“{key[:40]}” is not an attribute name.", path)
            field_kind = "json"
            allowed = TEXT_OPERATORS | NUMBER_OPERATORS
        else:
            _require(field in CONTACT_FIELDS, f"“{field[:40]}” is not a contact field.", path)
            field_kind = CONTACT_FIELDS[field]
            allowed = {
                "text": TEXT_OPERATORS,
                "date": DATE_OPERATORS,
                "birthday": BIRTHDAY_OPERATORS,
                "list": LIST_OPERATORS,
            }[field_kind]
        operator = raw.get("operator")
        _require(
            _among(operator, allowed),
            f"“{operator}” does not apply to {field}; use one of {', '.join(sorted(allowed))}.",
            path,
        )
        assert isinstance(operator, str)
        value = _check_value(field_kind, operator, raw.get("value"), path)
        return {"type": "attribute", "field": field, "operator": operator, "value": value}

    @staticmethod
    def describe(node: dict[str, Any], segment_names: dict[str, str]) -> str:
        field = node["field"].removeprefix("attributes.").replace("_", " ")
        words = OPERATOR_WORDS[node["operator"]]
        value = node["value"]
        if node["operator"] in ("within_last_days", "in_next_days"):
            return f"{field} {words} {_days(value)}"
        if node["operator"] == "more_than_days_ago":
            return f"{field} {words} {_days(value)} ago"
        if node["field"] in ("cart", "wishlist"):
            has = "has" if node["operator"] == "exists" else "has nothing in"
            return f"{has} something in the {field}" if has == "has" else f"{has} the {field}"
        if value is None:
            return f"{field} {words}"
        if isinstance(value, list):
            value = ", ".join(value)
        return f"{field} {words} {_shown(value)}"


class EventCondition(Kind):
    name = "event"
    label = "Did an event"

    @staticmethod
    def validate(raw: dict[str, Any], path: str) -> dict[str, Any]:
        event = _text(raw.get("event"), "event", path)
        did = raw.get("did", True)
        _require(isinstance(did, bool), "did must be true or false.", path)
        where = []
        raw_where = raw.get("where") or []
        _require(
            isinstance(raw_where, list) and len(raw_where) <= 5,
            "where takes up to 5 filters.",
            path,
        )
        for item in raw_where:
            _require(isinstance(item, dict), "each where filter must be an object.", path)
            prop = _text(item.get("property"), "where.property", path, max_length=100)
            op = item.get("operator")
            _require(_among(op, PROPERTY_OPERATORS), f"where.operator “{op}” is unknown.", path)
            value = None
            if op in NUMBER_OPERATORS:
                value = _number(item.get("value"), "where.value", path)
            elif op != "exists":
                v = item.get("value")
                ok = _scalar(v)
                _require(ok, "where.value must be text, a number or true/false.", path)
                value = v
            where.append({"property": prop, "operator": op, "value": value})
        count = raw.get("count") or {"operator": "at_least", "value": 1}
        _require(isinstance(count, dict), "count must be an object.", path)
        _require(
            _among(count.get("operator"), COUNT_OPERATORS),
            "count.operator must be at_least, at_most or exactly.",
            path,
        )
        count_value = _int(count.get("value"), "count.value", path, low=0, high=100_000)
        return {
            "type": "event",
            "event": event,
            "did": did,
            "where": where,
            "count": {"operator": count["operator"], "value": count_value},
            "window": _window(raw.get("window"), path),
        }

    @staticmethod
    def describe(node: dict[str, Any], segment_names: dict[str, str]) -> str:
        count = node["count"]
        times = {"at_least": "at least", "at_most": "at most", "exactly": "exactly"}[
            count["operator"]
        ]
        filters = " and ".join(
            f"{w['property']} {OPERATOR_WORDS[w['operator']]}"
            + ("" if w["value"] is None else f" {_shown(w['value'])}")
            for w in node["where"]
        )
        body = f"“{node['event']}”" + (f" where {filters}" if filters else "")
        if not node["did"]:
            return f"did not do {body}{_window_words(node['window'])}"
        if count == {"operator": "at_least", "value": 1}:
            return f"did {body}{_window_words(node['window'])}"
        n = count["value"]
        how_often = "once" if n == 1 else f"{n} times"
        return f"did {body} {times} {how_often}{_window_words(node['window'])}"


class EventTime(Kind):
    name = "event_time"
    label = "When an event first/last happened"

    @staticmethod
    def validate(raw: dict[str, Any], path: str) -> dict[str, Any]:
        event = _text(raw.get("event"), "event", path)
        which = raw.get("which")
        _require(which in ("first", "last"), "which must be first or last.", path)
        operator = raw.get("operator")
        allowed = {"before", "after", "within_last_days", "more_than_days_ago"}
        _require(
            _among(operator, allowed),
            f"operator must be one of {', '.join(sorted(allowed))}.",
            path,
        )
        assert isinstance(operator, str)
        return {
            "type": "event_time",
            "event": event,
            "which": which,
            "operator": operator,
            "value": _check_value("date", operator, raw.get("value"), path),
        }

    @staticmethod
    def describe(node: dict[str, Any], segment_names: dict[str, str]) -> str:
        subject = f"{node['which']} “{node['event']}”"
        return Attribute.describe(
            {"field": subject, "operator": node["operator"], "value": node["value"]}, segment_names
        )


class Metric(Kind):
    name = "metric"
    label = "Order metric"

    @staticmethod
    def validate(raw: dict[str, Any], path: str) -> dict[str, Any]:
        metric = raw.get("metric")
        _require(
            _among(metric, METRICS), f"metric must be one of {', '.join(sorted(METRICS))}.", path
        )
        operator = raw.get("operator")
        if metric == "last_order_date":
            allowed = DATE_OPERATORS - {"exists", "not_exists"}
            field_kind = "date"
        else:
            allowed = NUMBER_OPERATORS | {"equals"}
            field_kind = "number"
        _require(
            _among(operator, allowed),
            f"operator must be one of {', '.join(sorted(allowed))}.",
            path,
        )
        assert isinstance(operator, str)
        if field_kind == "number":
            value: object = _number(raw.get("value"), "value", path)
        else:
            value = _check_value("date", operator, raw.get("value"), path)
        return {
            "type": "metric",
            "metric": metric,
            "operator": operator,
            "value": value,
            "window": _window(raw.get("window"), path),
        }

    @staticmethod
    def describe(node: dict[str, Any], segment_names: dict[str, str]) -> str:
        subject = node["metric"].replace("_", " ")
        text = Attribute.describe(
            {"field": subject, "operator": node["operator"], "value": node["value"]}, segment_names
        )
        return f"{text}{_window_words(node['window'])}"


class Reachable(Kind):
    name = "reachable"
    label = "Can receive"

    @staticmethod
    def validate(raw: dict[str, Any], path: str) -> dict[str, Any]:
        channel = raw.get("channel")
        _require(channel in ("email", "push"), "channel must be email or push.", path)
        reachable = raw.get("reachable", True)
        _require(isinstance(reachable, bool), "reachable must be true or false.", path)
        return {"type": "reachable", "channel": channel, "reachable": reachable}

    @staticmethod
    def describe(node: dict[str, Any], segment_names: dict[str, str]) -> str:
        can = "can" if node["reachable"] else "cannot"
        return f"{can} receive {node['channel']}"


class Lifecycle(Kind):
    name = "lifecycle"
    label = "Lifecycle stage"

    @staticmethod
    def validate(raw: dict[str, Any], path: str) -> dict[str, Any]:
        operator = raw.get("operator", "in")
        _require(operator in ("in", "not_in"), "operator must be in or not_in.", path)
        value = raw.get("value")
        stages = set(LifecycleStage.values)
        ok = isinstance(value, list) and value and all(_among(v, stages) for v in value)
        _require(
            bool(ok), f"value must list stages among {', '.join(LifecycleStage.values)}.", path
        )
        assert isinstance(value, list)
        return {"type": "lifecycle", "operator": operator, "value": sorted(set(value))}

    @staticmethod
    def describe(node: dict[str, Any], segment_names: dict[str, str]) -> str:
        verb = "is" if node["operator"] == "in" else "is not"
        return f"lifecycle stage {verb} {' or '.join(node['value'])}"


class SegmentMember(Kind):
    name = "segment"
    label = "In another segment"

    @staticmethod
    def validate(raw: dict[str, Any], path: str) -> dict[str, Any]:
        try:
            public_id = str(uuid.UUID(str(raw.get("segment"))))
        except ValueError:
            raise RuleError("choose a segment.", path=path) from None
        member = raw.get("member", True)
        _require(isinstance(member, bool), "member must be true or false.", path)
        return {"type": "segment", "segment": public_id, "member": member}

    @staticmethod
    def describe(node: dict[str, Any], segment_names: dict[str, str]) -> str:
        name = segment_names.get(node["segment"], "a deleted segment")
        return f"{'is' if node['member'] else 'is not'} in “{name}”"


RFM_DIMENSIONS = ("recency", "frequency", "monetary")


def _quintiles(values: list[int]) -> str:
    """[4, 5] → '4-5', [1, 3, 5] → '1, 3, 5'."""
    if len(values) > 1 and values == list(range(values[0], values[-1] + 1)):
        return f"{values[0]}-{values[-1]}"
    return ", ".join(str(v) for v in values)


class RFM(Kind):
    """Recency / frequency / monetary quintiles over the tenant's customers' "Order Completed"
    events (the compiler ranks every customer with NTILE(5)); 5 is the best fifth."""

    name = "rfm"
    label = "RFM group"

    @staticmethod
    def validate(raw: dict[str, Any], path: str) -> dict[str, Any]:
        node: dict[str, Any] = {"type": "rfm"}
        for dimension in RFM_DIMENSIONS:
            value = raw.get(dimension)
            if value is None:
                node[dimension] = None
                continue
            ok = (
                isinstance(value, list)
                and 0 < len(value) <= 5
                and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
                and all(1 <= v <= 5 for v in value)
            )
            _require(ok, f"{dimension} must list quintiles from 1 to 5.", path)
            node[dimension] = sorted(set(value))
        _require(
            any(node[d] is not None for d in RFM_DIMENSIONS),
            "choose quintiles for recency, frequency or monetary.",
            path,
        )
        return node

    @staticmethod
    def describe(node: dict[str, Any], segment_names: dict[str, str]) -> str:
        parts = [
            f"{dimension} {_quintiles(node[dimension])}"
            for dimension in RFM_DIMENSIONS
            if node[dimension] is not None
        ]
        return f"RFM {', '.join(parts)}"


KINDS: dict[str, type[Kind]] = {
    kind.name: kind
    for kind in (
        Attribute,
        EventCondition,
        EventTime,
        Metric,
        Reachable,
        Lifecycle,
        SegmentMember,
        RFM,
    )
}


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
        _require(depth < MAX_DEPTH, f"groups nest at most {MAX_DEPTH} deep.", path)
        match = raw.get("match", "all")
        _require(match in ("all", "any"), "match must be all or any.", path)
        negate = raw.get("negate", False)
        _require(isinstance(negate, bool), "negate must be true or false.", path)
        children = raw.get("children")
        _require(isinstance(children, list), "a group needs a children list.", path)
        assert isinstance(children, list)
        _require(
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
    if not _among(kind, KINDS):
        raise RuleError(
            f"“{kind}” is not a kind of condition; use one of {', '.join(KINDS)}.", path=path
        )
    count[0] += 1
    _require(
        count[0] <= MAX_CONDITIONS, f"a segment has at most {MAX_CONDITIONS} conditions.", path
    )
    return KINDS[kind].validate(raw, path)  # type: ignore[index]  # _among(kind, KINDS) held


def conditions(tree: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every condition of a (validated) tree."""
    if tree["type"] == "group":
        for child in tree["children"]:
            yield from conditions(child)
    else:
        yield tree


def references(tree: dict[str, Any]) -> set[str]:
    """Public ids of the segments a tree refers to."""
    return {c["segment"] for c in conditions(tree) if c["type"] == "segment"}


def is_time_relative(tree: dict[str, Any]) -> bool:
    """Whether membership can change with the clock alone (so a scheduled refresh is needed)."""
    for c in conditions(tree):
        if c.get("window") and "last_days" in c["window"]:
            return True
        if c.get("operator") in (
            "within_last_days",
            "more_than_days_ago",
            "in_next_days",
            "this_month",
        ):
            return True
        if c["type"] == "segment":
            return True  # the other segment may be
        if c["type"] == "rfm":
            # Quintiles are relative: one customer's order moves other customers' ranks, but
            # an incremental refresh re-evaluates only the contacts it was given; the
            # scheduled refresh brings the others along.
            return True
    return False


def describe(tree: dict[str, Any], segment_names: dict[str, str] | None = None) -> str:
    """A sentence a marketer can read back: 'all of: did “Order Completed” …; any of: …'."""
    names = segment_names or {}
    if tree["type"] != "group":
        return KINDS[tree["type"]].describe(tree, names)
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
