from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = "Campaigns"

    def ready(self) -> None:
        from audience.registry import before_events_removed_register
        from campaigns.results import results_freeze_before
        from messaging.registry import template_users_register
        from segments.registry import segment_users_register

        template_users_register(template_users)
        segment_users_register(segment_users)
        # Retention removes old events: the results counted from them are kept first.
        before_events_removed_register(results_freeze_before)


def template_users(*, tenant: Any, template: Any) -> list[str]:
    """The campaigns whose variants send `template` (messaging.registry)."""
    from campaigns.models import Variant

    variants = Variant.objects.filter(tenant=tenant, template=template).values_list(
        "campaign__name", "key"
    )
    return [f"campaign “{name}” (variant {key})" for name, key in variants]


def segment_users(*, tenant: Any, segment: Any) -> list[str]:
    """The campaigns that go to `segment` or keep away from it (segments.registry): any
    campaign, sent or cancelled ones too, since its segments stay part of its record."""
    from campaigns.models import CampaignSegment

    names = CampaignSegment.objects.filter(tenant=tenant, segment=segment).values_list(
        "campaign__name", flat=True
    )
    return [f"campaign “{name}”" for name in names.distinct()]
