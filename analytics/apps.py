from __future__ import annotations

from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "analytics"
    verbose_name = "Analytics"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from analytics import receivers, rollups
        from audience.registry import events_stored_register
        from audience.signals import contacts_changed, contacts_merged
        from tenants.models import Tenant

        # The rollups count events inside the transaction that stores them (analytics/rollups.py).
        events_stored_register(rollups.events_stored)
        contacts_merged.connect(
            receivers.on_contacts_merged, dispatch_uid="analytics.rollups.contacts_merged"
        )
        contacts_changed.connect(
            receivers.on_contacts_changed, dispatch_uid="analytics.rollups.contacts_changed"
        )
        post_save.connect(
            receivers.on_tenant_saved, sender=Tenant, dispatch_uid="analytics.rollups.tenant_saved"
        )
