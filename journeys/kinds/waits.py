"""Waits: hold an enrollment over time. The engine keeps the wait in the database (`due_at`,
`wait_event`), never in a task countdown."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from journeys.kinds.triggers import UNITS, duration, parse_time, properties_match, validate_fields
from journeys.node_kinds import (
    Category,
    Field,
    Follow,
    NodeKind,
    NodeSettingsError,
    Outcome,
    StepContext,
    Wait,
    register,
)

# wait_event's "the same …": the property compared, and the ones read for it (first found).
MATCH_PROPERTIES = {
    "cart": ("cart_id", ("cart_id",)),
    "product": ("product_id", ("product_id", "sku")),
    "order": ("order_id", ("order_id",)),
}


def zone_of(contact: Any, tenant: Any) -> ZoneInfo:
    """The contact's time zone, else the tenant's, else UTC (DESIGN §8)."""
    for name in (getattr(contact, "timezone", ""), getattr(tenant, "timezone", "")):
        if name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def local_moment(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The instant (UTC) when it is `at` on `day` in `zone`. A wall time that happens twice
    (autumn) is its first occurrence; one that does not happen (the spring-forward gap) moves
    to the first instant after the gap: 02:30 on a New York spring-forward day is 03:00 EDT."""
    naive = datetime.combine(day, at)
    first = naive.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == naive:
        return first
    # In the gap: fold=0 reads it with the offset before the change (an instant after the
    # gap), fold=1 with the one after (an instant before it); the change lies between them.
    low = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
    high = first
    offset_low = low.astimezone(zone).utcoffset()
    while high - low > timedelta(seconds=1):
        mid = low + (high - low) / 2
        if mid.astimezone(zone).utcoffset() == offset_low:
            low = mid
        else:
            high = mid
    return high.replace(microsecond=0)


def next_in_window(
    at: datetime, zone: ZoneInfo, days: set[int], start: time, end: time
) -> datetime:
    """`at` if it is inside the window (a weekday of `days`, local time in [start, end)), else
    the window's next opening. An `end` at or before `start` means the window runs past
    midnight (22:00 to 06:00, its day being the evening's)."""
    local_day = at.astimezone(zone).date()
    for offset in range(-1, 9):
        day = local_day + timedelta(days=offset)
        if day.weekday() not in days:
            continue
        opens = local_moment(day, start, zone)
        closes = local_moment(day + timedelta(days=1 if end <= start else 0), end, zone)
        if opens <= at < closes:
            return at
        if opens > at:
            return opens
    raise ValueError("no day of the week chosen")


WEEKDAYS = (
    ("0", "Mon"),
    ("1", "Tue"),
    ("2", "Wed"),
    ("3", "Thu"),
    ("4", "Fri"),
    ("5", "Sat"),
    ("6", "Sun"),
)


@register
class DelayWait(NodeKind):
    key = "wait_delay"
    label = "Wait"
    category = Category.WAIT
    waits = True
    fields = (
        Field("amount", "Wait", "int", required=True, default=1, minimum=1, maximum=100_000),
        Field("unit", "Unit", "choice", required=True, default="days", choices=UNITS),
    )

    def validate(self, settings: dict[str, Any]) -> dict[str, Any]:
        return validate_fields(self, settings)

    def describe(self, settings: dict[str, Any]) -> str:
        amount, unit = settings.get("amount", 1), settings.get("unit", "days")
        return f"Wait {amount} {unit[:-1] if str(amount) == '1' else unit}"

    def execute(self, step: StepContext) -> Outcome:
        until = step.enrollment.arrived_at + duration(step.node.settings)
        if step.now >= until:
            return Follow("next")
        return Wait(until, detail={"until": until.isoformat()})


