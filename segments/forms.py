"""The segment builder as a form: a rule tree as flat form fields, and back.

Every node of the tree has a path — "" for the root group, "0" for its first child, "0.1" for
that child's second — and its fields are named `node-<path>-<key>` (`node-0.1-operator`). On
every change the page posts the whole form; the server parses it into a raw tree
(`tree_from_data`), applies the button that was pressed (`apply_action`), checks it (`check`)
and renders it back (`builder_nodes`), so the browser holds no state of its own and paths are
renumbered on every render.

Checking is `segments.rules` itself: each condition through its kind's validator, so every
incomplete condition shows its own message, then the whole tree (depth, empty groups, limits).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.http import QueryDict

from audience.models import LifecycleStage
from segments import rules

# Ordered for display; tests pin that they cover the operator sets of segments.rules.
TEXT_OPERATORS = [
    "equals",
    "not_equals",
    "contains",
    "not_contains",
    "starts_with",
    "in_list",
    "not_in_list",
    "exists",
    "not_exists",
]
NUMBER_OPERATORS = ["gt", "gte", "lt", "lte"]
DATE_OPERATORS = [
    "within_last_days",
    "more_than_days_ago",
    "before",
    "after",
    "exists",
    "not_exists",
]
BIRTHDAY_OPERATORS = ["this_month", "in_next_days", "exists", "not_exists"]
LIST_OPERATORS = ["exists", "not_exists"]
EVENT_TIME_OPERATORS = ["within_last_days", "more_than_days_ago", "before", "after"]
METRIC_OPERATORS = ["gt", "gte", "lt", "lte", "equals"]
PROPERTY_OPERATORS = ["equals", "not_equals", "contains", "gt", "gte", "lt", "lte", "exists"]
DAYS_OPERATORS = {"within_last_days", "more_than_days_ago", "in_next_days"}
LIST_VALUE_OPERATORS = {"in_list", "not_in_list"}
MAX_WHERE = 5
QUINTILES = ("1", "2", "3", "4", "5")

FIELD_LABELS = {
    "email": "Email",
    "phone": "Phone",
    "first_name": "First name",
    "last_name": "Last name",
    "user_id": "User id",
    "timezone": "Time zone",
    "locale": "Locale",
    "created_at": "First seen",
    "last_seen_at": "Last seen",
    "birthday": "Birthday",
    "cart": "Cart",
    "wishlist": "Wishlist",
}
CUSTOM_ATTRIBUTE = "attributes"  # the field select's "custom attribute" choice
METRIC_LABELS = {
    "orders_count": "Number of orders",
    "total_spent": "Total spent",
    "average_order_value": "Average order value",
    "last_order_date": "Last order date",
}
OPERATOR_LABELS = {
    **rules.OPERATOR_WORDS,
    "equals": "is",
    "in_list": "is one of",
    "not_in_list": "is none of",
    "within_last_days": "is within the last",
    "more_than_days_ago": "is more than",
}
LIST_FIELD_LABELS = {"exists": "has something in it", "not_exists": "is empty"}
COUNT_LABELS = {"at_least": "at least", "at_most": "at most", "exactly": "exactly"}
# Suggested (not required) event names: Segment's e-commerce spec, which ingestion speaks, and
# the events segments themselves record.
EVENT_SUGGESTIONS = [
    "Product Viewed",
    "Products Searched",
    "Product Added",
    "Product Removed",
    "Product Added to Wishlist",
    "Checkout Started",
    "Order Completed",
    "Segment Entered",
    "Segment Exited",
]
RFM_HELP = {
    "recency": "5 = ordered most recently",
    "frequency": "5 = orders most often",
    "monetary": "5 = spends the most",
}
WINDOW_CHOICES = [("", "at any time"), ("last_days", "in the last … days"), ("between", "between")]
KIND_CHOICES = [(name, kind.label) for name, kind in rules.KINDS.items()]
# Selects that must be chosen before the kind's own checks make sense, with a plain message.
REQUIRED_CHOICES = {
    "attribute": [("field", "choose a field."), ("operator", "choose a comparison.")],
    "event_time": [("operator", "choose a comparison.")],
    "metric": [("metric", "choose a metric."), ("operator", "choose a comparison.")],
    "reachable": [("channel", "choose a channel.")],
}


def _label(key: str, labels: Mapping[str, str]) -> str:
    return labels.get(key, key.replace("_", " ").capitalize())


def field_name(path: str, key: str) -> str:
    return f"node-{path}-{key}"


def _child(path: str, index: int) -> str:
    return f"{path}.{index}" if path else str(index)


def _depth(path: str) -> int:
    return 0 if path == "" else path.count(".") + 1


# --- text ↔ values ------------------------------------------------------------------------------


def _int_or_text(text: str) -> int | str:
    """A whole number, or the text as typed (so the check names it and the field keeps it)."""
    return int(text) if re.fullmatch(r"-?\d{1,9}", text) else text


def _number_or_text(text: str) -> int | float | str:
    if re.fullmatch(r"-?\d{1,15}", text):
        return int(text)
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else text  # JSON has no NaN or infinity


def _text_of(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def attribute_operators(field_key: str) -> list[str]:
    """The comparisons a profile field takes ("attributes.<key>" for custom attributes)."""
    if field_key.startswith("attributes."):
        return TEXT_OPERATORS + NUMBER_OPERATORS
    return {
        "text": TEXT_OPERATORS,
        "date": DATE_OPERATORS,
        "birthday": BIRTHDAY_OPERATORS,
        "list": LIST_OPERATORS,
    }.get(rules.CONTACT_FIELDS.get(field_key, ""), [])


def metric_operators(metric: str) -> list[str]:
    if metric == "last_order_date":
        return EVENT_TIME_OPERATORS
    return METRIC_OPERATORS if metric in rules.METRICS else []


def _value(operator: str, text: str, *, numeric: bool) -> object:
    if operator in rules.NO_VALUE:
        return None
    if operator in LIST_VALUE_OPERATORS:
        return [part.strip() for part in text.split(",") if part.strip()]
    if operator in DAYS_OPERATORS:
        return _int_or_text(text)
    if numeric or operator in rules.NUMBER_OPERATORS:
        return _number_or_text(text)
    return text


# --- form data → raw tree -----------------------------------------------------------------------


class _Fields:
    """One node's fields in the posted data."""

    def __init__(self, data: QueryDict, path: str) -> None:
        self.data, self.path = data, path

    def text(self, key: str, default: str = "") -> str:
        value = self.data.get(field_name(self.path, key))
        return default if value is None else value.strip()

    def texts(self, key: str) -> list[str]:
        return [v.strip() for v in self.data.getlist(field_name(self.path, key)) if v.strip()]

    def indexes(self, pattern: str) -> list[int]:
        """Indexes n for which a key matching `pattern` (with (\\d+) for n) was posted."""
        regex = re.compile(re.escape(field_name(self.path, "")) + pattern)
        found = {int(m[1]) for key in self.data if (m := regex.fullmatch(key))}
        return sorted(found)[: rules.MAX_CONDITIONS + 1]


