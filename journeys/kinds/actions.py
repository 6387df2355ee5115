"""Actions: do something for the contact. Messages go through the outbox (messaging), decided in
the same transaction as the step, so a step run twice decides its message once."""

from __future__ import annotations

from journeys.node_kinds import Category, Field, NodeKind, register

CATEGORIES = (("marketing", "Marketing"), ("transactional", "Transactional"))


class Action(NodeKind):
    category = Category.ACTION


@register
class EmailAction(Action):
    key = "action_email"
    label = "Send an email"
    fields = (
        Field("template", "Template", "template_email", required=True),
        Field("category", "Kind of message", "choice", default="marketing", choices=CATEGORIES),
    )


@register
class PushAction(Action):
    key = "action_push"
    label = "Send a web push"
    fields = (
        Field("template", "Template", "template_push", required=True),
        Field("category", "Kind of message", "choice", default="marketing", choices=CATEGORIES),
    )


@register
class UpdateContactAction(Action):
    key = "action_update"
    label = "Update the contact"
    fields = (
        Field(
            "field",
            "Field",
            "text",
            required=True,
            help="A profile field (first_name, lifecycle_stage, …) or attributes.<name>.",
        ),
        Field("value", "Value", "text", default=""),
    )


@register
class WebhookAction(Action):
    key = "action_webhook"
    label = "Call a webhook"
    description = (
        "POSTs the contact and the journey's data, signed, to your HTTPS endpoint; retried."
    )
    fields = (
        Field("url", "URL", "url", required=True, help="https:// only, on a public address."),
        Field("payload", "Extra data", "json", default={}),
    )


@register
class ListAction(Action):
    key = "action_list"
    label = "Add to or remove from a list"
    description = "Adds a value to, or removes it from, a list attribute (e.g. tags)."
    fields = (
        Field("attribute", "List attribute", "text", required=True, default="tags"),
        Field(
            "operation",
            "Do",
            "choice",
            required=True,
            default="add",
            choices=(("add", "add"), ("remove", "remove")),
        ),
        Field("value", "Value", "text", required=True),
    )
