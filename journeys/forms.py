"""The editor's forms. A step's settings form is generated from its kind's `fields`
(journeys.node_kinds.Field): one control per field type, named by the field's key, so the
kind stays the one place that says what a step needs. The kind (through the services) has the
last word on the values; this module only turns the posted form into the settings' shapes
(ints, lists, a rule tree) and back."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.http import QueryDict

from core.storable import Unstorable, check_json
from journeys.models import Reentry
from journeys.node_kinds import Field, NodeKind
from segments.selectors import OPERATOR_WORDS

FILTER_ROWS_EXTRA = 1  # blank property-filter rows offered beside the ones set
FILTER_OPERATORS = ("equals", "not_equals", "contains", "gt", "gte", "lt", "lte", "exists")
RULE_OPERATORS = (
    "equals",
    "not_equals",
    "contains",
    "not_contains",
    "starts_with",
    "exists",
    "not_exists",
)
EVENT_SUGGESTIONS = (
    "Product Viewed",
    "Product Added",
    "Product Removed",
    "Product Added to Wishlist",
    "Checkout Started",
    "Order Completed",
    "Signed Up",
)


NO_VALUE = {"exists", "not_exists"}  # comparisons without a value (segments' rules agree)


def operator_label(operator: str) -> str:
    return OPERATOR_WORDS.get(operator, operator.replace("_", " "))


@dataclass
class Choices:
    """What the selects of a settings form offer, read once per page by the view."""

    email_templates: list[tuple[str, str]] = field(default_factory=list)
    push_templates: list[tuple[str, str]] = field(default_factory=list)
    segments: list[tuple[str, str]] = field(default_factory=list)
    events: list[str] = field(default_factory=list)


# --- a step's settings -------------------------------------------------------------------------


@dataclass
class FilterRow:
    index: int
    property: str = ""
    operator: str = "equals"
    value: str = ""


@dataclass
class SettingControl:
    """One field of the settings form as the template draws it."""

    key: str
    label: str
    type: str
    value: Any
    required: bool
    help: str = ""
    error: str = ""
    options: list[tuple[str, str]] = field(default_factory=list)
    minimum: int | None = None
    maximum: int | None = None
    rows: list[FilterRow] = field(default_factory=list)  # filters
    # rules: the simple form's parts, and the whole tree's description when it is richer
    rule_segment: str = ""
    rule_member: str = "yes"
    rule_field: str = ""
    rule_operator: str = "equals"
    rule_value: str = ""
    rule_summary: str = ""
    rule_complex: bool = False
    segment_choices: list[tuple[str, str]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"setting-{self.key}"

    @property
    def text_value(self) -> str:
        if self.value is None:
            return ""
        if self.type == "percentages" and isinstance(self.value, list):
            return ", ".join(str(v) for v in self.value)
        if self.type == "json":
            return self.value if isinstance(self.value, str) else json.dumps(self.value, indent=2)
        return str(self.value)

    @property
    def selected(self) -> list[str]:
        if isinstance(self.value, list):
            return [str(v) for v in self.value]
        return [] if self.value in (None, "") else [str(self.value)]


def _options(f: Field, choices: Choices) -> list[tuple[str, str]]:
    if f.type == "template_email":
        return choices.email_templates
    if f.type == "template_push":
        return choices.push_templates
    if f.type == "segment":
        return choices.segments
    if f.type == "filters":
        return [(o, operator_label(o)) for o in FILTER_OPERATORS]
    if f.type == "rules":
        return [(o, operator_label(o)) for o in RULE_OPERATORS]
    return list(f.choices)


def _rules_parts(control: SettingControl, tree: Any, segment_names: dict[str, str]) -> None:
    """Fill the simple rule form from `tree` when the tree is one it can show (a segment, a
    profile field, or both under "all"); otherwise describe the tree and keep it."""
    if not isinstance(tree, dict) or not tree.get("children"):
        return
    children = tree["children"]
    simple = tree.get("match") == "all" and not tree.get("negate") and len(children) <= 2
    seen: set[str] = set()
    for child in children if simple else []:
        kind = child.get("type")
        if kind == "segment" and kind not in seen:
            control.rule_segment = str(child.get("segment", ""))
            control.rule_member = "yes" if child.get("member", True) else "no"
        elif kind == "attribute" and kind not in seen and child.get("operator") in RULE_OPERATORS:
            control.rule_field = str(child.get("field", ""))
            control.rule_operator = str(child.get("operator", "equals"))
            value = child.get("value")
            control.rule_value = "" if value is None else str(value)
        else:
            simple = False
        seen.add(str(kind))
    if not simple:
        control.rule_complex = True
        control.rule_summary = _rules_words(tree, segment_names)


def _rules_words(tree: dict[str, Any], segment_names: dict[str, str]) -> str:
    """A short reading of a rule tree the simple form cannot show (its conditions' kinds)."""
    parts = []
    for child in tree.get("children", []):
        kind = child.get("type") if isinstance(child, dict) else ""
        if kind == "segment":
            parts.append(f"in “{segment_names.get(str(child.get('segment')), 'a segment')}”")
        elif kind == "attribute":
            parts.append(f"{child.get('field')} {operator_label(str(child.get('operator')))}")
        else:
            parts.append(str(kind or "a group").replace("_", " "))
    joiner = " or " if tree.get("match") == "any" else " and "
    words = joiner.join(parts) or "a condition"
    return f"not ({words})" if tree.get("negate") else words


def setting_controls(
    kind: NodeKind,
    settings: dict[str, Any],
    *,
    choices: Choices,
    errors: dict[str, str] | None = None,
    segment_names: dict[str, str] | None = None,
) -> list[SettingControl]:
    """The controls of `kind`'s settings form showing `settings` (saved, or as posted)."""
    errors = errors or {}
    controls = []
    for f in kind.fields:
        value = settings.get(f.key, f.default)
        control = SettingControl(
            key=f.key,
            label=f.label,
            type=f.type,
            value=value,
            required=f.required,
            help=f.help,
            error=errors.get(f.key, ""),
            options=_options(f, choices),
            minimum=f.minimum,
            maximum=f.maximum,
        )
        if f.type == "filters":
            rows = value if isinstance(value, list) else []
            control.rows = [
                FilterRow(
                    i,
                    str(r.get("property", "")),
                    str(r.get("operator", "equals")),
                    "" if r.get("value") is None else str(r.get("value")),
                )
                for i, r in enumerate(rows)
                if isinstance(r, dict)
            ]
            start = len(control.rows)
            control.rows += [FilterRow(start + i) for i in range(FILTER_ROWS_EXTRA)]
        elif f.type == "rules":
            control.segment_choices = choices.segments
            _rules_parts(control, value, segment_names or {})
        controls.append(control)
    return controls


MAX_FILTER_ROWS = 50  # property conditions one step may hold


class SettingsParseError(ValueError):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


def _int_or_text(text: str) -> int | str:
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        return text


def settings_from_post(
    kind: NodeKind, data: QueryDict, *, current: dict[str, Any]
) -> dict[str, Any]:
    """The settings a posted form means, in the kind's shapes. What cannot be read at all (a
    JSON object that is not JSON) raises SettingsParseError; what the kind refuses is the
    services' to say."""
    settings: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for f in kind.fields:
        name = f"setting-{f.key}"
        raw = data.get(name, "")
        if f.type == "int":
            settings[f.key] = _int_or_text(raw) if raw.strip() else None
        elif f.type == "multichoice":
            settings[f.key] = data.getlist(name)
        elif f.type == "percentages":
            parts = [p for p in raw.replace(";", ",").split(",") if p.strip()]
            settings[f.key] = [_int_or_text(p) for p in parts]
        elif f.type == "json":
            try:
                settings[f.key] = json.loads(raw) if raw.strip() else {}
            except json.JSONDecodeError as exc:
                errors[f.key] = f"{f.label} is not valid JSON ({exc.msg}, line {exc.lineno})."
        elif f.type == "filters":
            rows = []
            try:
                count = min(int(data.get(f"{name}-rows", "0") or 0), MAX_FILTER_ROWS)
            except ValueError:
                count = 0
            for i in range(count):
                prop = data.get(f"{name}-{i}-property", "").strip()
                if not prop:
                    continue
                rows.append(
                    {
                        "property": prop,
                        "operator": data.get(f"{name}-{i}-operator", "equals"),
                        "value": data.get(f"{name}-{i}-value", ""),
                    }
                )
            settings[f.key] = rows
        elif f.type == "rules":
            if data.get(f"{name}-keep") == "1":
                settings[f.key] = current.get(f.key)
                continue
            children: list[dict[str, Any]] = []
            segment = data.get(f"{name}-segment", "")
            if segment:
                member = data.get(f"{name}-member", "yes") != "no"
                children.append({"type": "segment", "segment": segment, "member": member})
            attribute = data.get(f"{name}-field", "").strip()
            if attribute:
                operator = data.get(f"{name}-operator", "equals")
                child: dict[str, Any] = {
                    "type": "attribute",
                    "field": attribute,
                    "operator": operator,
                }
                if operator not in NO_VALUE:
                    child["value"] = data.get(f"{name}-value", "")
                children.append(child)
            settings[f.key] = (
                {"type": "group", "match": "all", "negate": False, "children": children}
                if children
                else None
            )
        else:
            settings[f.key] = raw.strip()
    for f in kind.fields:
        # What the database could not store (NUL, unpaired surrogates, NaN in JSON…): a form
        # error on the field, not a failed save.
        try:
            check_json(settings.get(f.key), field=f.label)
        except Unstorable as exc:
            errors.setdefault(f.key, str(exc))
    if errors:
        raise SettingsParseError(errors)
    return settings


# --- the journey's own forms -------------------------------------------------------------------


class JourneyNameForm(forms.Form):
    name = forms.CharField(
        max_length=120,
        label="Name",
        error_messages={"required": "Give the journey a name."},
    )


class JourneySettingsForm(forms.Form):
    """Re-entry, the cap, the goal's exit and the exit events (published with the graph)."""

    reentry = forms.ChoiceField(
        label="Can someone go through it again?",
        choices=[
            (Reentry.NEVER, "Never: once per contact"),
            (Reentry.AFTER, "After some days"),
            (Reentry.ALWAYS, "Always, each time the trigger happens"),
        ],
        widget=forms.RadioSelect,
    )
    reentry_days = forms.IntegerField(
        label="Days before they can enter again",
        required=False,
        min_value=1,
        max_value=3650,
        help_text="With “After some days”.",
    )
    max_enrollments = forms.IntegerField(
        label="At most this many people (empty: no limit)",
        required=False,
        min_value=1,
    )
    exit_on_goal = forms.BooleanField(
        label="Leave the journey when the goal is met", required=False
    )
    exit_events = forms.CharField(
        label="Leave the journey on these events",
        required=False,
        help_text="One event name per line, e.g. Order Completed.",
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def clean_exit_events(self) -> list[str]:
        raw = self.cleaned_data.get("exit_events") or ""
        names = [line.strip() for line in raw.replace(",", "\n").splitlines() if line.strip()]
        return list(dict.fromkeys(names))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("reentry") == Reentry.AFTER and not data.get("reentry_days"):
            self.add_error("reentry_days", "Say after how many days.")
        return data


class ContactSearchForm(forms.Form):
    q = forms.CharField(label="Contact's email", required=False, max_length=200)
