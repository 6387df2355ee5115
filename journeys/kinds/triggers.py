"""Triggers: how a contact enters a journey. Exactly one per journey; the engine matches them
(journeys.engine) and a trigger node itself only passes the enrollment on."""

from __future__ import annotations

from typing import Any

from journeys.node_kinds import Category, Field, Follow, NodeKind, Outcome, StepContext, register

UNITS = (("minutes", "minutes"), ("hours", "hours"), ("days", "days"))


class Trigger(NodeKind):
    category = Category.TRIGGER

    def execute(self, step: StepContext) -> Outcome:
        return Follow("next")


@register
class EventTrigger(Trigger):
    key = "trigger_event"
    label = "When an event happens"
    description = (
        "Enters a contact each time they do this event (the journey's re-entry rule allows)."
    )
    fields = (
        Field("event", "Event", "event", required=True, help="e.g. Product Added"),
        Field(
            "filters",
            "Only when",
            "filters",
            default=[],
            help="Property conditions the event must meet, e.g. total greater than 50.",
        ),
    )

    def describe(self, settings: dict[str, Any]) -> str:
        return f"When “{settings.get('event', '…')}” happens"


@register
class SegmentTrigger(Trigger):
    key = "trigger_segment"
    label = "When entering or leaving a segment"
    fields = (
        Field("segment", "Segment", "segment", required=True),
        Field(
            "direction",
            "When they",
            "choice",
            required=True,
            default="entered",
            choices=(("entered", "enter it"), ("exited", "leave it")),
        ),
    )


@register
class DateTrigger(Trigger):
    key = "trigger_date"
    label = "On a date (birthday, anniversary)"
    description = "Every year on the contact's date, offset by some days, at a local time."
    fields = (
        Field(
            "attribute",
            "Date",
            "text",
            required=True,
            default="birthday",
            help="“birthday”, or a custom attribute holding a date (YYYY-MM-DD).",
        ),
        Field(
            "offset_days",
            "Days before (-) or after (+)",
            "int",
            default=0,
            minimum=-365,
            maximum=365,
        ),
        Field("at", "At (contact's local time)", "time", required=True, default="09:00"),
    )


@register
class SignupTrigger(Trigger):
    key = "trigger_signup"
    label = "When a contact signs up"
    description = "Enters each contact the first time they sign up (the “Signed Up” event)."


@register
class ApiTrigger(Trigger):
    key = "trigger_api"
    label = "When enrolled through the API"
    description = "POST /api/v1/journeys/{id}/enroll/ with a contact and data."