def _window_from(f: _Fields) -> dict[str, Any] | None:
    mode = f.text("window")
    if mode == "last_days":
        return {"last_days": _int_or_text(f.text("window_days"))}
    if mode == "between":
        dates = {key: f.text(f"window_{key}") for key in ("after", "before")}
        # Both blank keeps the choice (and asks for a date) instead of silently meaning "ever".
        return {k: v for k, v in dates.items() if v} or {"after": ""}
    return None


def _attribute_from(f: _Fields) -> dict[str, Any]:
    key = f.text("field")
    if key == CUSTOM_ATTRIBUTE:
        key = "attributes." + f.text("attribute")
    operator = f.text("operator")
    if operator not in attribute_operators(key):
        operator = ""  # the field changed and the comparison does not apply to it: choose again
    numeric = key.startswith("attributes.") and operator in rules.NUMBER_OPERATORS
    return {
        "type": "attribute",
        "field": key,
        "operator": operator,
        "value": _value(operator, f.text("value"), numeric=numeric),
    }


def _event_from(f: _Fields) -> dict[str, Any]:
    where = []
    for i in f.indexes(r"where-(\d+)-operator")[:MAX_WHERE]:
        operator = f.text(f"where-{i}-operator")
        text = f.text(f"where-{i}-value")
        where.append(
            {
                "property": f.text(f"where-{i}-property"),
                "operator": operator,
                "value": None if operator == "exists" else _value(operator, text, numeric=False),
            }
        )
    return {
        "type": "event",
        "event": f.text("event"),
        "did": f.text("did", "yes") != "no",
        "where": where,
        "count": {
            "operator": f.text("count_operator", "at_least"),
            "value": _int_or_text(f.text("count_value", "1")),
        },
        "window": _window_from(f),
    }


