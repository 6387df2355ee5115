"""Celery tasks of campaigns: thin adapters over campaigns/dispatch.py, safe to run twice (an
occurrence is unique by its key, release claims rows with SKIP LOCKED and keys the outbox)."""

from __future__ import annotations

from celery import shared_task

from campaigns import dispatch, results
from campaigns.models import Campaign, Occurrence


@shared_task(name="campaigns.tasks.campaigns_tick", ignore_result=True)
def campaigns_tick() -> dict[str, int]:
    """The beat's clock: start due campaigns, decide due winners, release due recipients and
    finish what is done; then keep the results of occurrences whose goal window has passed."""
    report = dispatch.tick()
    report["results_kept"] = results.results_freeze_due()
    return report


@shared_task(name="campaigns.tasks.campaign_start", ignore_result=True)
def campaign_start(campaign_id: int) -> bool:
    """Start a campaign scheduled to send now (queued when it was scheduled)."""
    campaign = Campaign.objects.select_related("tenant").filter(pk=campaign_id).first()
    return bool(campaign and dispatch.campaign_start_due(campaign=campaign))


@shared_task(name="campaigns.tasks.occurrence_release", ignore_result=True)
def occurrence_release(occurrence_id: int) -> int:
    """Release an occurrence's due recipients; queues itself again while full chunks remain
    (so one run gives its worker back within seconds)."""
    occurrence = Occurrence.objects.filter(pk=occurrence_id).first()
    if occurrence is None or occurrence.state not in dispatch.OPEN:
        return 0
    released, more = dispatch.occurrence_release(occurrence=occurrence)
    if more:
        occurrence_release.delay(occurrence_id)
    return released


@shared_task(name="campaigns.tasks.recurring_fire", ignore_result=True)
def recurring_fire(campaign_id: str) -> bool:
    """A recurring campaign's beat entry fired: start its latest slot if not yet run."""
    campaign = Campaign.objects.select_related("tenant").filter(public_id=campaign_id).first()
    return bool(campaign and dispatch.campaign_start_due(campaign=campaign))
