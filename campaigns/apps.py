from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = "Campaigns"

    def ready(self) -> None:
        from messaging.registry import template_users_register

        template_users_register(template_users)


def template_users(*, tenant: Any, template: Any) -> list[str]:
    """The campaigns whose variants send `template` (messaging.registry)."""
    from campaigns.models import Variant

    variants = Variant.objects.filter(tenant=tenant, template=template).values_list(
        "campaign__name", "key"
    )
    return [f"campaign “{name}” (variant {key})" for name, key in variants]
