"""What messaging does when audience announces a fact (connected in MessagingConfig.ready())."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from audience.signals import contacts_merged
from messaging.models import Delivery, PushSubscription


@receiver(contacts_merged, dispatch_uid="messaging.contacts_merged")
def move_to_surviving_contact(
    sender: Any, *, tenant: Any, merged: dict[int, int], **_: Any
) -> None:
    """An anonymous visitor turned out to be a known customer: their messages and browser
    subscriptions follow them (the absorbed contact is deleted right after this signal)."""
    for absorbed, target in merged.items():
        Delivery.objects.filter(tenant=tenant, contact_id=absorbed).update(contact_id=target)
        PushSubscription.objects.filter(tenant=tenant, contact_id=absorbed).update(
            contact_id=target
        )
