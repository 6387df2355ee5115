"""Actions: do something for the contact. Messages go through the outbox (messaging), decided in
the same transaction as the step, so a step run twice decides its message once."""

from __future__ import annotations

import time as clock
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import orjson

from journeys.kinds.triggers import validate_fields
from journeys.node_kinds import (
    Category,
    Fail,
    Field,
    Follow,
    NodeKind,
    NodeSettingsError,
    Outcome,
    StepContext,
    register,
)

if TYPE_CHECKING:
    from messaging.models import Template

CATEGORIES = (("marketing", "Marketing"), ("transactional", "Transactional"))
WEBHOOK_ATTEMPTS = 5  # tries of one webhook step before it fails for good
WEBHOOK_BACKOFF = (30, 120, 600, 1800, 3600)  # seconds before the next try
# Event properties copied into a message's `data` (the cart, product or order it is about).
DATA_PROPERTIES = ("cart_id", "product_id", "sku", "order_id", "products", "product", "url")
PROTECTED_FIELDS = ("email",)  # an address is the contact's to change, not a journey's


class Action(NodeKind):
    category = Category.ACTION

    def validate(self, settings: dict[str, Any]) -> dict[str, Any]:
        return validate_fields(self, settings)


def source_of(step: StepContext) -> str:
    return f"journey:{step.enrollment.journey.public_id}"


def idempotency_key(step: StepContext) -> str:
    """One key per (enrollment, node, arrival): a step run again decides nothing new; a loop
    that comes back to the node (through a wait) is a new arrival, a new message."""
    e = step.enrollment
    return f"journey:{e.pk}:{step.node.key}:{e.steps_taken}"


def message_data(context: dict[str, Any]) -> dict[str, Any]:
    """Delivery.data: the enrollment's data plus what the triggering event is about (its cart,
    product, order), so a template can say `data.cart_id`, list `data.products`. The contact's
    cart itself is in every message's context (`cart.items`, messaging.context)."""
    data = dict(context.get("data") or {})
    properties = (context.get("event") or {}).get("properties") or {}
    if isinstance(properties, dict):
        for name in DATA_PROPERTIES:
            if name in properties and name not in data:
                data[name] = properties[name]
    return data


class MessageAction(Action):
    channel: str

    def describe(self, settings: dict[str, Any]) -> str:
        return self.label

    def execute(self, step: StepContext) -> Outcome:
        from journeys.engine import message_decide, template_get
        from messaging.services import Decision

        s = step.node.settings
        template = template_get(
            tenant=step.tenant, public_id=str(s.get("template", "")), channel=self.channel
        )
        if template is None:
            return Fail(f"The {self.channel} template no longer exists.")
        if step.dry_run:
            return Follow("next", detail={"would_send": template.name, "channel": self.channel})
        context = step.enrollment.context or {}
        decision = Decision(
            contact=step.contact,
            idempotency_key=idempotency_key(step),
            data=message_data(context),
            event=context.get("event"),
        )
        message_decide(
            tenant=step.tenant,
            template=template,
            source=source_of(step),
            category=s.get("category") or "marketing",
            decision=decision,
        )
        return Follow("next", detail={"sent": template.name, "key": decision.idempotency_key})


@register
class EmailAction(MessageAction):
    key = "action_email"
    label = "Send an email"
    channel = "email"
    fields = (
        Field("template", "Template", "template_email", required=True),
        Field("category", "Kind of message", "choice", default="marketing", choices=CATEGORIES),
    )


@register
class PushAction(MessageAction):
    key = "action_push"
    label = "Send a web push"
    channel = "push"
    fields = (
        Field("template", "Template", "template_push", required=True),
        Field("category", "Kind of message", "choice", default="marketing", choices=CATEGORIES),
    )