def _event_time_from(f: _Fields) -> dict[str, Any]:
    operator = f.text("operator")
    return {
        "type": "event_time",
        "event": f.text("event"),
        "which": f.text("which", "last"),
        "operator": operator,
        "value": _value(operator, f.text("value"), numeric=False),
    }


def _metric_from(f: _Fields) -> dict[str, Any]:
    metric = f.text("metric")
    operator = f.text("operator")
    if operator not in metric_operators(metric):
        operator = ""
    return {
        "type": "metric",
        "metric": metric,
        "operator": operator,
        "value": _value(operator, f.text("value"), numeric=metric != "last_order_date"),
        "window": _window_from(f),
    }


def _reachable_from(f: _Fields) -> dict[str, Any]:
    return {
        "type": "reachable",
        "channel": f.text("channel"),
        "reachable": f.text("reachable") != "no",
    }


def _lifecycle_from(f: _Fields) -> dict[str, Any]:
    return {"type": "lifecycle", "operator": f.text("operator", "in"), "value": f.texts("value")}


def _rfm_from(f: _Fields) -> dict[str, Any]:
    node: dict[str, Any] = {"type": "rfm"}
    for dimension in rules.RFM_DIMENSIONS:
        quintiles = [int(v) for v in f.texts(dimension) if v in QUINTILES]
        node[dimension] = quintiles or None  # nothing ticked: any quintile
    return node


def _segment_from(f: _Fields) -> dict[str, Any]:
    return {"type": "segment", "segment": f.text("segment"), "member": f.text("member") != "no"}


PARSERS = {
    "attribute": _attribute_from,
    "event": _event_from,
    "event_time": _event_time_from,
    "metric": _metric_from,
    "reachable": _reachable_from,
    "lifecycle": _lifecycle_from,
    "segment": _segment_from,
    "rfm": _rfm_from,
}


def tree_from_data(data: QueryDict) -> dict[str, Any]:
    """The raw (unchecked) tree the builder's fields describe."""
    return _node_from(data, "")


def _node_from(data: QueryDict, path: str) -> dict[str, Any]:
    f = _Fields(data, path)
    kind = f.text("type", "group" if path == "" else "")
    if kind == "group":
        children = []
        # Deeper than the rules allow is not parsed (the group then reports itself as empty).
        if _depth(path) < rules.MAX_DEPTH:
            prefix = re.escape(f"node-{path}." if path else "node-")
            pattern = re.compile(prefix + r"(\d+)-type")
            indexes = sorted({int(m[1]) for key in data if (m := pattern.fullmatch(key))})
            children = [
                _node_from(data, f"{path}.{i}" if path else str(i))
                for i in indexes[: rules.MAX_CONDITIONS + 1]
            ]
        match = f.text("match", "all")
        return {
            "type": "group",
            "match": match if match in ("all", "any") else "all",
            "negate": f.text("negate") == "1",
            "children": children,
        }
    if kind in PARSERS:
        return PARSERS[kind](f)
    return {"type": kind}


# --- actions (the builder's buttons) --------------------------------------------------------------


def new_condition(kind: str) -> dict[str, Any]:
    """A condition as "Add condition" starts it: sensible defaults, the rest left to choose."""
    starts: dict[str, dict[str, Any]] = {
        "attribute": {"type": "attribute", "field": "", "operator": "", "value": ""},
        "event": {"type": "event", "event": "", "did": True, "where": [], "window": None},
        "event_time": {
            "type": "event_time",
            "event": "",
            "which": "last",
            "operator": "within_last_days",
            "value": "",
        },
        "metric": {"type": "metric", "metric": "orders_count", "operator": "gte", "value": ""},
        "reachable": {"type": "reachable", "channel": "email", "reachable": True},
        "lifecycle": {"type": "lifecycle", "operator": "in", "value": []},
        "segment": {"type": "segment", "segment": "", "member": True},
        "rfm": {"type": "rfm", **dict.fromkeys(rules.RFM_DIMENSIONS)},
    }
    return starts[kind]


