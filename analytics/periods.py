"""The period an analytics page shows: the picker (the last 7, 30 or 90 of the team's local
days, or a custom range, validated) and the comparison (the previous period of the same
length), with the dates written as people read them.

    period_from(data, *, today) -> (Period, PeriodForm)   an invalid range: the default, and why
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from typing import Any

from django import forms

RANGES = [
    ("7", "Last 7 days"),
    ("30", "Last 30 days"),
    ("90", "Last 90 days"),
    ("custom", "Custom"),
]
DEFAULT_RANGE = "30"
MAX_DAYS = 366  # a custom range: at most a year (and its comparison year) per page


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive
    range: str = "custom"  # one of RANGES' keys

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def previous(self) -> Period:
        """The comparison: the same number of days just before."""
        end = self.start - timedelta(days=1)
        return Period(start=end - timedelta(days=self.days - 1), end=end, range=self.range)

    def dates(self) -> tuple[date, ...]:
        return _dates(self.start, self.end)

    @property
    def label(self) -> str:
        return date_range_label(self.start, self.end)

    @property
    def comparison_words(self) -> str:
        """How the cards name the comparison: "the previous 30 days"."""
        return "the previous day" if self.days == 1 else f"the previous {self.days} days"


@lru_cache(maxsize=64)
def _dates(start: date, end: date) -> tuple[date, ...]:
    """Every day of [start, end]: a page asks for its periods' days dozens of times."""
    return tuple(start + timedelta(days=i) for i in range((end - start).days + 1))


# English month abbreviations, as the rest of the product writes dates ("7 Dec 2026"), without
# the locale lookup strftime makes for each of a year's thousands of labels.
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def date_label(day: date, *, year: bool = True) -> str:
    text = f"{day.day} {MONTHS[day.month - 1]}"
    return f"{text} {day.year}" if year else text


def date_range_label(start: date, end: date) -> str:
    if start == end:
        return date_label(start)
    return f"{date_label(start, year=start.year != end.year)} \u2013 {date_label(end)}"


class PeriodForm(forms.Form):
    range = forms.ChoiceField(label="Period", choices=RANGES, required=False)
    start = forms.DateField(label="From", required=False, widget=forms.DateInput({"type": "date"}))
    end = forms.DateField(label="To", required=False, widget=forms.DateInput({"type": "date"}))
    # The period the page showed: a different tick means the user chose it over the dates
    # still filled in from a custom range.
    shown = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, today: date, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.today = today
        for name in ("start", "end"):
            self.fields[name].widget.attrs["max"] = today.isoformat()

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        chosen = data.get("range") or DEFAULT_RANGE
        start, end = data.get("start"), data.get("end")
        shown = data.get("shown") or ""
        if chosen != "custom" and shown and shown != chosen:
            # Ticked 7/30/90 days on a page that showed another period: that, not the dates.
            for name in ("start", "end"):
                self.errors.pop(name, None)
            data["range"] = chosen
            return data
        if chosen != "custom" and (start or end or self.errors):
            # Dates typed in mean a custom range, whichever period was ticked: the picker
            # leaves the date fields empty for 7/30/90 days (so those links stay "the last n
            # days" when bookmarked), and someone who typed dates wants them.
            chosen = "custom"
        data["range"] = chosen
        if chosen != "custom" or self.errors:
            return data
        if start is None:
            self.add_error("start", "Choose the first day of the range.")
        if end is None:
            self.add_error("end", "Choose the last day of the range.")
        if start is None or end is None:
            return data
        if start > end:
            self.add_error("end", "The last day must not come before the first.")
        elif end > self.today:
            self.add_error("end", f"The last day can be today ({date_label(self.today)}) at most.")
        elif (end - start).days + 1 > MAX_DAYS:
            self.add_error("end", f"Choose at most {MAX_DAYS} days.")
        return data


def period_from(data: Mapping[str, Any], *, today: date) -> tuple[Period, PeriodForm]:
    """The period a page's query string asks for, and the bound form (with its errors: an
    invalid range falls back to the default period, and the page says why)."""
    form = PeriodForm({k: data.get(k, "") for k in ("range", "start", "end", "shown")}, today=today)
    if form.is_valid():
        chosen = form.cleaned_data["range"]
        if chosen == "custom":
            return Period(form.cleaned_data["start"], form.cleaned_data["end"], "custom"), form
    else:
        chosen = DEFAULT_RANGE
    days = int(chosen if chosen != "custom" else DEFAULT_RANGE)
    return Period(today - timedelta(days=days - 1), today, chosen), form
