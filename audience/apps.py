from __future__ import annotations

from django.apps import AppConfig


class AudienceConfig(AppConfig):
    name = "audience"
    verbose_name = "Audience"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from audience.partitions import partitions_after_migrate
        from audience.retention import retention_preview
        from tenants.registry import retention_preview_register

        # After tenants' row-level security (tenants comes first in INSTALLED_APPS): partitions
        # carry the table's policies, and months due while the database was down exist.
        post_migrate.connect(
            partitions_after_migrate, sender=self, dispatch_uid="audience.partitions_after_migrate"
        )
        # The team settings page shows what a retention setting would remove.
        retention_preview_register(retention_preview)