@register
class WindowWait(NodeKind):
    key = "wait_window"
    label = "Wait for a time window"
    description = "Holds until the contact's local time is inside the window."
    category = Category.WAIT
    waits = True
    fields = (
        Field(
            "days",
            "On",
            "multichoice",
            required=True,
            default=["0", "1", "2", "3", "4"],
            choices=WEEKDAYS,
        ),
        Field("start", "From", "time", required=True, default="09:00"),
        Field("end", "Until", "time", required=True, default="17:00"),
    )

    def validate(self, settings: dict[str, Any]) -> dict[str, Any]:
        clean = validate_fields(self, settings)
        days = clean.get("days")
        valid = {c for c, _ in WEEKDAYS}
        if not isinstance(days, list) or not days or not {str(d) for d in days} <= valid:
            raise NodeSettingsError({"days": "Choose at least one day of the week."})
        clean["days"] = sorted({str(d) for d in days})
        if clean["start"] == clean["end"]:
            raise NodeSettingsError({"end": "The window must not start and end at the same time."})
        return clean

    def describe(self, settings: dict[str, Any]) -> str:
        names = dict(WEEKDAYS)
        days = ", ".join(names.get(str(d), str(d)) for d in settings.get("days", []))
        return f"Wait until {days} {settings.get('start', '')} to {settings.get('end', '')} local"

    def execute(self, step: StepContext) -> Outcome:
        s = step.node.settings
        zone = zone_of(step.contact, step.tenant)
        at = max(step.now, step.enrollment.arrived_at)
        opens = next_in_window(
            at, zone, {int(d) for d in s["days"]}, parse_time(s["start"]), parse_time(s["end"])
        )
        if opens <= step.now:
            return Follow("next")
        return Wait(opens, detail={"until": opens.isoformat(), "zone": zone.key})


@register
class EventWait(NodeKind):
    key = "wait_event"
    label = "Wait for an event"
    description = (
        "Goes on as soon as the contact does the event, or by “timeout” when time runs out."
    )
    category = Category.WAIT
    waits = True
    static_ports = ("event", "timeout")
    port_labels = {"event": "Did it", "timeout": "Timed out"}
    fields = (
        Field("event", "Event", "event", required=True, help="e.g. Order Completed"),
        Field(
            "amount", "Wait at most", "int", required=True, default=1, minimum=1, maximum=100_000
        ),
        Field("unit", "Unit", "choice", required=True, default="days", choices=UNITS),
        Field(
            "match",
            "The same",
            "choice",
            default="",
            choices=(("", "any"), ("cart", "cart"), ("product", "product"), ("order", "order")),
            help="Only an event about the same cart, product or order as the one that started it.",
        ),
        Field("filters", "Only when", "filters", default=[]),
    )

    def validate(self, settings: dict[str, Any]) -> dict[str, Any]:
        clean = validate_fields(self, settings)
        clean.setdefault("match", "")
        clean.setdefault("filters", [])
        return clean

    def describe(self, settings: dict[str, Any]) -> str:
        same = f" (same {settings['match']})" if settings.get("match") else ""
        amount, unit = settings.get("amount", 1), settings.get("unit", "days")
        return f"Wait for “{settings.get('event', '…')}”{same}, at most {amount} {unit}"

    def execute(self, step: StepContext) -> Outcome:
        s = step.node.settings
        if step.woken_by is not None and woken_matches(step, s["event"], s.get("filters") or []):
            return Follow("event", detail={"event": step.woken_by.get("name", s["event"])})
        until = step.enrollment.arrived_at + duration(s)
        if step.now >= until:
            return Follow("timeout")
        match = wait_match(s.get("match") or "", step.enrollment.context)
        return Wait(
            until,
            event=s["event"],
            match=match,
            event_port="event",
            timeout_port="timeout",
            detail={"until": until.isoformat(), "event": s["event"], "match": match},
        )


def wait_match(kind: str, context: dict[str, Any]) -> dict[str, Any]:
    """What a keyed wait compares: {"cart_id": "c-1"} from the triggering event's properties
    ({} when not keyed, or when the triggering event carries no such property)."""
    if kind not in MATCH_PROPERTIES:
        return {}
    key, sources = MATCH_PROPERTIES[kind]
    properties = (context.get("event") or {}).get("properties") or {}
    for name in sources:
        value = properties.get(name) if isinstance(properties, dict) else None
        if value not in (None, ""):
            return {key: str(value)}
    return {}


def match_holds(match: dict[str, Any], properties: object) -> bool:
    """Whether an event's properties carry the values a keyed wait waits for."""
    props = properties if isinstance(properties, dict) else {}
    for key, wanted in match.items():
        sources = next((s for k, s in MATCH_PROPERTIES.values() if k == key), (key,))
        found = next((props[n] for n in sources if props.get(n) not in (None, "")), None)
        if found is None or str(found) != str(wanted):
            return False
    return True


def woken_matches(step: StepContext, event: str, filters: list[dict[str, Any]]) -> bool:
    woken = step.woken_by or {}
    if woken.get("name") != event:
        return False
    properties = woken.get("properties") or {}
    return match_holds(step.enrollment.wait_match or {}, properties) and properties_match(
        properties, filters
    )
