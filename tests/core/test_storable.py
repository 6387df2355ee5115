"""The storable checks every door applies: text, JSON nesting and numbers, times and dates."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from django.core.exceptions import ValidationError

from core.storable import (
    MAX_DEPTH,
    Unstorable,
    check_date,
    check_json,
    parse_iso_datetime,
    single_line,
    validate_single_line,
)


def nested(levels: int) -> object:
    value: object = 1
    for _ in range(levels):
        value = {"a": value}
    return value


def test_it_allows_the_documented_depth_and_refuses_one_level_more() -> None:
    check_json(nested(MAX_DEPTH))
    with pytest.raises(Unstorable, match="nested too deep") as refused:
        check_json(nested(MAX_DEPTH + 1))
    assert refused.value.field == ".".join(["a"] * MAX_DEPTH)


@pytest.mark.parametrize(
    ("value", "field", "problem"),
    [
        (
            {"batch": [{}, {"properties": {"items": [{"q": float("inf")}]}}]},
            "batch[1].properties.items[0].q",
            "finite",
        ),
        ({"n": float("nan")}, "n", "finite"),
        ({"n": 2**64}, "n", "64-bit"),
        ({"n": -(2**63) - 1}, "n", "64-bit"),
        ({"t": ["ok", "a\x00"]}, "t[1]", "NUL"),
        ({"t": "\ud800"}, "t", "surrogate"),
        ({"a\x00b": 1}, "a\\x00b", "key"),
        ({"\udc00": 1}, "\\udc00", "key"),
    ],
)
def test_it_names_the_path_to_what_cannot_be_stored(
    value: object, field: str, problem: str
) -> None:
    with pytest.raises(Unstorable, match=problem) as refused:
        check_json(value)
    assert refused.value.field == field


def test_it_takes_what_can_be_stored() -> None:
    check_json({"s": "é ✓ 🎉", "n": [2**64 - 1, -(2**63), 1.5e308, True, None], "": {}})


def test_it_skips_the_text_scan_when_told_there_is_no_nul() -> None:
    check_json({"t": "a\x00"}, texts=False)  # orjson's bodies: NUL only when escaped


@pytest.mark.parametrize(
    "raw",
    [
        "9999-12-31T23:59:59-12:00",
        "0001-01-01T00:00:00+14:00",
        "1899-12-31T23:59:59Z",
        "9999-01-01T00:00:00Z",
        "2026-01-01T00:00:00+16:00",
        "2026-01-01T00:00:00-23:59",
        "2026-02-30T00:00:00Z",
        "+275760-09-13T00:00:00Z",
        "2026-01-01T00:00:00",
        "2026-01-01",
        "soon",
        "2026\x00",
    ],
)
def test_it_refuses_times_outside_the_window_or_without_a_sane_offset(raw: str) -> None:
    with pytest.raises(Unstorable) as refused:
        parse_iso_datetime(raw, field="since")
    assert refused.value.field == "since"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1900-01-01T00:00:00Z", datetime(1900, 1, 1, tzinfo=UTC)),
        ("9998-12-31T23:59:59Z", datetime(9998, 12, 31, 23, 59, 59, tzinfo=UTC)),
        ("2026-03-01T12:00:00+15:59", datetime(2026, 2, 28, 20, 1, tzinfo=UTC)),
        (" 2026-03-01T12:00:00.123Z ", datetime(2026, 3, 1, 12, 0, 0, 123000, tzinfo=UTC)),
    ],
)
def test_it_reads_times_within_the_window(raw: str, expected: datetime) -> None:
    assert parse_iso_datetime(raw, field="t") == expected


def test_it_checks_dates_by_year() -> None:
    assert check_date(date(1900, 1, 1), field="d") == date(1900, 1, 1)
    with pytest.raises(Unstorable):
        check_date(date(9999, 1, 1), field="d")


@pytest.mark.parametrize("name", ["Acme\nBcc: x@example.com", "A\rB", "A\tB", "A\x85B", "A\u2028B"])
def test_a_single_line_refuses_control_characters_and_can_make_them_spaces(name: str) -> None:
    with pytest.raises(ValidationError):
        validate_single_line(name)
    assert "\n" not in single_line(name) and single_line(name).startswith("A")
    validate_single_line(single_line(name))
