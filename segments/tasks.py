from __future__ import annotations

from celery import shared_task

from segments import services
from tenants.models import Tenant


@shared_task(name="segments.tasks.segment_memberships_refresh_contacts", ignore_result=True)
def segment_memberships_refresh_contacts(tenant_id: int, contact_ids: list[int]) -> None:
    """Safe to run twice: a refresh that finds nothing to change records nothing."""
    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is not None:
        services.segment_memberships_refresh_contacts(tenant=tenant, contact_ids=contact_ids)


@shared_task(name="segments.tasks.segment_memberships_refresh_time_relative", ignore_result=True)
def segment_memberships_refresh_time_relative() -> None:
    services.segment_memberships_refresh_all(time_relative_only=True)
