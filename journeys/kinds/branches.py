"""Branches: choose a port for one contact, now."""

from __future__ import annotations

import hashlib
import string
from datetime import timedelta
from typing import Any

from journeys.kinds.triggers import properties_match, validate_fields
from journeys.node_kinds import (
    Category,
    Field,
    Follow,
    NodeKind,
    NodeSettingsError,
    Outcome,
    StepContext,
    register,
)

MAX_EVENTS_READ = 500  # branch_event reads at most this many of the contact's newest events


class Branch(NodeKind):
    category = Category.BRANCH
    static_ports = ("yes", "no")
    port_labels = {"yes": "Yes", "no": "No"}


def rules_validate(tree: object, path: str = "", depth: int = 0) -> dict[str, Any]:
    """A segments rule tree checked through the condition registry (segments' public module):
    groups here, each condition by its kind. Referenced segments are checked when they are
    evaluated (a segment of another tenant never matches)."""
    from segments import registry

    if not isinstance(tree, dict):
        raise registry.RuleError("must be an object.", path=path)
    if tree.get("type") == "group":
        registry.require(depth < 5, "groups nest at most 5 deep.", path)
        children = tree.get("children")
        registry.require(
            isinstance(children, list) and bool(children), "a group needs conditions.", path
        )
        assert isinstance(children, list)
        match = tree.get("match", "all")
        registry.require(match in ("all", "any"), "match must be all or any.", path)
        return {
            "type": "group",
            "match": match,
            "negate": bool(tree.get("negate", False)),
            "children": [
                rules_validate(child, f"{path}.{i}" if path else str(i), depth + 1)
                for i, child in enumerate(children)
            ],
        }
    if depth == 0:
        raise registry.RuleError("The rules must start with a group (all / any).")
    kind = tree.get("type")
    if not isinstance(kind, str) or kind not in registry.names():
        raise registry.RuleError(f"“{kind}” is not a kind of condition.", path=path)
    return registry.get(kind).validate(tree, path)


@register
class ConditionBranch(Branch):
    key = "branch_condition"
    label = "If the contact matches"
    description = "Any segment condition, for this contact, now."
    fields = (Field("rules", "Condition", "rules", required=True),)

    def validate(self, settings: dict[str, Any]) -> dict[str, Any]:
        from segments.registry import RuleError

        clean = NodeKind.validate(self, settings)
        try:
            clean["rules"] = rules_validate(clean["rules"])
        except RuleError as exc:
            raise NodeSettingsError({"rules": str(exc)}) from None
        return clean

    def describe(self, settings: dict[str, Any]) -> str:
        return "If the contact matches the condition"

    def execute(self, step: StepContext) -> Outcome:
        from segments.registry import contact_matches

        matched = contact_matches(
            tenant=step.tenant,
            rules=step.node.settings["rules"],
            contact=step.contact,
            now=step.now,
        )
        return Follow("yes" if matched else "no")


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

    def validate(self, settings: dict[str, Any]) -> dict[str, Any]:
        clean = validate_fields(self, settings)
        clean.setdefault("filters", [])
        return clean

    def describe(self, settings: dict[str, Any]) -> str:
        since = (
            f"in the last {settings.get('days', 7)} days"
            if settings.get("since") == "days"
            else "since entering"
        )
        return f"If “{settings.get('event', '…')}” happened {since}"

    def execute(self, step: StepContext) -> Outcome:
        from audience.models import Event

        s = step.node.settings
        since = (
            step.now - timedelta(days=int(s.get("days") or 7))
            if s.get("since") == "days"
            else step.enrollment.entered_at
        )
        events = Event.objects.filter(
            tenant=step.tenant,
            contact_id=step.contact.pk,
            name=s["event"],
            occurred_at__gte=since,
            occurred_at__lte=step.now,
        )
        filters = s.get("filters") or []
        if not filters:
            return Follow("yes" if events.exists() else "no")
        properties = events.order_by("-occurred_at").values_list("properties", flat=True)
        found = any(properties_match(p, filters) for p in properties[:MAX_EVENTS_READ])
        return Follow("yes" if found else "no")


def split_port(seed: str, percentages: list[int]) -> str:
    """The port ("a", "b", …) a seed falls in: the same seed always gives the same port."""
    point = int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "big") % 100
    total = 0
    for letter, share in zip(string.ascii_lowercase, percentages, strict=False):
        total += share
        if point < total:
            return letter
    return string.ascii_lowercase[len(percentages) - 1]


@register
class SplitBranch(NodeKind):
    key = "branch_split"
    label = "Random split"
    description = "Sends each contact down one path at random, by percentage."
    category = Category.BRANCH
    fields = (Field("percentages", "Paths (%)", "percentages", required=True, default=[50, 50]),)

    def ports(self, settings: dict[str, Any]) -> list[str]:
        shares = settings.get("percentages") or [50, 50]
        return list(string.ascii_lowercase[: max(2, min(5, len(shares)))])

    def port_label(self, port: str, settings: dict[str, Any]) -> str:
        shares = settings.get("percentages") or []
        index = string.ascii_lowercase.index(port) if port in string.ascii_lowercase else -1
        if 0 <= index < len(shares):
            return f"{port.upper()} ({shares[index]}%)"
        return port.upper()

    def validate(self, settings: dict[str, Any]) -> dict[str, Any]:
        clean = NodeKind.validate(self, settings)
        shares = clean["percentages"]
        if (
            not isinstance(shares, list)
            or not 2 <= len(shares) <= 5
            or not all(isinstance(s, int) and not isinstance(s, bool) for s in shares)
        ):
            raise NodeSettingsError({"percentages": "Give 2 to 5 whole percentages."})
        if any(s < 0 for s in shares) or sum(shares) != 100:
            raise NodeSettingsError({"percentages": "The percentages must add up to 100."})
        return clean

    def describe(self, settings: dict[str, Any]) -> str:
        shares = settings.get("percentages") or []
        return "Split " + " / ".join(f"{s}%" for s in shares)

    def execute(self, step: StepContext) -> Outcome:
        shares = step.node.settings["percentages"]
        port = split_port(f"{step.enrollment.public_id}:{step.node.key}", shares)
        return Follow(port)
