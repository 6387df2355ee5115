"""What the builder's condition fields share: operator lists in display order and their labels,
text ↔ value conversions, the comparison/value pair (segments/_comparison.html) and the event
window fields (segments/_window.html)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from segments import rules
from segments.registry import FormFields

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
DAYS_OPERATORS = {"within_last_days", "more_than_days_ago", "in_next_days"}
LIST_VALUE_OPERATORS = {"in_list", "not_in_list"}
OPERATOR_LABELS = {
    **rules.OPERATOR_WORDS,
    "equals": "is",
    "in_list": "is one of",
    "not_in_list": "is none of",
    "within_last_days": "is within the last",
    "more_than_days_ago": "is more than",
}
WINDOW_CHOICES = [("", "at any time"), ("last_days", "in the last … days"), ("between", "between")]


def label(key: str, labels: Mapping[str, str]) -> str:
    return labels.get(key, key.replace("_", " ").capitalize())


def int_or_text(text: str) -> int | str:
    """A whole number, or the text as typed (so the check names it and the field keeps it)."""
    return int(text) if re.fullmatch(r"-?\d{1,9}", text) else text


def number_or_text(text: str) -> int | float | str:
    if re.fullmatch(r"-?\d{1,15}", text):
        return int(text)
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else text  # JSON has no NaN or infinity


def text_of(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def value_from(operator: str, text: str, *, numeric: bool) -> object:
    """The value field's text as the operator takes it."""
    if operator in rules.NO_VALUE:
        return None
    if operator in LIST_VALUE_OPERATORS:
        return [part.strip() for part in text.split(",") if part.strip()]
    if operator in DAYS_OPERATORS:
        return int_or_text(text)
    if numeric or operator in rules.NUMBER_OPERATORS:
        return number_or_text(text)
    return text


def value_input(operator: str, *, numeric: bool = False) -> tuple[str, str]:
    """The value field an operator needs ("", "text", "list", "number", "date") and its
    suffix."""
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


def window_from(f: FormFields) -> dict[str, Any] | None:
    mode = f.text("window")
    if mode == "last_days":
        return {"last_days": int_or_text(f.text("window_days"))}
    if mode == "between":
        dates = {key: f.text(f"window_{key}") for key in ("after", "before")}
        # Both blank keeps the choice (and asks for a date) instead of silently meaning "ever".
        return {k: v for k, v in dates.items() if v} or {"after": ""}
    return None


def window_values(window: object) -> dict[str, str]:
    window = window if isinstance(window, dict) else {}
    mode = "last_days" if "last_days" in window else "between" if window else ""
    return {
        "window": mode,
        "window_days": text_of(window.get("last_days")),
        "window_after": text_of(window.get("after")),
        "window_before": text_of(window.get("before")),
    }


WINDOW_SCHEMA: dict[str, Any] = {
    "type": "object",
    "nullable": True,
    "description": "{last_days: 1-3650} or {after: date, before: date} (either or both)",
    "properties": {
        "last_days": {"type": "integer", "minimum": 1, "maximum": 3650},
        "after": {"type": "string", "format": "date"},
        "before": {"type": "string", "format": "date"},
    },
}
