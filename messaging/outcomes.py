"""Every outcome of a message is an event on its contact (DESIGN §1): the names, and recording
them in bulk with the same idempotency and signal as ingestion."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

from django.db import transaction
from django.utils.timezone import now

from audience.bulk import EventRow, events_insert, message_ids_stored
from audience.models import Event
from audience.signals import events_recorded
from messaging.models import Channel, Delivery

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
    """Store `(delivery, event name, extra properties)` as events on the deliveries' contacts,
    inside the caller's transaction, and announce them after commit.

    `unique`: the outcome happens once per delivery (sent, bounced, the first open), so its
    message id is derived from both and a repeat is not stored. Otherwise each call is a new
    fact (every click)."""
    if not outcomes:
        return []
    stamp = now()
    rows, seen = [], set()
    for delivery, name, extra in outcomes:
        message_id = (
            f"wf:{delivery.public_id}:{name}"
            if unique
            else f"wf:{delivery.public_id}:{name}:{stamp.timestamp()}"
        )
        if message_id in seen:
            continue
        seen.add(message_id)
        rows.append(
            EventRow(
                tenant_id=delivery.tenant_id,
                contact_id=delivery.contact_id,
                type=Event.Type.TRACK,
                name=name,
                properties={**delivery_properties(delivery), **extra},
                context={},
                occurred_at=stamp,
                received_at=stamp,
                message_id=message_id,
                source="messaging",
            )
        )
    if unique:
        stored: set[tuple[int, str]] = set()
        for tenant_id in {r.tenant_id for r in rows}:
            message_ids = [r.message_id for r in rows if r.tenant_id == tenant_id]
            stored |= {
                (tenant_id, m)
                for m in message_ids_stored(tenant_id=tenant_id, message_ids=message_ids)
            }
        rows = [r for r in rows if (r.tenant_id, r.message_id) not in stored]
    if not rows:
        return []
    with transaction.atomic():
        ids = events_insert(rows)
        by_tenant: dict[int, tuple[list[int], set[int]]] = {}
        for pk, row in zip(ids, rows, strict=True):
            event_ids, contact_ids = by_tenant.setdefault(row.tenant_id, ([], set()))
            event_ids.append(pk)
            contact_ids.add(row.contact_id)
        tenants = {d.tenant_id: d.tenant for d, _, _ in outcomes}
        for tenant_id, (event_ids, contact_ids) in by_tenant.items():
            transaction.on_commit(
                partial(
                    events_recorded.send,
                    sender=None,
                    tenant=tenants[tenant_id],
                    event_ids=event_ids,
                    contact_ids=sorted(contact_ids),
                ),
                robust=True,
            )
    return ids
