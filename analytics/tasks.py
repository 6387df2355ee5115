"""Beat and queued work of the rollups (analytics/rollups.py, rebuild.py, snapshots.py;
config/celery.py schedules `rollups_hourly`)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from celery import shared_task
from django.utils import timezone

from analytics.models import RollupState
from analytics.rebuild import rollups_rebuild
from analytics.selectors import tenant_zone, today
from analytics.snapshots import stage_snapshot_take
from tenants.models import Tenant

logger = logging.getLogger(__name__)


@shared_task(name="analytics.tasks.rollups_hourly", ignore_result=True)
def rollups_hourly() -> None:
    """Hourly: every team's stage snapshot of its local today; in the team's first hour of a
    day, yesterday's snapshot once more (its end-of-day count) and yesterday's rollups rebuilt
    from the raw events (what changed after commit, e.g. a contact identified by an import,
    is set right); a team whose rollups are in another time zone than its own is rebuilt."""
    rollups_tick(now=timezone.now())


def rollups_tick(*, now: datetime) -> None:
    states = dict(RollupState.objects.values_list("tenant_id", "timezone"))
    for tenant in Tenant.objects.all().order_by("pk"):
        try:
            _tenant_tick(tenant, states.get(tenant.pk), now)
        except Exception:  # one team's failure must not starve the others
            logger.exception("rollups: hourly work of team %s failed", tenant.slug)


def _tenant_tick(tenant: Tenant, zone: str | None, now: datetime) -> None:
    if zone != (tenant.timezone or "UTC"):
        rollups_rebuild(tenant=tenant)
    stage_snapshot_take(tenant=tenant, now=now)
    local = now.astimezone(tenant_zone(tenant))
    if local.hour == 0:
        yesterday = today(tenant, now=now) - timedelta(days=1)
        stage_snapshot_take(tenant=tenant, now=now, day=yesterday)
        rollups_rebuild(tenant=tenant, start=yesterday, end=yesterday)


@shared_task(name="analytics.tasks.rollups_rebuild_timezone", ignore_result=True)
def rollups_rebuild_timezone(tenant_id: int) -> None:
    """The team's time zone changed: its rollups' days (the kept range) move to the new one."""
    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is not None:
        rollups_rebuild(tenant=tenant)