def _find(tree: dict[str, Any], path: str) -> dict[str, Any] | None:
    node = tree
    for part in path.split(".") if path else []:
        children = node.get("children") if node.get("type") == "group" else None
        if not part.isdigit() or not children or int(part) >= len(children):
            return None
        node = children[int(part)]
    return node


def _count_conditions(tree: dict[str, Any]) -> int:
    if tree.get("type") != "group":
        return 1
    return sum(_count_conditions(child) for child in tree["children"])


@dataclass
class Applied:
    tree: dict[str, Any]
    focus: str = ""  # id of the element to focus after the change


def apply_action(tree: dict[str, Any], action: str, data: QueryDict) -> Applied:
    """The tree after a builder button: `add:<group>[:<kind>]`, `add_group:<group>`,
    `remove:<node>`, `add_where:<event condition>`, `remove_where:<event condition>:<n>`.
    Anything else (`refresh`, a stale path) leaves the tree as it is."""
    verb, _, rest = action.partition(":")
    path, _, extra = rest.partition(":")
    node = _find(tree, path)
    if node is None:
        return Applied(tree)
    if verb in ("add", "add_group") and node["type"] == "group":
        if verb == "add":
            kind = extra or data.get(field_name(path, "add_kind"), "")
            if kind not in rules.KINDS or _count_conditions(tree) >= rules.MAX_CONDITIONS:
                return Applied(tree)
            node["children"].append(new_condition(kind))
        else:
            if _depth(path) + 1 >= rules.MAX_DEPTH:
                return Applied(tree)
            # A group inside "all" is usually an "any" (and the other way round).
            match = "any" if node["match"] == "all" else "all"
            node["children"].append(
                {"type": "group", "match": match, "negate": False, "children": []}
            )
        new = _child(path, len(node["children"]) - 1)
        return Applied(tree, focus=field_name(new, "first"))
    if verb == "remove" and path:
        parent_path, _, index = path.rpartition(".")
        parent = _find(tree, parent_path)
        assert parent is not None
        parent["children"].pop(int(index))
        return Applied(tree, focus=field_name(parent_path, "add_kind"))
    if verb == "add_where" and node["type"] == "event" and len(node["where"]) < MAX_WHERE:
        node["where"].append({"property": "", "operator": "equals", "value": ""})
        return Applied(tree, focus=field_name(path, f"where-{len(node['where']) - 1}-property"))
    if (
        verb == "remove_where"
        and node["type"] == "event"
        and extra.isdigit()
        and int(extra) < len(node["where"])
    ):
        node["where"].pop(int(extra))
        return Applied(tree, focus=field_name(path, "add_where"))
    return Applied(tree)


# --- checking -------------------------------------------------------------------------------------


