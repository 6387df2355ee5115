"""Branches: choose a port for one contact, now."""

from __future__ import annotations

from journeys.node_kinds import Category, Field, NodeKind, register


class Branch(NodeKind):
    category = Category.BRANCH
    static_ports = ("yes", "no")
    port_labels = {"yes": "Yes", "no": "No"}


@register
class ConditionBranch(Branch):
    key = "branch_condition"
    label = "If the contact matches"
    description = "Any segment condition, for this contact, now."
    fields = (Field("rules", "Condition", "rules", required=True),)


@register
class EventBranch(Branch):
    key = "branch_event"
    label = "If an event happened"
    fields = (
        Field("event", "Event", "event", required=True),
        Field(
            "since",
            "Since",
            "choice",
            required=True,
            default="entered",
            choices=(("entered", "they entered this journey"), ("days", "the last days")),
        ),
        Field("days", "Days", "int", default=7, minimum=1, maximum=3650),
        Field("filters", "Only when", "filters", default=[]),
    )


@register
class SplitBranch(NodeKind):
    key = "branch_split"
    label = "Random split"
    description = "Sends each contact down one path at random, by percentage."
    category = Category.BRANCH
    fields = (Field("percentages", "Paths (%)", "percentages", required=True, default=[50, 50]),)
