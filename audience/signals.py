"""Facts the audience app announces to the apps above it (they subscribe in AppConfig.ready()).

events_recorded(sender=None, tenant=Tenant, event_ids=list[int], contact_ids=list[int])
    Sent after the transaction that stored the events has committed, once per ingestion call
    (a whole /v1/batch is one call). Duplicates that were not stored are not included.
"""

from __future__ import annotations

from django.dispatch import Signal

events_recorded = Signal()
