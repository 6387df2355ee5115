"""What the database can store and read back: the checks that every door (tracking, push, REST,
forms, CSV import) applies to input before anything is stored.

- Text holds no NUL character (PostgreSQL stores none in text or jsonb) and no unpaired
  surrogate (`"\\ud800"`: not encodable as UTF-8, so neither database driver can send it).
- JSON nests at most `MAX_DEPTH` levels (orjson cannot write deeper than 254, the standard
  library recurses), numbers are finite and integers fit 64 bits (what orjson can write back).
- Dates and times lie within `EARLIEST`..`LATEST` (years 1900 to 9998, in UTC) and carry an offset
  within ±15:59. Python's datetime reads years 1 to 9999, PostgreSQL's timestamptz refuses offsets
  beyond ±15:59 and gives back dates before year 1 as BC, which Python cannot read: a time near
  either end of the calendar, moved into UTC, may cross these limits; the window keeps a margin.

Each check raises `Unstorable` (a `BadRequest`) naming the offending field by its path, such as
`batch[3].properties.items[0].quantity`; the doors answer it with a 400 in their own shape.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.dateparse import parse_datetime

from core.bad_request import BadRequest

MAX_DEPTH = 32
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9998, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
WINDOW = "years 1900 to 9998"
MAX_OFFSET = timedelta(hours=15, minutes=59)
INT_MIN, INT_MAX = -(2**63), 2**64 - 1  # orjson writes signed and unsigned 64-bit integers


class Unstorable(BadRequest):
    """Input the database could not store or read back; `field` is the path to it."""


def text_problem(value: str) -> str | None:
    """Why `value` cannot be stored, or None."""
    if "\x00" in value:
        return "contains the NUL character (\\u0000)"
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError:
            return "contains an unpaired surrogate (such as \\ud800)"
    return None


def check_text(value: str, *, field: str) -> str:
    problem = text_problem(value)
    if problem is not None:
        raise Unstorable(f"{field} {problem}, which cannot be stored.", field=field)
    return value


def check_json(
    value: object,
    *,
    field: str = "",
    max_depth: int = MAX_DEPTH,
    texts: bool = True,
    source: bytes | None = None,
) -> None:
    """Refuse a JSON value (as parsed) nested deeper than `max_depth` levels (a bare value is
    level 0, the outermost object or array level 1), with a non-finite number or an integer
    beyond 64 bits, or — unless `texts=False`, when the caller knows there is none — text or a
    key with NUL or an unpaired surrogate. One pass; the path is built only for an error.

    `source` is the JSON text that orjson read `value` from: orjson reads an integer beyond 64
    bits as a float, losing digits silently, so a float that large (rare) has the text read
    again exactly by the standard library, to find such an integer."""
    found = _problem(value, max_depth, texts, source is not None)
    if found is not None and found[1] is _MAYBE_BIG_INTEGER:
        found = _problem(json.loads(source or b""), max_depth, texts, False)
    if found is None:
        return
    steps, problem = found
    path = field
    for step in reversed(steps):
        if isinstance(step, int):
            path += f"[{step}]"
        else:
            path += f".{step}" if path else step
    name = path or "The body"
    raise Unstorable(f"{name} {problem}.", field=path or None)


def _shown(key: str) -> str:
    # The key itself cannot be stored, nor always sent back (a surrogate): show it escaped.
    return repr(key)[1:-1]


_MAYBE_BIG_INTEGER = "may be an integer beyond 64 bits"


def _problem(
    value: Any, room: int, texts: bool, big_floats: bool
) -> tuple[list[str | int], str] | None:
    kind = type(value)
    if kind is str:
        if texts:
            problem = text_problem(value)
            if problem is not None:
                return [], problem
        return None
    if kind is dict or kind is list:
        if room <= 0:
            return [], f"is nested too deep: the limit is {MAX_DEPTH} levels"
        pairs = value.items() if kind is dict else enumerate(value)
        for key, item in pairs:
            if texts and type(key) is str:
                problem = text_problem(key)
                if problem is not None:
                    return [_shown(key)], f"is a key that {problem}"
            found = _problem(item, room - 1, texts, big_floats)
            if found is not None:
                found[0].append(key)
                return found
        return None
    if kind is float:
        if not math.isfinite(value):
            return [], "is not a finite number"
        return ([], _MAYBE_BIG_INTEGER) if big_floats and abs(value) >= 2**63 else None
    if kind is int:
        return None if INT_MIN <= value <= INT_MAX else ([], "is beyond the 64-bit integer range")
    return None


def check_datetime(value: datetime, *, field: str) -> datetime:
    """`value` if it has an offset within ±15:59 and lies within the window."""
    offset = value.utcoffset()
    if offset is None:
        raise Unstorable(f"{field} needs a time zone offset (e.g. Z or +02:00).", field=field)
    if abs(offset) > MAX_OFFSET:
        raise Unstorable(
            f"{field} has a time zone offset beyond ±15:59, which no time zone uses.", field=field
        )
    if not EARLIEST <= value <= LATEST:
        raise Unstorable(f"{field} is outside the {WINDOW}.", field=field)
    return value


def check_date(value: date, *, field: str) -> date:
    if not EARLIEST.year <= value.year <= LATEST.year:
        raise Unstorable(f"{field} is outside the {WINDOW}.", field=field)
    return value


def parse_iso_datetime(raw: str, *, field: str) -> datetime:
    """An ISO-8601 date and time with an offset, within the window; Unstorable says what is
    wrong (an impossible date such as 2026-02-30 included)."""
    check_text(raw, field=field)
    raw = raw.strip()
    try:
        # fromisoformat (C) reads what SDKs send; parse_datetime covers the rest of ISO 8601.
        parsed: datetime | None = datetime.fromisoformat(raw)
    except ValueError:
        try:
            parsed = parse_datetime(raw)
        except ValueError:  # a well-formed impossible date or offset: 2026-02-30, +99:00
            parsed = None
    if parsed is None:
        raise Unstorable(f"{field} “{raw[:40]}” is not an ISO-8601 date and time.", field=field)
    return check_datetime(parsed, field=field)


def clamp_datetime(value: datetime) -> datetime:
    """`value` moved into the window (for times computed from two valid ones)."""
    return min(max(value, EARLIEST), LATEST)


# C0 and C1 control characters (line breaks and tabs included) and Unicode's line separators.
CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def validate_single_line(value: str) -> None:
    """A model or form validator for text that ends up in a header (a sender's name)."""
    if CONTROL_CHARACTERS.search(value):
        raise ValidationError(
            "Line breaks and other control characters are not allowed here.",
            code="control_character",
        )


def single_line(value: str) -> str:
    """`value` with control characters as spaces, for text stored before it was validated."""
    return " ".join(CONTROL_CHARACTERS.sub(" ", value).split())
