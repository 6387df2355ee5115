"""Goal and exit."""

from __future__ import annotations

from journeys.kinds.triggers import UNITS
from journeys.node_kinds import Category, Field, NodeKind, register


@register
class Goal(NodeKind):
    key = "goal"
    label = "Goal"
    description = (
        "A conversion: the event within the window after entering counts the conversion and its"
        " revenue, wherever the contact is in the journey."
    )
    category = Category.GOAL
    waits = True
    static_ports = ("converted", "timeout")
    port_labels = {"converted": "Converted", "timeout": "Not converted"}
    fields = (
        Field("event", "Conversion event", "event", required=True, default="Order Completed"),
        Field("amount", "Within", "int", required=True, default=7, minimum=1, maximum=100_000),
        Field("unit", "Unit", "choice", required=True, default="days", choices=UNITS),
        Field("revenue_property", "Revenue from property", "text", default="revenue"),
    )


@register
class Exit(NodeKind):
    key = "exit"
    label = "Exit"
    category = Category.EXIT
    static_ports = ()
