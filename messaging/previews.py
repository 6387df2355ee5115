"""The editor's preview and "send test": a template (saved or a draft) rendered for one contact,
or for a sample contact, exactly as a real send would render it.

Nothing here writes to the outbox: a test send is not a decided message, so it is not counted
by the frequency cap or the hourly limit and leaves no delivery behind.
"""

from __future__ import annotations

import smtplib
from dataclasses import dataclass, field
from typing import Any

from anymail.exceptions import AnymailError

from audience.models import Contact
from messaging.models import Channel, Delivery, Template
from messaging.selectors import (
    send_test_recipients,
    sender_identity_get,
    suppression_find,
)
from tenants.models import Tenant

# rendering, context and mail are imported where they are used: Liquid and css-inline load only
# when a page previews something.


@dataclass
class Preview:
    channel: str
    contact: Contact | None  # None: the sample contact
    errors: dict[str, list[str]] = field(default_factory=dict)
    email: Any = None  # rendering.RenderedEmail
    push: Any = None  # rendering.RenderedPush

    @property
    def contact_label(self) -> str:
        if self.contact is None:
            return "a sample contact"
        return contact_label(self.contact)

    @property
    def rendered(self) -> Any:
        return self.email if self.channel == Channel.EMAIL else self.push


@dataclass(frozen=True)
class SendResult:
    ok: bool
    text: str

    @property
    def level(self) -> str:
        return "success" if self.ok else "error"


def contact_label(contact: Contact) -> str:
    name = f"{contact.first_name} {contact.last_name}".strip()
    if name and contact.email:
        return f"{name} <{contact.email}>"
    return name or contact.email or contact.user_id or "an anonymous visitor"


def _context(
    *,
    tenant: Tenant,
    contact: Contact | None,
    event: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    from messaging.context import context_for_contact, sample_context

    if contact is None:
        return sample_context(tenant, sender=sender_identity_get(tenant=tenant))
    return context_for_contact(tenant=tenant, contact=contact, event=event, data=data)


def _render(content: dict[str, Any], context: dict[str, Any], preview: Preview) -> Preview:
    from messaging.rendering import TemplateError, render

    try:
        rendered = render(content, context)
    except TemplateError as exc:
        preview.errors = {exc.field: [exc.message]}
        return preview
    if preview.channel == Channel.EMAIL:
        preview.email = rendered
    else:
        preview.push = rendered
    return preview


def preview_build(
    *,
    tenant: Tenant,
    template: Template,
    contact: Contact | None,
    event: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
) -> Preview:
    """`template` rendered for `contact` (None: the sample contact), with the triggering `event`
    and extra `data` a journey step would give it. Errors come by field: the checks saving makes
    first (so the preview refuses what saving would), then whatever this contact's data
    breaks."""
    from messaging.rendering import template_errors

    preview = Preview(channel=template.channel, contact=contact)
    errors = template_errors(template)
    if errors:
        preview.errors = errors
        return preview
    context = _context(tenant=tenant, contact=contact, event=event, data=data)
    return _render(template.snapshot(), context, preview)


def delivery_preview(*, delivery: Delivery) -> Preview:
    """A delivery's content snapshot rendered for its contact, event and data as they are now."""
    from messaging.context import context_for_contact

    preview = Preview(channel=delivery.channel, contact=delivery.contact)
    context = context_for_contact(
        tenant=delivery.tenant,
        contact=delivery.contact,
        event=delivery.event,
        data=delivery.data,
        delivery=delivery,
    )
    return _render(delivery.content, context, preview)


def template_send_test(
    *,
    tenant: Tenant,
    template: Template,
    contact: Contact | None,
    actor: Any,
    to: str = "",
    event: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
) -> SendResult:
    """Send `template` as rendered for `contact` (with a journey's `event` and `data`) once: an
    email to `to` through the configured email backend, a push to the contact's active
    subscriptions.

    A test is a real send, so it is refused unless `actor` confirmed their own address; an
    email goes only to a member of the team with a confirmed address (never to any address
    typed in) that is not on the suppression list; and a person and a team may send only so
    many (messaging/send_test_limits.py)."""
    from accounts.services import user_email_verified
    from messaging.send_test_limits import send_test_take

    if not user_email_verified(actor):
        return SendResult(
            False,
            f"Nothing was sent: confirm your email address first (follow the link we sent "
            f"to {actor.email}).",
        )
    preview = preview_build(
        tenant=tenant, template=template, contact=contact, event=event, data=data
    )
    if preview.errors:
        return SendResult(False, "Nothing was sent: fix the errors in the template first.")
    if template.channel == Channel.EMAIL:
        to = to.strip()
        members = {address.lower() for address, _ in send_test_recipients(tenant=tenant)}
        if to.lower() not in members:
            return SendResult(
                False,
                "Nothing was sent: tests go only to your team's members, at confirmed addresses.",
            )
        suppressed = suppression_find(tenant=tenant, address=to)
        if suppressed is not None:
            return SendResult(
                False,
                f"Nothing was sent: {suppressed.address} is on your suppression list "
                f"({suppressed.get_reason_display().lower()}), so no message goes there, "
                "tests included.",
            )
    elif preview.contact is None:
        return SendResult(False, "Choose a contact to send the test push to.")
    refused = send_test_take(tenant=tenant, user_id=actor.pk)
    if refused:
        return SendResult(False, refused)
    if template.channel == Channel.EMAIL:
        return _send_email(tenant=tenant, preview=preview, to=to)
    return _send_push(tenant=tenant, preview=preview)


def _send_email(*, tenant: Tenant, preview: Preview, to: str) -> SendResult:
    from messaging.mail import email_build

    message = email_build(delivery=None, rendered=preview.email, tenant=tenant, to=to)
    try:
        message.send(fail_silently=False)
    except (smtplib.SMTPException, OSError, AnymailError) as exc:
        return SendResult(False, f"The test to {to} was not sent: the mail server said {exc}.")
    return SendResult(
        True, f"Sent a test “{preview.email.subject}” to {to}, as {preview.contact_label}."
    )


def _send_push(*, tenant: Tenant, preview: Preview) -> SendResult:
    from messaging import push

    if preview.contact is None:
        return SendResult(False, "Choose a contact to send the test push to.")
    count = push.push_send_test(tenant=tenant, contact=preview.contact, rendered=preview.push)
    if not count:
        return SendResult(
            False, f"Nothing was sent: {preview.contact_label} has no active push subscription."
        )
    return SendResult(
        True,
        f"Sent a test push “{preview.push.title}” to {preview.contact_label} "
        f"({count} browser{'s' if count != 1 else ''}).",
    )
