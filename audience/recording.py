"""Recording events that Wayfarer itself decides (catalog changes, and later message outcomes
and segment changes) on contacts it already knows, with the same idempotency and signal as
ingestion."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from functools import partial
from typing import Any

from django.db import transaction
from django.utils.timezone import now

from audience.bulk import EventRow, events_insert
from audience.models import Contact, Event
from audience.signals import events_recorded
from tenants.models import Tenant


def events_record_for_contacts(
    *,
    tenant: Tenant,
    contacts: Iterable[Contact],
    name: str,
    properties: dict[str, Any],
    message_id_prefix: str,
    source: str = "wayfarer",
) -> list[int]:
    """One `name` event on each contact. The message id is derived from `message_id_prefix` (the
    fact) and the contact, so recording the same fact twice stores it once. Returns new ids."""
    stamp = now()
    fact = hashlib.sha256(message_id_prefix.encode()).hexdigest()[:24]  # keeps ids ≤ 100 chars
    events = [
        Event(
            tenant=tenant,
            contact=contact,
            type=Event.Type.TRACK,
            name=name,
            properties=properties,
            occurred_at=stamp,
            received_at=stamp,
            message_id=f"wf:{fact}:{contact.public_id}",
            source=source,
        )
        for contact in contacts
    ]
    if not events:
        return []
    ids = [e.message_id for e in events]
    with transaction.atomic():
        Event.objects.bulk_create(events, ignore_conflicts=True)
        new = list(
            Event.objects.filter(tenant=tenant, message_id__in=ids, received_at=stamp).values_list(
                "pk", "contact_id"
            )
        )
    if new:
        transaction.on_commit(
            partial(
                events_recorded.send,
                sender=None,
                tenant=tenant,
                event_ids=[pk for pk, _ in new],
                contact_ids=sorted({contact_id for _, contact_id in new}),
            ),
            robust=True,  # a failing receiver (the broker down) must not fail the committed caller
        )
    return [pk for pk, _ in new]


def events_record_for_contact_ids(
    *,
    tenant: Tenant,
    contact_ids: Sequence[int],
    name: str,
    properties: dict[str, Any],
    message_id_prefix: str,
    source: str = "wayfarer",
) -> list[int]:
    """One `name` event on each contact, set-based (COPY on PostgreSQL), for facts about many
    contacts at once such as segment entries. `message_id_prefix` must name the fact uniquely:
    the message id is derived from it and the contact, so the same fact is never stored twice
    (recording it twice raises IntegrityError, rolling back the caller's transaction)."""
    if not contact_ids:
        return []
    stamp = now()
    fact = hashlib.sha256(message_id_prefix.encode()).hexdigest()[:24]
    ids = events_insert(
        [
            EventRow(
                tenant_id=tenant.pk,
                contact_id=contact_id,
                type=Event.Type.TRACK,
                name=name,
                properties=properties,
                context={},
                occurred_at=stamp,
                received_at=stamp,
                message_id=f"wf:{fact}:{contact_id}",
                source=source,
            )
            for contact_id in contact_ids
        ]
    )
    transaction.on_commit(
        partial(
            events_recorded.send,
            sender=None,
            tenant=tenant,
            event_ids=ids,
            contact_ids=sorted(set(contact_ids)),
        ),
        robust=True,  # a failing receiver (the broker down) must not fail the committed caller
    )
    return ids
