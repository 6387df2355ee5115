from __future__ import annotations

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Tenants"

    def ready(self) -> None:
        from tenants import schema  # noqa: F401  (registers the OpenAPI auth extension)
        from tenants.rls import policies_install

        # After every migrate, whichever app it migrated: row-level security on every
        # tenant-owned table (tenants/rls.py).
        post_migrate.connect(
            policies_install, sender=self, dispatch_uid="tenants.rls.policies_install"
        )
