"""Where analytics listens to the apps below it (connected in AnalyticsConfig.ready())."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from analytics import rollups
from analytics.models import RollupState
from tenants.models import Tenant


def on_contacts_merged(*, tenant: Tenant, merged: dict[int, int], **kwargs: Any) -> None:
    """Inside the ingestion transaction: the absorbed contacts' rollup rows move first."""
    rollups.contacts_merged_move(tenant=tenant, merged=merged)


def on_contacts_changed(*, tenant: Tenant, contact_ids: list[int], **kwargs: Any) -> None:
    """After a profile change committed: visit rows follow whether the contact is identified."""
    rollups.contacts_reconcile(tenant=tenant, contact_ids=contact_ids)


def on_tenant_saved(*, instance: Tenant, created: bool, **kwargs: Any) -> None:
    """A team's time zone changed: its rollups' days move to the new zone (a task, after
    commit). A new team's rollups start in its zone."""
    if created:
        return
    state = RollupState.objects.filter(tenant=instance).values_list("timezone", flat=True).first()
    if state is not None and state != (instance.timezone or "UTC"):
        from analytics.tasks import rollups_rebuild_timezone

        tenant_id = instance.pk
        transaction.on_commit(lambda: rollups_rebuild_timezone.delay(tenant_id), robust=True)
