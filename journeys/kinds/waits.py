"""Waits: hold an enrollment over time. The engine keeps the wait in the database (`due_at`,
`wait_event`), never in a task countdown."""

from __future__ import annotations

from journeys.kinds.triggers import UNITS
from journeys.node_kinds import Category, Field, NodeKind, register

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
