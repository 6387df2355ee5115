from __future__ import annotations

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Tenants"

    def ready(self) -> None:
        from tenants import schema  # noqa: F401  (registers the OpenAPI auth extension)
        from tenants.keys import keys_install
        from tenants.rls import policies_install

        # After every migrate, whichever app it migrated: row-level security on every
        # tenant-owned table (tenants/rls.py), and the tenant in every key (tenants/keys.py).
        post_migrate.connect(
            policies_install, sender=self, dispatch_uid="tenants.rls.policies_install"
        )
        post_migrate.connect(keys_install, sender=self, dispatch_uid="tenants.keys.keys_install")
