"""Facts the audience app announces to the apps above it (they subscribe in AppConfig.ready()).

events_recorded(sender=None, tenant=Tenant, event_ids=list[int], contact_ids=list[int],
                events=list[RecordedEvent])
    Sent after the transaction that stored the events has committed, by the one place that
    stores events (audience.services: ingestion's calls and `events_record`'s facts alike), once
    per recording call (a whole /v1/batch is one call, a chunk of the ingest worker one per
    tenant and source). Events that were not stored (repeats) are not included. `event_ids` is
    in the order of `events`; `contact_ids` is sorted and distinct; `events` gives each event's
    id, contact id, name and time, so that a receiver (a journey trigger) can match names without
    reading the events again.

contacts_changed(sender=None, tenant=Tenant, contact_ids=list[int])
    Sent after commit when profiles or what makes a contact reachable changed other than by
    events: the REST API's upsert, the contacts UI, a CSV import (once per chunk of rows),
    consent set by the preference centre or an unsubscribe, an address suppressed or released,
    a browser push subscription saved or turned off.

contacts_merged(sender=None, tenant=Tenant, merged=dict[int, int])
    Sent inside the ingestion transaction when profiles are merged (an anonymous visitor turned
    out to be a known customer): `merged` maps each absorbed contact's pk to the pk of the
    contact it became. The absorbed contacts are deleted right after the signal, so a receiver
    must move whatever it keeps on them now (e.g. `UPDATE … SET contact_id = target`); their
    events and identities have already moved.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from django.dispatch import Signal


class RecordedEvent(NamedTuple):
    """One stored event, as `events_recorded` announces it."""

    id: int
    contact_id: int
    name: str
    # Where the event lives (the events table is partitioned by it): a receiver that reads the
    # events again bounds its query by these times, so only their months are searched.
    occurred_at: datetime | None = None


events_recorded = Signal()
contacts_changed = Signal()
contacts_merged = Signal()
