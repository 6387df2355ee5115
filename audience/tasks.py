from __future__ import annotations

from celery import shared_task

from audience import csv_io, inbox, partitions
from audience.models import ContactImport
from tenants.models import Tenant

# A drain task gives its worker back after this long (the Procfile's worker also serves the
# engine, email and push queues) and queues its own continuation.
DRAIN_SECONDS = 20.0


@shared_task(name="audience.tasks.contact_import_run", ignore_result=True)
def contact_import_run(import_id: int) -> None:
    """Safe to run twice: only a queued or interrupted (running) import is picked up, and it
    resumes after the rows already processed. Like a drain, it gives its worker back after
    DRAIN_SECONDS and queues its own continuation: a 50,000-row import takes minutes, and the
    worker's other queues (sends, segment refreshes, its own heartbeat) must not wait that long."""
    claimed = ContactImport.objects.filter(
        pk=import_id, status__in=[ContactImport.Status.QUEUED, ContactImport.Status.RUNNING]
    ).update(status=ContactImport.Status.RUNNING)
    if not claimed:
        return
    job = ContactImport.objects.select_related("tenant").get(pk=import_id)
    try:
        job = csv_io.import_run(tenant=job.tenant, job=job, seconds=DRAIN_SECONDS)
    except Exception:
        ContactImport.objects.filter(pk=import_id).update(status=ContactImport.Status.FAILED)
        raise
    if job.status == ContactImport.Status.RUNNING:
        contact_import_run.delay(import_id)


@shared_task(name="audience.tasks.inbox_drain", ignore_result=True)
def inbox_drain() -> None:
    """Record what the /v1/* endpoints accepted. Safe to run any number of times, at once."""
    if inbox.inbox_drain(seconds=DRAIN_SECONDS).more:
        inbox_drain.delay()


@shared_task(name="audience.tasks.partitions_maintain", ignore_result=True)
def partitions_maintain() -> None:
    """Hourly (config/celery.py): the events table's monthly partitions exist ahead of the
    clock, and rows that waited in the default partition move to their month's. Safe to run
    twice, at once too (audience/partitions.py)."""
    partitions.partitions_ensure()


@shared_task(name="audience.tasks.retention_apply", ignore_result=True)
def retention_apply() -> None:
    """Daily (config/celery.py): each team's raw events older than its retention go
    (audience/retention.py). Safe to run twice."""
    # Imported when run: retention reads partitions, orders and tenants' settings, none of
    # which a worker's other tasks need loaded.
    from audience.retention import retention_apply as apply

    apply()


@shared_task(name="audience.tasks.lifecycle_stages_refresh_contacts", ignore_result=True)
def lifecycle_stages_refresh_contacts(tenant_id: int, contact_ids: list[int]) -> None:
    """Queued after events or profile changes commit (audience/stages.py). Safe to run twice:
    a contact whose stage is current records nothing."""
    from audience import stages

    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is not None:
        stages.stages_refresh(tenant=tenant, contact_ids=contact_ids)


@shared_task(name="audience.tasks.lifecycle_stages_refresh_team", ignore_result=True)
def lifecycle_stages_refresh_team(tenant_id: int) -> None:
    """Every contact of one team, in batches: after its rules changed, and daily. Safe to run
    twice."""
    from audience import stages

    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is not None:
        stages.stages_refresh(tenant=tenant)


@shared_task(name="audience.tasks.lifecycle_stages_refresh_all", ignore_result=True)
def lifecycle_stages_refresh_all() -> None:
    """Daily (config/celery.py): the stages the clock moves — an onboarding ends, a customer
    drifts, a review gets old — one task per team. Safe to run twice."""
    for tenant_id in Tenant.objects.order_by("pk").values_list("pk", flat=True):
        lifecycle_stages_refresh_team.delay(tenant_id)


@shared_task(name="audience.tasks.recommendation_stats_refresh_team", ignore_result=True)
def recommendation_stats_refresh_team(tenant_id: int) -> None:
    """One team's trending products and co-purchase counts (audience/recommendation_stats.py).
    Safe to run twice: each run replaces the team's rows."""
    from audience.recommendation_stats import recommendation_stats_refresh

    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is not None:
        recommendation_stats_refresh(tenant=tenant)


@shared_task(name="audience.tasks.recommendation_stats_refresh_all", ignore_result=True)
def recommendation_stats_refresh_all() -> None:
    """Hourly (config/celery.py): what recommendations precompute, one task per team. Safe to
    run twice."""
    for tenant_id in Tenant.objects.order_by("pk").values_list("pk", flat=True):
        recommendation_stats_refresh_team.delay(tenant_id)
