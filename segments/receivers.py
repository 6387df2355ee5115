"""Keeps segment membership current as contacts change: audience announces, segments queue a
re-evaluation of the contacts concerned (the `engine` queue), after the change committed."""

from __future__ import annotations

from typing import Any

from audience.signals import contacts_changed, events_recorded
from segments.models import Segment
from tenants.models import Tenant

# Contacts per task: one ingested batch is one task, a big import several.
CHUNK = 500


def _queue(tenant: Tenant, contact_ids: list[int]) -> None:
    from segments.tasks import segment_memberships_refresh_contacts

    if not contact_ids or not Segment.objects.filter(tenant=tenant).exists():
        return
    for start in range(0, len(contact_ids), CHUNK):
        segment_memberships_refresh_contacts.delay(tenant.pk, contact_ids[start : start + CHUNK])


def on_events_recorded(sender: object, tenant: Tenant, contact_ids: list[int], **_: Any) -> None:
    _queue(tenant, list(contact_ids))


def on_contacts_changed(sender: object, tenant: Tenant, contact_ids: list[int], **_: Any) -> None:
    _queue(tenant, list(contact_ids))


events_recorded.connect(on_events_recorded, dispatch_uid="segments.on_events_recorded")
contacts_changed.connect(on_contacts_changed, dispatch_uid="segments.on_contacts_changed")
