"""Facts the audience app announces to the apps above it (they subscribe in AppConfig.ready()).

events_recorded(sender=None, tenant=Tenant, event_ids=list[int], contact_ids=list[int])
    Sent after the transaction that stored the events has committed, once per ingestion call
    (a whole /v1/batch is one call). Duplicates that were not stored are not included.

contacts_changed(sender=None, tenant=Tenant, contact_ids=list[int])
    Sent after commit when profiles were edited other than by events: the REST API's upsert,
    the contacts UI, a CSV import (once per chunk of rows).

contacts_merged(sender=None, tenant=Tenant, merged=dict[int, int])
    Sent inside the ingestion transaction when profiles are merged (an anonymous visitor turned
    out to be a known customer): `merged` maps each absorbed contact's pk to the pk of the
    contact it became. The absorbed contacts are deleted right after the signal, so a receiver
    must move whatever it keeps on them now (e.g. `UPDATE … SET contact_id = target`); their
    events and identities have already moved.
"""

from __future__ import annotations

from django.dispatch import Signal

events_recorded = Signal()
contacts_changed = Signal()
contacts_merged = Signal()
