"""Triggers: how a contact enters a journey. Exactly one per journey; the engine matches them
(journeys.engine) and a trigger node itself only passes the enrollment on."""

from __future__ import annotations

import re
from datetime import time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from journeys.node_kinds import (
    Category,
    Field,
    Follow,
    NodeKind,
    NodeSettingsError,
    Outcome,
    StepContext,
    register,
)

UNITS = (("minutes", "minutes"), ("hours", "hours"), ("days", "days"))
UNIT_SECONDS = {"minutes": 60, "hours": 3600, "days": 86400}
FILTER_OPERATORS = ("equals", "not_equals", "contains", "gt", "gte", "lt", "lte", "exists")
TIME_RE = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def duration(settings: dict[str, Any]) -> timedelta:
    """`amount` `unit`s (a wait's, a goal's window) as a timedelta."""
    return timedelta(seconds=int(settings.get("amount") or 0) * UNIT_SECONDS[settings["unit"]])


def parse_time(value: str) -> time:
    found = TIME_RE.match(str(value or "").strip())
    if not found:
        raise ValueError(f"“{value}” is not a time like 09:00.")
    return time(int(found[1]), int(found[2]))


def check_int(errors: dict[str, str], clean: dict[str, Any], f: Field) -> None:
    """Coerce `clean[f.key]` to an int within the field's bounds, or note why not."""
    if f.key not in clean:
        return
    try:
        value = int(clean[f.key])
    except (TypeError, ValueError):
        errors[f.key] = f"{f.label} must be a whole number."
        return
    if f.minimum is not None and value < f.minimum:
        errors[f.key] = f"{f.label} must be at least {f.minimum}."
    elif f.maximum is not None and value > f.maximum:
        errors[f.key] = f"{f.label} must be at most {f.maximum}."
    clean[f.key] = value


def check_choice(errors: dict[str, str], clean: dict[str, Any], f: Field) -> None:
    if f.key in clean and str(clean[f.key]) not in {c for c, _ in f.choices}:
        errors[f.key] = f"{f.label}: choose one of {', '.join(c for c, _ in f.choices if c)}."


def validate_fields(kind: NodeKind, settings: dict[str, Any]) -> dict[str, Any]:
    """The base validation plus the types the fields declare (int, choice, time, filters)."""
    errors: dict[str, str] = {}
    try:
        clean = NodeKind.validate(kind, settings)
    except NodeSettingsError as exc:
        errors.update(exc.errors)
        clean = {f.key: settings[f.key] for f in kind.fields if settings.get(f.key) is not None}
    for f in kind.fields:
        if f.key in errors:
            continue
        if f.type == "int":
            check_int(errors, clean, f)
        elif f.type == "choice":
            check_choice(errors, clean, f)
        elif f.type == "time" and f.key in clean:
            try:
                t = parse_time(clean[f.key])
            except ValueError as exc:
                errors[f.key] = str(exc)
            else:
                clean[f.key] = f"{t:%H:%M}"
        elif f.type == "filters":
            try:
                clean[f.key] = filters_validate(settings.get(f.key) or [])
            except ValueError as exc:
                errors[f.key] = str(exc)
        elif f.type in ("text", "event", "url") and f.key in clean:
            clean[f.key] = str(clean[f.key]).strip()
    if errors:
        raise NodeSettingsError(errors)
    return clean


def filters_validate(raw: object) -> list[dict[str, Any]]:
    """[{"property", "operator", "value"}] normalised, or ValueError."""
    if not isinstance(raw, list):
        raise ValueError("Conditions must be a list.")
    clean = []
    for i, item in enumerate(raw, start=1):
        if not isinstance(item, dict) or not str(item.get("property") or "").strip():
            raise ValueError(f"Condition {i} needs a property.")
        operator = item.get("operator", "equals")
        if operator not in FILTER_OPERATORS:
            raise ValueError(f"Condition {i}: use one of {', '.join(FILTER_OPERATORS)}.")
        value = item.get("value", "")
        if operator in ("gt", "gte", "lt", "lte") and _number(value) is None:
            raise ValueError(f"Condition {i}: {operator} needs a number.")
        clean.append(
            {"property": str(item["property"]).strip(), "operator": operator, "value": value}
        )
    return clean


