from __future__ import annotations

from django.apps import AppConfig


class AudienceConfig(AppConfig):
    name = "audience"
    verbose_name = "Audience"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from audience import stages
        from audience.partitions import partitions_after_migrate
        from audience.retention import retention_preview
        from audience.signals import contacts_changed, events_recorded
        from tenants.registry import retention_preview_register

        # After tenants' row-level security (tenants comes first in INSTALLED_APPS): partitions
        # carry the table's policies, and months due while the database was down exist.
        post_migrate.connect(
            partitions_after_migrate, sender=self, dispatch_uid="audience.partitions_after_migrate"
        )
        # Lifecycle stages follow what contacts do (audience/stages.py): recomputed after the
        # events or profile changes commit.
        events_recorded.connect(
            stages.on_events_recorded, dispatch_uid="audience.stages.on_events_recorded"
        )
        contacts_changed.connect(
            stages.on_contacts_changed, dispatch_uid="audience.stages.on_contacts_changed"
        )
        # The team settings page shows what a retention setting would remove.
        retention_preview_register(retention_preview)
