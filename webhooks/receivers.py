"""What webhooks listen to: stored events (inside their transaction), journeys' conversions
(after commit) and changes to endpoints (which empty the cached subscriptions)."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save

from audience.registry import events_stored_register
from journeys.signals import conversion_recorded
from tenants.models import Tenant
from webhooks import producing
from webhooks.models import WebhookEndpoint


def endpoint_changed(sender: object, instance: WebhookEndpoint, **kwargs: Any) -> None:
    """Any save or delete (services, admin): the team's cached subscriptions are stale."""
    producing.subscriptions_forget(tenant=instance.tenant)


def tenant_saved(sender: object, instance: Tenant, created: bool = False, **kwargs: Any) -> None:
    if created:
        producing.subscriptions_none(tenant=instance)


def conversion_received(sender: object, **kwargs: Any) -> None:
    producing.conversion_messages_write(
        tenant_id=kwargs["tenant_id"],
        enrollment_public_id=kwargs["enrollment_public_id"],
        journey_id=kwargs["journey_id"],
        contact_id=kwargs["contact_id"],
        converted_at=kwargs["converted_at"],
        revenue=kwargs["revenue"],
        event=kwargs["event"],
    )


def connect() -> None:
    events_stored_register(producing.events_stored)
    conversion_recorded.connect(conversion_received, dispatch_uid="webhooks.conversion")
    post_save.connect(endpoint_changed, sender=WebhookEndpoint, dispatch_uid="webhooks.saved")
    post_delete.connect(endpoint_changed, sender=WebhookEndpoint, dispatch_uid="webhooks.deleted")
    post_save.connect(tenant_saved, sender=Tenant, dispatch_uid="webhooks.tenant_saved")