def _number(value: object) -> Decimal | None:
    if isinstance(value, bool) or value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def _lookup(properties: dict[str, Any], path: str) -> Any:
    """A property by name, or a dotted path into nested objects ("product.sku")."""
    if path in properties:
        return properties[path]
    value: Any = properties
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def properties_match(properties: object, filters: list[dict[str, Any]]) -> bool:
    """Whether an event's properties meet every filter (all must hold)."""
    props = properties if isinstance(properties, dict) else {}
    for f in filters:
        actual = _lookup(props, f["property"])
        operator, wanted = f["operator"], f.get("value")
        if operator == "exists":
            ok = actual not in (None, "")
        elif operator in ("gt", "gte", "lt", "lte"):
            a, b = _number(actual), _number(wanted)
            ok = (
                a is not None
                and b is not None
                and {"gt": a > b, "gte": a >= b, "lt": a < b, "lte": a <= b}[operator]
            )
        elif operator == "contains":
            if isinstance(actual, list):
                ok = any(str(x) == str(wanted) for x in actual)
            else:
                ok = actual is not None and str(wanted).lower() in str(actual).lower()
        else:
            same = _same(actual, wanted)
            ok = same if operator == "equals" else not same
        if not ok:
            return False
    return True


def _same(actual: object, wanted: object) -> bool:
    a, b = _number(actual), _number(wanted)
    if a is not None and b is not None:
        return a == b
    if isinstance(actual, bool):
        return str(actual).lower() == str(wanted).lower()
    return actual is not None and str(actual) == str(wanted)


class Trigger(NodeKind):
    """The engine matches triggers (journeys.engine); the node itself only passes the
    enrollment on."""

    category = Category.TRIGGER

    def validate(self, settings: dict[str, Any]) -> dict[str, Any]:
        return validate_fields(self, settings)

    def execute(self, step: StepContext) -> Outcome:
        return Follow("next")


@register
class EventTrigger(Trigger):
    key = "trigger_event"
    label = "When an event happens"
    description = (
        "Enters a contact each time they do this event (the journey's re-entry rule allows)."
    )
    fields = (
        Field("event", "Event", "event", required=True, help="e.g. Product Added"),
        Field(
            "filters",
            "Only when",
            "filters",
            default=[],
            help="Property conditions the event must meet, e.g. total greater than 50.",
        ),
    )

    def describe(self, settings: dict[str, Any]) -> str:
        return f"When “{settings.get('event', '…')}” happens"


@register
class SegmentTrigger(Trigger):
    key = "trigger_segment"
    label = "When entering or leaving a segment"
    fields = (
        Field("segment", "Segment", "segment", required=True),
        Field(
            "direction",
            "When they",
            "choice",
            required=True,
            default="entered",
            choices=(("entered", "enter it"), ("exited", "leave it")),
        ),
    )

    def describe(self, settings: dict[str, Any]) -> str:
        verb = "leaving" if settings.get("direction") == "exited" else "entering"
        return f"When {verb} a segment"


@register
class DateTrigger(Trigger):
    key = "trigger_date"
    label = "On a date (birthday, anniversary)"
    description = "Every year on the contact's date, offset by some days, at a local time."
    fields = (
        Field(
            "attribute",
            "Date",
            "text",
            required=True,
            default="birthday",
            help="“birthday”, or a custom attribute holding a date (YYYY-MM-DD).",
        ),
        Field(
            "offset_days",
            "Days before (-) or after (+)",
            "int",
            default=0,
            minimum=-365,
            maximum=365,
        ),
        Field("at", "At (contact's local time)", "time", required=True, default="09:00"),
    )

    def validate(self, settings: dict[str, Any]) -> dict[str, Any]:
        clean = validate_fields(self, settings)
        clean.setdefault("offset_days", 0)
        return clean

    def describe(self, settings: dict[str, Any]) -> str:
        offset = int(settings.get("offset_days") or 0)
        when = f"{abs(offset)} days {'before' if offset < 0 else 'after'} " if offset else "On "
        what = settings.get("attribute", "birthday")
        return f"{when}the contact's {what}, at {settings.get('at', '09:00')} local time"


@register
class SignupTrigger(Trigger):
    key = "trigger_signup"
    label = "When a contact signs up"
    description = "Enters each contact the first time they sign up (the “Signed Up” event)."


@register
class ApiTrigger(Trigger):
    key = "trigger_api"
    label = "When enrolled through the API"
    description = "POST /api/v1/journeys/{id}/enroll/ with a contact and data."
