"""The segment builder as a form: a rule tree as flat form fields, and back.

Every node of the tree has a path — "" for the root group, "0" for its first child, "0.1" for
that child's second — and its fields are named `node-<path>-<key>` (`node-0.1-operator`). On
every change the page posts the whole form; the server parses it into a raw tree
(`tree_from_data`), applies the button that was pressed (`apply_action`), checks it (`check`)
and renders it back (`builder_nodes`), so the browser holds no state of its own and paths are
renumbered on every render.

Each condition's fields, parsing, defaults, buttons and template partial are its kind's
(segments/registry.py); this module holds the tree: paths, groups, add/remove, and checking.
Checking is `segments.rules` itself: each condition through its kind's validator, so every
incomplete condition shows its own message, then the whole tree (depth, empty groups, limits).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.http import QueryDict

from segments import registry, rules

# Segments' own kinds' option lists, named here as before (tests pin them against the rules).
from segments.conditions.attribute import attribute_operators  # noqa: F401
from segments.conditions.builder import (  # noqa: F401  (the operator lists, in display order)
    BIRTHDAY_OPERATORS,
    DATE_OPERATORS,
    LIST_OPERATORS,
    NUMBER_OPERATORS,
    TEXT_OPERATORS,
    text_of,
)
from segments.conditions.event import COUNT_LABELS, MAX_WHERE, PROPERTY_OPERATORS  # noqa: F401
from segments.conditions.orders import METRIC_LABELS, metric_operators  # noqa: F401

# Each kind's form parser, by name (live: kinds registered later show).
PARSERS = registry.KindView(lambda kind: kind.from_form)


def field_name(path: str, key: str) -> str:
    return f"node-{path}-{key}"


def _child(path: str, index: int) -> str:
    return f"{path}.{index}" if path else str(index)


def _depth(path: str) -> int:
    return 0 if path == "" else path.count(".") + 1


# --- form data → raw tree -----------------------------------------------------------------------


def tree_from_data(data: QueryDict) -> dict[str, Any]:
    """The raw (unchecked) tree the builder's fields describe."""
    return _node_from(data, "")


def _node_from(data: QueryDict, path: str) -> dict[str, Any]:
    f = registry.FormFields(data, path)
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
    if kind in rules.KINDS:
        return registry.get(kind).from_form(f)
    return {"type": kind}


# --- actions (the builder's buttons) --------------------------------------------------------------


def new_condition(kind: str) -> dict[str, Any]:
    """A condition as "Add condition" starts it: sensible defaults, the rest left to choose."""
    return registry.get(kind).new()


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
    if verb not in ("add", "add_group", "remove") and node.get("type") in rules.KINDS:
        focus = registry.get(node["type"]).form_action(node, verb, extra)  # the kind's buttons
        if focus is not None:
            return Applied(tree, focus=field_name(path, focus))
    return Applied(tree)


# --- checking -------------------------------------------------------------------------------------


def _walk(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    if node.get("type") == "group":
        for i, child in enumerate(node["children"]):
            yield from _walk(child, _child(path, i))


def _check_condition(node: dict[str, Any], path: str) -> None:
    kind = node.get("type", "")
    if kind not in rules.KINDS:
        raise rules.RuleError("choose a kind of condition.", path=path)
    registry.get(kind).form_check(node, path)
    registry.get(kind).validate(node, path)


# The rules' messages name the JSON keys, right for the API; the builder says its field labels.
BUILDER_WORDS = {
    "window.last_days": "Days",
    "window.after": "From",
    "window.before": "Until",
    "count.operator": "How often",
    "count.value": "Times",
    "where.value": "The filter's value",
}
_JSON_KEY = re.compile("|".join(re.escape(key) for key in BUILDER_WORDS))


def _in_builder_words(message: str) -> str:
    return _JSON_KEY.sub(lambda m: BUILDER_WORDS[m.group(0)], message)


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
                errors[path] = _in_builder_words(exc.message)
    if for_save and tree.get("children") == []:
        errors[""] = "add at least one condition."
    try:
        valid = rules.validate(tree, allow_empty=not for_save)
    except rules.RuleError as exc:
        errors.setdefault(exc.path, _in_builder_words(exc.message))
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
    where: list[dict[str, Any]] = field(default_factory=list)  # an event's property filters
    max_where: int = 0
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
    def fields_template(self) -> str:
        """The kind's controls (its template's `fields` partial)."""
        return f"{rules.KINDS[self.kind].template}#fields"

    @property
    def rows_template(self) -> str:
        """The kind's rows under its controls (its template's `rows` partial), if any."""
        kind = rules.KINDS[self.kind]
        return f"{kind.template}#rows" if kind.template_rows else ""

    @property
    def can_nest(self) -> bool:
        return _depth(self.path) + 1 < rules.MAX_DEPTH

    @property
    def can_add_where(self) -> bool:
        return len(self.where) < self.max_where


def _condition(node: dict[str, Any], path: str) -> BuilderNode:
    kind = node.get("type", "")
    values = {k: text_of(v) for k, v in node.items() if not isinstance(v, (dict, list))}
    values["value"] = text_of(node.get("value"))
    # An unknown kind shows as an empty profile-field condition (its error says what to do).
    built = BuilderNode(path=path, kind=kind if kind in rules.KINDS else "attribute", values=values)
    if kind in rules.KINDS:
        registry.get(kind).form_node(node, built)
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


class Choices:
    """What the builder's selects offer (the same for every condition of one page): `kinds`,
    and each kind's options (`builder_choices`) by name — `choices.fields`, `choices.events`…"""

    def __init__(self, kinds: list[tuple[str, str]], options: dict[str, Any]) -> None:
        self.kinds, self.options = kinds, options

    def __getitem__(self, key: str) -> Any:
        return self.options[key]

    def __getattr__(self, key: str) -> Any:
        try:
            return self.__dict__["options"][key]
        except KeyError:
            raise AttributeError(key) from None


def builder_choices(*, segments: list[tuple[str, str]]) -> Choices:
    """`segments`: (public id, name) of the segments a condition may refer to."""
    options: dict[str, Any] = {}
    for kind in registry.kinds():
        for key, value in kind.builder_choices(segments=segments).items():
            # Kinds may share an option (the event window's choices), never disagree on it.
            assert options.setdefault(key, value) == value, f"{kind.name}: choices.{key} differs"
    return Choices(kinds=[(kind.name, kind.label) for kind in registry.kinds()], options=options)


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
