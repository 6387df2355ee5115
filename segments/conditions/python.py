"""The tests of segments/conditions/sql.py for one contact's values in Python, answering as the
SQL does (PostgreSQL's): text tests ignore case, a JSON key is read as text in its JSON
spelling (a missing key as ""), number tests take JSON numbers only, and every date test
counts days in the tenant's zone. Case folding is Python's `lower()`, which agrees with the
database's for the text rules hold (letters beyond Unicode's simple case mappings may not)."""

from __future__ import annotations

import json
import operator as op
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from segments.registry import Context

MISSING: Any = object()  # a JSON key that is not there
NUMBER_TESTS: dict[str, Callable[[float, float], bool]] = {
    "gt": op.gt,
    "gte": op.ge,
    "lt": op.lt,
    "lte": op.le,
    "equals": op.eq,
}


def is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def json_text(value: object) -> str:
    """A JSON value as text tests read it: a string as is, others as JSON spells them."""
    if value is MISSING or value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value)


def text_test(text: str, operator: str, value: Any) -> bool:
    """equals / contains / starts_with / in_list (and their not_) on text, ignoring case."""
    if operator.startswith("not_"):
        return not text_test(text, operator.removeprefix("not_"), value)
    text = text.lower()
    if operator == "equals":
        return text == str(value).lower()
    if operator == "contains":
        return str(value).lower() in text
    if operator == "starts_with":
        return text.startswith(str(value).lower())
    if operator == "in_list":
        return text in {str(v).lower() for v in value}
    raise AssertionError(operator)


def json_test(value: object, operator: str, expected: Any) -> bool:
    """One key of a JSON object (MISSING when absent), as `sql.json_q` tests it."""
    if operator == "exists":
        return value is not MISSING
    if operator == "not_exists":
        return value is MISSING
    if operator in ("gt", "gte", "lt", "lte") or (
        operator in ("equals", "not_equals") and not isinstance(expected, str)
    ):
        if isinstance(expected, bool):
            passed = isinstance(value, bool) and value == expected
        else:
            passed = is_number(value) and NUMBER_TESTS[operator.removeprefix("not_")](
                float(value),  # type: ignore[arg-type]
                expected,
            )
        return not passed if operator == "not_equals" else passed
    return text_test(json_text(value), operator, expected)


def date_test(ctx: Context, moment: datetime | None, operator: str, value: Any) -> bool:
    """`sql.date_q` for one moment (None: no moment, which no test passes)."""
    if moment is None:
        return False
    if operator == "within_last_days":
        return moment >= ctx.now - timedelta(days=value)
    if operator == "more_than_days_ago":
        return moment < ctx.now - timedelta(days=value)
    day = date.fromisoformat(value)
    if operator in ("before", "lt"):
        return moment < ctx.start_of(day)
    if operator in ("after", "gt"):
        return moment >= ctx.start_of(day + timedelta(days=1))
    if operator == "gte":
        return moment >= ctx.start_of(day)
    if operator == "lte":
        return moment < ctx.start_of(day + timedelta(days=1))
    raise AssertionError(operator)