def _walk(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    if node.get("type") == "group":
        for i, child in enumerate(node["children"]):
            yield from _walk(child, _child(path, i))


def _check_condition(node: dict[str, Any], path: str) -> None:
    kind = node.get("type", "")
    for key, message in REQUIRED_CHOICES.get(kind, []):
        if not node.get(key):
            raise rules.RuleError(message, path=path)
    if kind == "attribute" and node["field"] == "attributes.":
        raise rules.RuleError("name the custom attribute.", path=path)
    if kind == "lifecycle" and not node["value"]:
        raise rules.RuleError("tick at least one stage.", path=path)
    if kind not in rules.KINDS:
        raise rules.RuleError("choose a kind of condition.", path=path)
    rules.KINDS[kind].validate(node, path)


@dataclass
class Checked:
    tree: dict[str, Any] | None  # the validated tree, when it has no errors
    errors: dict[str, str]  # path → message


def check(tree: dict[str, Any], *, for_save: bool = False) -> Checked:
    """Every condition's problem (by path), and the validated tree when there are none. The
    builder accepts an empty root (everyone); saving does not."""
    errors: dict[str, str] = {}
    for path, node in _walk(tree):
        if node.get("type") != "group":
            try:
                _check_condition(node, path)
            except rules.RuleError as exc:
                errors[path] = exc.message
    if for_save and tree.get("children") == []:
        errors[""] = "add at least one condition."
    try:
        valid = rules.validate(tree, allow_empty=not for_save)
    except rules.RuleError as exc:
        errors.setdefault(exc.path, exc.message)
        valid = None
    return Checked(tree=None if errors else valid, errors=errors)


# --- tree → what the template renders -------------------------------------------------------------


@dataclass
class BuilderNode:
    """One node as the builder shows it. `prefix` + key is each field's name and id."""

    path: str
    kind: str
    values: dict[str, Any]
    error: str = ""
    children: list[BuilderNode] = field(default_factory=list)
    operators: list[tuple[str, str]] = field(default_factory=list)
    value_input: str = ""  # "", "text", "list", "number", "date"
    value_suffix: str = ""
    where: list[dict[str, Any]] = field(default_factory=list)
    rfm: list[dict[str, Any]] = field(default_factory=list)
    focus: str = ""  # the key of the field to focus ("first" = the node's first control)

    @property
    def prefix(self) -> str:
        return field_name(self.path, "")

    @property
    def number(self) -> str:
        return rules.display_path(self.path)

    @property
    def is_root(self) -> bool:
        return self.path == ""

    @property
    def label(self) -> str:
        return "Group" if self.kind == "group" else rules.KINDS[self.kind].label

    @property
    def can_nest(self) -> bool:
        return _depth(self.path) + 1 < rules.MAX_DEPTH

    @property
    def can_add_where(self) -> bool:
        return len(self.where) < MAX_WHERE


def _value_input(operator: str, *, numeric: bool = False) -> tuple[str, str]:
    if not operator or operator in rules.NO_VALUE:
        return "", ""
    if operator in DAYS_OPERATORS:
        return "number", "days ago" if operator == "more_than_days_ago" else "days"
    if operator in ("before", "after"):
        return "date", ""
    if operator in LIST_VALUE_OPERATORS:
        return "list", ""
    if numeric or operator in rules.NUMBER_OPERATORS:
        return "number", ""
    return "text", ""


def _window_values(window: object) -> dict[str, str]:
    window = window if isinstance(window, dict) else {}
    mode = "last_days" if "last_days" in window else "between" if window else ""
    return {
        "window": mode,
        "window_days": _text_of(window.get("last_days")),
        "window_after": _text_of(window.get("after")),
        "window_before": _text_of(window.get("before")),
    }


def _condition(node: dict[str, Any], path: str) -> BuilderNode:
    kind = node.get("type", "")
    values: dict[str, Any] = {
        k: _text_of(v) for k, v in node.items() if not isinstance(v, (dict, list))
    }
    values["value"] = _text_of(node.get("value"))
    built = BuilderNode(path=path, kind=kind if kind in rules.KINDS else "attribute", values={})
    operator = str(node.get("operator") or "")
    if kind == "attribute":
        key = str(node.get("field") or "")
        if key.startswith("attributes."):
            values["field"], values["attribute"] = CUSTOM_ATTRIBUTE, key.removeprefix("attributes.")
        labels = LIST_FIELD_LABELS if rules.CONTACT_FIELDS.get(key) == "list" else {}
        built.operators = [
            (o, labels.get(o) or OPERATOR_LABELS[o]) for o in attribute_operators(key)
        ]
        numeric = key.startswith("attributes.")
        built.value_input, built.value_suffix = _value_input(
            operator, numeric=numeric and operator in rules.NUMBER_OPERATORS
        )
    elif kind == "event":
        count = given if isinstance(given := node.get("count"), dict) else {}
        values["did"] = "yes" if node.get("did", True) else "no"
        values["count_operator"] = _text_of(count.get("operator") or "at_least")
        values["count_value"] = _text_of(count.get("value", 1))
        values.update(_window_values(node.get("window")))
        for item in node.get("where") or []:
            op = str(item.get("operator") or "")
            built.where.append(
                {
                    "property": _text_of(item.get("property")),
                    "operator": op,
                    "value": _text_of(item.get("value")),
                    "value_input": "" if op == "exists" else "text",
                }
            )
    elif kind == "event_time":
        built.operators = [(o, OPERATOR_LABELS[o]) for o in EVENT_TIME_OPERATORS]
        built.value_input, built.value_suffix = _value_input(operator)
    elif kind == "metric":
        metric = str(node.get("metric") or "")
        built.operators = [(o, OPERATOR_LABELS[o]) for o in metric_operators(metric)]
        built.value_input, built.value_suffix = _value_input(
            operator, numeric=metric != "last_order_date"
        )
        values.update(_window_values(node.get("window")))
    elif kind == "reachable":
        values["reachable"] = "yes" if node.get("reachable", True) else "no"
    elif kind == "lifecycle":
        values["value"] = [v for v in node.get("value") or [] if isinstance(v, str)]
    elif kind == "segment":
        values["member"] = "yes" if node.get("member", True) else "no"
    elif kind == "rfm":
        for dimension in rules.RFM_DIMENSIONS:
            chosen = node.get(dimension)
            built.rfm.append(
                {
                    "dimension": dimension,
                    "help": RFM_HELP.get(dimension, ""),
                    "chosen": [str(v) for v in chosen] if isinstance(chosen, list) else [],
                }
            )
    built.values = values
    return built


def builder_nodes(
    tree: dict[str, Any], *, errors: Mapping[str, str], focus: str = "", data: QueryDict | None
) -> BuilderNode:
    """The tree as the template renders it, with each node's error and the field to focus.
    `data` (the posted form) keeps each group's "new condition" choice across re-renders."""

    def build(node: dict[str, Any], path: str) -> BuilderNode:
        if node.get("type") == "group":
            built = BuilderNode(
                path=path,
                kind="group",
                values={
                    "match": node.get("match", "all"),
                    "negate": bool(node.get("negate")),
                    "add_kind": (data.get(field_name(path, "add_kind")) if data else "")
                    or "attribute",
                },
                children=[
                    build(child, _child(path, i)) for i, child in enumerate(node["children"])
                ],
            )
        else:
            built = _condition(node, path)
        built.error = errors.get(path, "")
        if focus.startswith(built.prefix) and "." not in focus.removeprefix(built.prefix):
            built.focus = focus.removeprefix(built.prefix)
        for i, item in enumerate(built.where):
            item["autofocus"] = built.focus == f"where-{i}-property"
        return built

    return build(tree, "")


@dataclass(frozen=True)
class Choices:
    """What the builder's selects offer (the same for every condition of one page)."""

    kinds: list[tuple[str, str]]
    fields: list[tuple[str, str]]
    metrics: list[tuple[str, str]]
    stages: list[tuple[str, str]]
    segments: list[tuple[str, str]]
    property_operators: list[tuple[str, str]]
    count_operators: list[tuple[str, str]]
    windows: list[tuple[str, str]]
    events: list[str]
    quintiles: tuple[str, ...]


def builder_choices(*, segments: list[tuple[str, str]]) -> Choices:
    """`segments`: (public id, name) of the segments a condition may refer to."""
    return Choices(
        kinds=KIND_CHOICES,
        fields=[
            *((key, _label(key, FIELD_LABELS)) for key in rules.CONTACT_FIELDS),
            (CUSTOM_ATTRIBUTE, "Custom attribute…"),
        ],
        metrics=[
            (key, _label(key, METRIC_LABELS))
            for key in [
                *(k for k in METRIC_LABELS if k in rules.METRICS),
                *sorted(rules.METRICS - set(METRIC_LABELS)),
            ]
        ],
        stages=list(LifecycleStage.choices),
        segments=segments,
        property_operators=[(o, OPERATOR_LABELS[o]) for o in PROPERTY_OPERATORS],
        count_operators=list(COUNT_LABELS.items()),
        windows=WINDOW_CHOICES,
        events=EVENT_SUGGESTIONS,
        quintiles=QUINTILES,
    )


# --- name and description ------------------------------------------------------------------------


class SegmentForm(forms.Form):
    """Name and description; the rules are the builder's. The service has the last word on
    both (a taken name comes back as its SegmentError)."""

    name = forms.CharField(max_length=200, error_messages={"required": "Give the segment a name."})
    description = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="What the segment is for, for the rest of the team.",
    )
