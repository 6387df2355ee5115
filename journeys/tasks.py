"""Celery tasks of the engine: thin adapters over journeys.engine, safe to run twice."""

from __future__ import annotations

import time
from datetime import datetime

from celery import shared_task

from journeys import dates, engine, reactions

ADVANCE_BUDGET = 4.0  # seconds one tick keeps taking batches (the beat ticks every 5 s)


@shared_task(name="journeys.tasks.advance_due")
def advance_due() -> int:
    """The beat's clock: advance due enrollments, batch after batch while there are full ones
    (and the time budget lasts)."""
    started, total = time.monotonic(), 0
    while True:
        done = engine.advance_due()
        total += done
        if done < engine.BATCH or time.monotonic() - started > ADVANCE_BUDGET:
            return total


@shared_task(name="journeys.tasks.enrollments_advance")
def enrollments_advance(ids: list[int]) -> int:
    """Run enrollments just started, woken or retried right away (else the beat would)."""
    return engine.advance_enrollments(ids=ids)


@shared_task(name="journeys.tasks.events_process")
def events_process(
    tenant_id: int, event_ids: list[int], since: str | None = None, until: str | None = None
) -> int:
    """`since`/`until` (ISO times of the oldest and newest of the events) only narrow where the
    events are looked for; tasks queued without them still work."""
    from tenants.models import Tenant

    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None:
        return 0
    occurred = None
    if since and until:
        occurred = (datetime.fromisoformat(since), datetime.fromisoformat(until))
    outcome = reactions.events_process(tenant=tenant, event_ids=event_ids, occurred=occurred)
    return len(outcome.started) + len(outcome.woken)


@shared_task(name="journeys.tasks.segment_changed")
def segment_changed(
    tenant_id: int, segment_public_id: str, entered: list[int], exited: list[int]
) -> int:
    from tenants.models import Tenant

    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None:
        return 0
    return reactions.segment_changed(
        tenant=tenant, segment_public_id=segment_public_id, entered=entered, exited=exited
    )


@shared_task(name="journeys.tasks.date_triggers_scan")
def date_triggers_scan() -> int:
    return dates.date_triggers_scan()
