"""Reads for messaging, including the gatekeepers that 404 on another tenant's templates and
deliveries (the UI, the REST API and the admin all load through them)."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet
from django.http import Http404

from audience.models import Contact
from core.ids import uuid_or_404
from messaging.models import (
    Category,
    Delivery,
    SenderIdentity,
    SendingPolicy,
    Suppression,
    Template,
)
from messaging.outcomes import (  # noqa: F401  (re-exported: the outcome events' names)
    EMAIL_BOUNCED,
    EMAIL_CLICKED,
    EMAIL_COMPLAINED,
    EMAIL_OPENED,
    EMAIL_SENT,
    PUSH_CLICKED,
    PUSH_SENT,
    UNSUBSCRIBED,
)
from tenants.models import Tenant


def template_list(*, tenant: Tenant, channel: str = "") -> QuerySet[Template]:
    qs = Template.objects.filter(tenant=tenant)
    if channel:
        qs = qs.filter(channel=channel)
    return qs.order_by("name")


def template_get(*, tenant: Tenant, public_id: object) -> Template:
    template = Template.objects.filter(
        tenant=tenant, public_id=uuid_or_404(public_id, what="template")
    ).first()
    if template is None:
        raise Http404("No such template")
    return template


def template_name_taken(*, tenant: Tenant, name: str, template: Template | None = None) -> bool:
    qs = Template.objects.filter(tenant=tenant, name=name)
    if template is not None and template.pk:
        qs = qs.exclude(pk=template.pk)
    return qs.exists()


def delivery_list(*, tenant: Tenant, status: str = "", channel: str = "") -> QuerySet[Delivery]:
    """The outbox, newest first; the contact comes along (every list shows who it is for).
    The template's name is in the delivery's content snapshot, so no join for it."""
    qs = Delivery.objects.filter(tenant=tenant).select_related("contact")
    if status:
        qs = qs.filter(status=status)
    if channel:
        qs = qs.filter(channel=channel)
    return qs.order_by("-created_at", "-pk")


def delivery_get(*, tenant: Tenant, public_id: object) -> Delivery:
    delivery = (
        Delivery.objects.filter(tenant=tenant, public_id=uuid_or_404(public_id, what="message"))
        .select_related("contact", "template")
        .first()
    )
    if delivery is None:
        raise Http404("No such message")
    return delivery


def suppression_list(*, tenant: Tenant, search: str = "") -> QuerySet[Suppression]:
    """Suppressed addresses, the most recent first; `search` matches the start of an address."""
    qs = Suppression.objects.filter(tenant=tenant)
    if search:
        qs = qs.filter(address__startswith=search.strip().lower())
    return qs.order_by("-created_at", "-pk")


def suppression_get(*, tenant: Tenant, address: str) -> Suppression:
    suppression = Suppression.objects.filter(tenant=tenant, address=address.strip().lower()).first()
    if suppression is None:
        raise Http404("No such suppressed address")
    return suppression


def suppression_find(*, tenant: Tenant, address: str) -> Suppression | None:
    return Suppression.objects.filter(tenant=tenant, address=address.strip().lower()).first()


def send_test_recipients(*, tenant: Tenant) -> list[tuple[str, str]]:
    """Where the editor may send a test: the team's members whose address is confirmed, as
    (address, label) choices. Never a typed address: a test is not a way to mail anyone."""
    from tenants.selectors import membership_list

    choices = []
    for membership in membership_list(tenant=tenant):
        user = membership.user
        if user.email_verified_at is not None and user.is_active:
            name = user.get_full_name()
            choices.append((user.email, f"{name} <{user.email}>" if name else user.email))
    return choices


def sender_identity_get(*, tenant: Tenant) -> SenderIdentity:
    """The tenant's sender identity. Every tenant gets one when it is created; one made before
    that (or by a raw fixture) gets it here, on first use, with a new VAPID key pair."""
    identity = SenderIdentity.objects.filter(tenant=tenant).first()
    if identity is None:
        from messaging.services import sender_identity_create

        identity = sender_identity_create(tenant=tenant)
    return identity


def sender_identity_is_set(*, tenant: Tenant) -> bool:
    """Whether the tenant chose a From address (the dashboard's "Getting started" step)."""
    return SenderIdentity.objects.filter(tenant=tenant).exclude(sender_email="").exists()


def sending_policy_get(*, tenant: Tenant) -> SendingPolicy:
    """The tenant's policy, or the defaults (unsaved) when it never changed them."""
    return SendingPolicy.objects.filter(tenant=tenant).first() or SendingPolicy(tenant=tenant)


def preview_contacts(*, tenant: Tenant, search: str, limit: int = 8) -> list[Contact]:
    """Contacts to preview a template with: the start of an email address or a name."""
    from audience.selectors import contact_list

    term = search.strip()
    if not term:
        return []
    return list(contact_list(tenant=tenant, search=term).order_by("email", "pk")[:limit])


def preview_contact_get(*, tenant: Tenant, public_id: object) -> Contact:
    contact = Contact.objects.filter(
        tenant=tenant, public_id=uuid_or_404(public_id, what="contact")
    ).first()
    if contact is None:
        raise Http404("No such contact")
    return contact


def email_webhook_status() -> dict[str, object]:
    """Whether the email provider EMAIL_BACKEND sends through can report bounces and
    complaints: {"esp": "postmark" | None, "configured": bool | None, "url", "settings"}."""
    from messaging.esp_webhooks import webhook_status  # anymail's views load only when asked

    return webhook_status()


def contact_unreachable_reason(
    *, tenant: Tenant, contact: Contact, channel: str, category: str = "marketing"
) -> str | None:
    """Why the tenant's `contact` cannot be reached on `channel` now (consent, suppression, no
    push subscription), or None when it can: messaging.reachability's one definition."""
    from messaging.reachability import contact_unreachable_reason as reason

    return reason(tenant=tenant, contact=contact, channel=channel, category=category)


# --- For the apps above messaging (campaigns, journeys): the public face of its inner modules ---


def template_preview(*, tenant: Tenant, template: Template, contact: Contact | None) -> Any:
    """`template` rendered for `contact` (None: the sample contact) exactly as a send would:
    messaging.previews.preview_build's Preview (errors by field, .email / .push)."""
    from messaging.previews import preview_build

    return preview_build(tenant=tenant, template=template, contact=contact)


def reachable_filter(*, tenant: Tenant, channel: str, category: str = Category.MARKETING) -> Q:
    """The tenant's contacts reachable on `channel` for `category` (messaging.reachability)."""
    from messaging.reachability import reachable_q

    return reachable_q(tenant=tenant, channel=channel, category=category)


def unreachable_reasons() -> dict[str, str]:
    """Why a contact cannot be reached, by name: what skipped deliveries record."""
    from messaging import reachability as r

    return {
        "no_email": r.NO_EMAIL,
        "suppressed": r.SUPPRESSED,
        "no_push": r.NO_PUSH,
        "unsubscribed": r.UNSUBSCRIBED,
        "no_opt_in": r.NO_OPT_IN,
    }


def outcome_properties(delivery: Delivery) -> dict[str, Any]:
    """What every outcome event (opened, clicked…) says about its message."""
    from messaging.outcomes import delivery_properties

    return delivery_properties(delivery)
