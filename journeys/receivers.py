"""Connects the engine to the announcements of the apps below (journeys.engine does the work)."""

from __future__ import annotations

import logging
from typing import Any

from django.dispatch import receiver

from audience.signals import contacts_merged, events_recorded
from segments.signals import segment_membership_changed

log = logging.getLogger(__name__)


@receiver(events_recorded, dispatch_uid="journeys.events_recorded")
def _events_recorded(*, tenant: Any, event_ids: list[int], **kwargs: Any) -> None:
    # Sent after commit: queue the engine's look at these events (triggers, wakes, goals,
    # exits) unless the tenant has nothing they could concern.
    from journeys.models import Enrollment, Journey, JourneyVersion
    from journeys.tasks import events_process

    live = JourneyVersion.objects.filter(
        tenant=tenant, state=JourneyVersion.State.PUBLISHED, journey__status=Journey.Status.LIVE
    ).exists()
    if not live and not (
        Enrollment.objects.filter(
            tenant=tenant,
            contact_id__in=kwargs.get("contact_ids") or [],
            state__in=["active", "waiting"],
        ).exists()
    ):
        return
    # The events' time range lets the engine read them from their months only (the events
    # table is partitioned by time): by id alone it would search every month's index.
    times = [e.occurred_at for e in kwargs.get("events") or () if e.occurred_at is not None]
    since = min(times).isoformat() if times else None
    until = max(times).isoformat() if times else None
    try:
        events_process.delay(tenant.pk, list(event_ids), since, until)
    except Exception:
        log.warning(
            "could not queue the journeys' look at %d events", len(event_ids), exc_info=True
        )


@receiver(segment_membership_changed, dispatch_uid="journeys.segment_membership_changed")
def _segment_changed(
    *, tenant: Any, segment: Any, entered: list[int], exited: list[int], **kwargs: Any
) -> None:
    from journeys.models import Journey, JourneyVersion
    from journeys.tasks import segment_changed

    if not JourneyVersion.objects.filter(
        tenant=tenant,
        state=JourneyVersion.State.PUBLISHED,
        journey__status=Journey.Status.LIVE,
        trigger_kind="trigger_segment",
    ).exists():
        return
    try:
        segment_changed.delay(tenant.pk, str(segment.public_id), list(entered), list(exited))
    except Exception:
        log.warning("could not queue the journeys' segment triggers", exc_info=True)


@receiver(contacts_merged, dispatch_uid="journeys.contacts_merged")
def _contacts_merged(*, tenant: Any, merged: dict[int, int], **kwargs: Any) -> None:
    # Inside the merge's transaction: the absorbed contacts are deleted right after.
    from journeys import reactions

    reactions.contacts_merge(tenant=tenant, merged=merged)
