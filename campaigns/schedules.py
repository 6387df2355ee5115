"""When a campaign sends: pure functions over its schedule fields (no database).

Recurring: a crontab (minute, hour, day of week, day of month, month) read in the team's time
zone, as django-celery-beat's CrontabSchedule reads it. A slot is one scheduled moment, held in
UTC; an occurrence's key is its slot (`slot_key`), so a slot runs once however often it is
fired. Days of week and of month must both match (celery's reading, not cron's "either").
Local times that do not exist (clocks spring forward over them) fall at the same UTC offset as
before the change (02:30 on that day is 03:30 summer time); those that happen twice (clocks
fall back) are taken the first time.

Local: `local_date` at `local_time` in each recipient's zone, else the team's
(`local_moments`).
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from celery.schedules import ParseException, crontab_parser

# (field, largest value, smallest value, what a marketer would call it)
CRON_FIELDS = (
    ("cron_minute", 60, 0, "minute"),
    ("cron_hour", 24, 0, "hour"),
    ("cron_day_of_week", 7, 0, "day of the week"),
    ("cron_day_of_month", 31, 1, "day of the month"),
    ("cron_month_of_year", 12, 1, "month"),
)
CRON_DEFAULTS = {
    "cron_minute": "0",  # "every hour" means on the hour, not every minute of it
    "cron_hour": "*",
    "cron_day_of_week": "*",
    "cron_day_of_month": "*",
    "cron_month_of_year": "*",
}
SEARCH_DAYS = 366 * 5  # 29 February comes round within five years


def zone(name: str) -> tzinfo:
    """The IANA zone `name`, UTC when it is empty or unknown."""
    try:
        return zoneinfo.ZoneInfo(name) if name else UTC
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return UTC


def cron_values(fields: dict[str, Any]) -> dict[str, str]:
    """The five crontab fields as celery reads them (blank ones filled in)."""
    return {
        name: (str(fields.get(name) or "").strip() or CRON_DEFAULTS[name])
        for name, *_ in CRON_FIELDS
    }


def cron_errors(fields: dict[str, Any]) -> dict[str, str]:
    """{field: message} for crontab fields celery cannot read."""
    errors = {}
    values = cron_values(fields)
    for name, largest, smallest, label in CRON_FIELDS:
        try:
            crontab_parser(largest, smallest).parse(values[name])
        except (ValueError, ParseException) as exc:
            errors[name] = f"Not a valid {label}: {exc}"
    return errors


def _sets(fields: dict[str, Any]) -> list[set[int]]:
    values = cron_values(fields)
    return [
        set(crontab_parser(largest, smallest).parse(values[name]))
        for name, largest, smallest, _ in CRON_FIELDS
    ]


def _day_matches(day: date, dows: set[int], doms: set[int], months: set[int]) -> bool:
    # celery counts days of the week from Sunday = 0; Python's weekday() from Monday = 0.
    return day.month in months and day.day in doms and (day.weekday() + 1) % 7 in dows


def _local(day: date, hour: int, minute: int, tz: tzinfo) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz).astimezone(UTC)


def slot_latest(fields: dict[str, Any], tz: tzinfo, at: datetime) -> datetime | None:
    """The latest slot at or before `at` (UTC), or None within SEARCH_DAYS."""
    minutes, hours, dows, doms, months = _sets(fields)
    today = at.astimezone(tz).date()
    for back in range(SEARCH_DAYS):
        day = today - timedelta(days=back)
        if not _day_matches(day, dows, doms, months):
            continue
        for hour in sorted(hours, reverse=True):
            for minute in sorted(minutes, reverse=True):
                moment = _local(day, hour, minute, tz)
                if moment <= at:
                    return moment
    return None


def slot_next(
    fields: dict[str, Any], tz: tzinfo, after: datetime, until: datetime | None = None
) -> datetime | None:
    """The first slot strictly after `after` (UTC), or None (none before `until`)."""
    minutes, hours, dows, doms, months = _sets(fields)
    today = after.astimezone(tz).date()
    for ahead in range(-1, SEARCH_DAYS):  # from yesterday: a zone behind UTC
        day = today + timedelta(days=ahead)
        if not _day_matches(day, dows, doms, months):
            continue
        for hour in sorted(hours):
            for minute in sorted(minutes):
                moment = _local(day, hour, minute, tz)
                if moment > after:
                    return None if until is not None and moment > until else moment
    return None


def slot_key(slot: datetime) -> str:
    """An occurrence's key: the slot's UTC time to the minute ("2026-03-29T07:00Z")."""
    return slot.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


def local_moment(day: date, at: time, tz: tzinfo) -> datetime:
    """`day` at `at` on the clocks of `tz`, in UTC (see the module's note on DST)."""
    return datetime.combine(day, at.replace(tzinfo=None)).replace(tzinfo=tz).astimezone(UTC)


def local_moments(day: date, at: time, zones: Iterable[str], default: str) -> dict[str, datetime]:
    """{zone name: the moment} for each of `zones`; "" and unknown names get the team's
    (`default`)."""
    fallback = local_moment(day, at, zone(default))
    moments = {"": fallback}
    for name in zones:
        if name in moments:
            continue
        try:
            moments[name] = local_moment(day, at, zoneinfo.ZoneInfo(name))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            moments[name] = fallback
    return moments


def sto_moment(start: datetime, hour_utc: int, window_hours: int) -> datetime:
    """The first time at or after `start` when the UTC clock shows `hour_utc`:00, if it comes
    within `window_hours`; else `start` (send-time optimisation within its window)."""
    moment = start.astimezone(UTC).replace(hour=hour_utc, minute=0, second=0, microsecond=0)
    if moment < start:
        moment += timedelta(days=1)
    return moment if moment - start <= timedelta(hours=window_hours) else start
