from __future__ import annotations

from django.apps import AppConfig


class AudienceConfig(AppConfig):
    name = "audience"
    verbose_name = "Audience"

    def ready(self) -> None:
        # The team settings page shows what a retention setting would remove.
        from audience.retention import retention_preview
        from tenants.registry import retention_preview_register

        retention_preview_register(retention_preview)
