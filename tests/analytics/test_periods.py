"""The period picker: presets, custom ranges, and going back from a custom range to a preset."""

from __future__ import annotations

from datetime import date

from analytics.periods import period_from

TODAY = date(2026, 12, 7)


def test_a_preset_is_the_last_n_days_today_included() -> None:
    period, form = period_from({"range": "7"}, today=TODAY)
    assert not form.errors
    assert (period.range, period.start, period.end) == ("7", date(2026, 12, 1), TODAY)


def test_dates_typed_under_an_untouched_preset_mean_a_custom_range() -> None:
    period, form = period_from(
        {"range": "30", "shown": "30", "start": "2026-11-01", "end": "2026-11-15"}, today=TODAY
    )
    assert not form.errors
    assert (period.range, period.start, period.end) == (
        "custom",
        date(2026, 11, 1),
        date(2026, 11, 15),
    )


def test_ticking_a_preset_on_a_custom_range_leaves_the_range() -> None:
    # The custom page keeps its dates in the form; the user ticks "Last 7 days" and clicks Show.
    query = {"range": "7", "shown": "custom", "start": "2026-11-01", "end": "2026-11-15"}
    period, form = period_from(query, today=TODAY)
    assert not form.errors
    assert (period.range, period.start, period.end) == ("7", date(2026, 12, 1), TODAY)


def test_ticking_a_preset_forgets_a_bad_date_still_in_the_form() -> None:
    period, form = period_from({"range": "90", "shown": "custom", "start": "nope"}, today=TODAY)
    assert not form.errors
    assert period.range == "90"


def test_a_bad_custom_range_says_what_is_wrong() -> None:
    _, form = period_from(
        {"range": "custom", "shown": "custom", "start": "2026-11-15", "end": "2026-11-01"},
        today=TODAY,
    )
    assert "The last day must not come before the first." in form.errors["end"]
