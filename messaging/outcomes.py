"""Every outcome of a message is an event on its contact: the names, and recording
them in bulk as facts through audience's one fact API."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.utils.timezone import now

from audience.services import Fact, events_record
from messaging.models import Channel, Delivery
from tenants.models import Tenant

SOURCE = "messaging"  # the source of every event below

EMAIL_SENT = "Email Sent"
EMAIL_DELIVERED = "Email Delivered"
EMAIL_OPENED = "Email Opened"
EMAIL_CLICKED = "Email Link Clicked"
EMAIL_BOUNCED = "Email Bounced"
EMAIL_COMPLAINED = "Email Marked as Spam"
EMAIL_FAILED = "Email Failed"
PUSH_SENT = "Push Sent"
PUSH_CLICKED = "Push Clicked"
PUSH_FAILED = "Push Failed"
SKIPPED = "Message Skipped"
UNSUBSCRIBED = "Unsubscribed"


def sent_name(channel: str) -> str:
    return EMAIL_SENT if channel == Channel.EMAIL else PUSH_SENT


def failed_name(channel: str) -> str:
    return EMAIL_FAILED if channel == Channel.EMAIL else PUSH_FAILED


def delivery_properties(delivery: Delivery) -> dict[str, Any]:
    """What every outcome event says about its message."""
    return {
        "delivery_id": str(delivery.public_id),
        "channel": delivery.channel,
        "category": delivery.category,
        "template_id": delivery.content.get("template", ""),
        "template": delivery.content.get("name", ""),
        "source": delivery.source,
    }


def record(
    outcomes: Sequence[tuple[Delivery, str, dict[str, Any]]], *, unique: bool = True
) -> list[int]:
    """Record `(delivery, event name, extra properties)` as facts on the deliveries' contacts
    through audience's `events_record`, inside the caller's transaction.

    `unique`: the outcome happens once per delivery (sent, bounced, the first open), so its
    fact is named by both and a repeat is not stored. Otherwise each call is a new fact (every
    click)."""
    if not outcomes:
        return []
    moment = f":{now().timestamp()}" if not unique else ""
    by_tenant: dict[int, list[Fact]] = {}
    tenants: dict[int, Tenant] = {}
    for delivery, name, extra in outcomes:
        if delivery.tenant_id not in tenants:
            tenants[delivery.tenant_id] = delivery.tenant
        by_tenant.setdefault(delivery.tenant_id, []).append(
            Fact(
                delivery.contact_id,
                name,
                f"{delivery.public_id}:{name}{moment}",
                SOURCE,
                {**delivery_properties(delivery), **extra},
            )
        )
    ids: list[int] = []
    for tenant_id, facts in by_tenant.items():
        ids += events_record(tenant=tenants[tenant_id], facts=facts, fresh=not unique)
    return ids