def _contact_fields(step: StepContext, fields: dict[str, Any]) -> None:
    """Write through audience's one service for profile edits, and keep the engine's copy of
    the contact current for the steps that follow in this run."""
    from audience.services import contact_update

    fresh = contact_update(
        tenant=step.tenant, contact=step.contact, fields=fields, source=source_of(step)
    )
    for name in (*fields, "attributes"):
        if hasattr(fresh, name):
            setattr(step.contact, name, getattr(fresh, name))


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
            help="A profile field (first_name, locale, …) or attributes.<name>.",
        ),
        Field("value", "Value", "text", default=""),
    )

    def validate(self, settings: dict[str, Any]) -> dict[str, Any]:
        from audience.services import CONTACT_EDITABLE

        clean = validate_fields(self, settings)
        name = clean["field"]
        if name.startswith("attributes."):
            if not name[len("attributes.") :].strip():
                raise NodeSettingsError({"field": "Name the attribute: attributes.<name>."})
        elif name not in CONTACT_EDITABLE or name in PROTECTED_FIELDS:
            allowed = ", ".join(f for f in CONTACT_EDITABLE if f not in PROTECTED_FIELDS)
            raise NodeSettingsError({"field": f"Use attributes.<name> or one of {allowed}."})
        clean.setdefault("value", "")
        return clean

    def describe(self, settings: dict[str, Any]) -> str:
        return f"Set {settings.get('field', '…')} to “{settings.get('value', '')}”"

    def execute(self, step: StepContext) -> Outcome:
        s = step.node.settings
        name, value = s["field"], s.get("value", "")
        if step.dry_run:
            return Follow("next", detail={"would_set": {name: value}})
        if name.startswith("attributes."):
            attributes = dict(step.contact.attributes or {})
            attributes[name[len("attributes.") :]] = value
            fields: dict[str, Any] = {"attributes": attributes}
        else:
            if name in ("birthday_month", "birthday_day", "birth_year"):
                try:
                    value = int(value) if value not in ("", None) else None
                except (TypeError, ValueError):
                    return Fail(f"{name} needs a number, not “{value}”.")
            fields = {name: value}
        _contact_fields(step, fields)
        return Follow("next", detail={"set": {name: s.get("value", "")}})


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

    def validate(self, settings: dict[str, Any]) -> dict[str, Any]:
        from core.outbound import OutboundRefused, url_check

        clean = validate_fields(self, settings)
        try:
            url_check(clean["url"], resolve=False)
        except OutboundRefused as exc:
            raise NodeSettingsError({"url": f"This URL cannot be called: {exc.reason}."}) from None
        payload = clean.get("payload", {})
        if not isinstance(payload, dict):
            raise NodeSettingsError({"payload": "Extra data must be a JSON object."})
        clean["payload"] = payload
        return clean

    def describe(self, settings: dict[str, Any]) -> str:
        return f"POST to {settings.get('url', '…')}"

    def execute(self, step: StepContext) -> Outcome:
        # The POST happens inside the step's transaction, with the enrollment's row locked: a
        # crash after the POST but before the commit runs the step again, and the same
        # Idempotency-Key lets the receiver drop the repeat. Doing the call outside the
        # transaction would need a second claim (an outbox of webhook calls); the call is
        # bounded by a 10 s timeout instead, and other workers skip the locked rows meanwhile.
        from journeys import webhooks

        s = step.node.settings
        e = step.enrollment
        key = idempotency_key(step)
        if step.dry_run:
            return Follow("next", detail={"would_post": s["url"]})
        contact = step.contact
        body = orjson.dumps(
            {
                "journey": str(e.journey.public_id),
                "enrollment": str(e.public_id),
                "step": step.node.key,
                "contact": {
                    "id": str(contact.public_id),
                    "user_id": contact.user_id,
                    "email": contact.email,
                    "first_name": contact.first_name,
                    "last_name": contact.last_name,
                    "attributes": contact.attributes,
                },
                "event": (e.context or {}).get("event"),
                "data": (e.context or {}).get("data") or {},
                "payload": s.get("payload") or {},
                "sent_at": step.now.isoformat(),
            }
        )
        stamp = int(clock.time())
        secret = webhooks.webhook_secret(tenant=step.tenant)
        answer = webhooks.post(
            s["url"],
            body,
            {
                "X-Wayfarer-Signature": webhooks.signature(secret, stamp, body),
                "Idempotency-Key": key,
            },
        )
        if 200 <= answer.status < 300:
            return Follow("next", detail={"posted": s["url"], "status": answer.status})
        reason = (
            f"The webhook answered {answer.status}."
            if answer.status
            else f"The webhook could not be called ({answer.error})."
        )
        retryable = (
            answer.status in (408, 429)
            or answer.status >= 500
            or (answer.status == 0 and not answer.refused)
        )
        if retryable and e.attempts + 1 < WEBHOOK_ATTEMPTS:
            wait = WEBHOOK_BACKOFF[min(e.attempts, len(WEBHOOK_BACKOFF) - 1)]
            return Fail(reason, retry_at=step.now + timedelta(seconds=wait))
        if retryable:
            reason = f"{reason} Gave up after {WEBHOOK_ATTEMPTS} tries."
        return Fail(reason)


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

    def describe(self, settings: dict[str, Any]) -> str:
        verb = "Remove" if settings.get("operation") == "remove" else "Add"
        word = "from" if verb == "Remove" else "to"
        return f"{verb} “{settings.get('value', '…')}” {word} {settings.get('attribute', 'tags')}"

    def execute(self, step: StepContext) -> Outcome:
        s = step.node.settings
        name, value, operation = s["attribute"], str(s["value"]), s.get("operation", "add")
        if step.dry_run:
            return Follow("next", detail={f"would_{operation}": {name: value}})
        attributes = dict(step.contact.attributes or {})
        current = attributes.get(name)
        items = (
            list(current)
            if isinstance(current, list)
            else ([] if current in (None, "") else [current])
        )
        if operation == "add" and value not in items:
            items.append(value)
        elif operation == "remove":
            items = [i for i in items if str(i) != value]
        else:
            return Follow("next", detail={"unchanged": True})
        attributes[name] = items
        _contact_fields(step, {"attributes": attributes})
        return Follow("next", detail={operation: {name: value}})


def template_of(*, tenant_id: int, public_id: str, channel: str) -> Template | None:
    """The tenant's template of that channel with this public id (None: gone, or not one)."""
    import uuid

    from messaging.models import Template

    try:
        uuid.UUID(public_id)
    except ValueError:
        return None
    return Template.objects.filter(
        tenant_id=tenant_id, public_id=public_id, channel=channel
    ).first()
