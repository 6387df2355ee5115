"""Goal and exit."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import TYPE_CHECKING, Any

from django.db import transaction

from journeys.kinds.triggers import UNITS, duration, properties_match, validate_fields
from journeys.node_kinds import (
    Category,
    Field,
    Finish,
    Follow,
    NodeKind,
    Outcome,
    StepContext,
    Wait,
    register,
)
from journeys.signals import conversion_recorded

if TYPE_CHECKING:
    from journeys.models import Enrollment


def revenue_of(properties: object, name: str) -> Decimal | None:
    props = properties if isinstance(properties, dict) else {}
    value = props.get(name) if name else None
    if value is None or isinstance(value, bool):
        return None
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        return None
    return amount if amount.is_finite() and abs(amount) < Decimal("1e12") else None


def conversion_record(
    enrollment: Enrollment, event: dict[str, Any], revenue_property: str, at: datetime
) -> None:
    """Count a conversion on the enrollment (once): when, and the revenue the event carries."""
    if enrollment.converted_at is not None:
        return
    occurred = event.get("occurred_at")
    enrollment.converted_at = datetime.fromisoformat(occurred) if occurred else at
    enrollment.revenue = revenue_of(event.get("properties"), revenue_property)
    if enrollment.pk is not None:  # a simulation's enrollment is never saved: nothing happened
        # Announced once the conversion is stored (never for a rolled-back step).
        transaction.on_commit(
            partial(
                conversion_recorded.send,
                sender=None,
                tenant_id=enrollment.tenant_id,
                enrollment_id=enrollment.pk,
                enrollment_public_id=enrollment.public_id,
                journey_id=enrollment.journey_id,
                contact_id=enrollment.contact_id,
                converted_at=enrollment.converted_at,
                revenue=enrollment.revenue,
                event=str(event.get("name") or ""),
            ),
            robust=True,
        )


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
        Field("filters", "Only when", "filters", default=[]),
    )

    def validate(self, settings: dict[str, Any]) -> dict[str, Any]:
        clean = validate_fields(self, settings)
        clean.setdefault("revenue_property", "")
        clean.setdefault("filters", [])
        return clean

    def describe(self, settings: dict[str, Any]) -> str:
        return (
            f"Goal: “{settings.get('event', '…')}” within {settings.get('amount', 7)}"
            f" {settings.get('unit', 'days')}"
        )

    def execute(self, step: StepContext) -> Outcome:
        s = step.node.settings
        e = step.enrollment
        woken = step.woken_by or {}
        if (
            e.converted_at is None
            and woken.get("name") == s["event"]
            and properties_match(woken.get("properties"), s.get("filters") or [])
        ):
            conversion_record(e, woken, s.get("revenue_property", "revenue") or "", step.now)
        if e.converted_at is not None:
            if e.version.exit_on_goal:
                return Finish("converted", detail={"revenue": str(e.revenue or "")})
            return Follow("converted", detail={"revenue": str(e.revenue or "")})
        until = e.entered_at + duration(s)
        if step.now >= until:
            return Follow("timeout")
        return Wait(
            until,
            event=s["event"],
            event_port="converted",
            timeout_port="timeout",
            detail={"until": until.isoformat(), "event": s["event"]},
        )


@register
class Exit(NodeKind):
    key = "exit"
    label = "Exit"
    category = Category.EXIT
    static_ports = ()

    def execute(self, step: StepContext) -> Outcome:
        return Finish("completed")
