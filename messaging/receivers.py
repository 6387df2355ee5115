"""What messaging does when audience or tenants announce a fact (connected in
MessagingConfig.ready())."""

from __future__ import annotations

from typing import Any

from django.db.models import Case, Value, When
from django.dispatch import receiver

from audience.signals import contacts_merged
from messaging.models import Delivery, PushSubscription
from messaging.services import sender_identity_create
from tenants.models import Tenant
from tenants.signals import tenant_created


@receiver(contacts_merged, dispatch_uid="messaging.contacts_merged")
def move_to_surviving_contact(
    sender: Any, *, tenant: Any, merged: dict[int, int], **_: Any
) -> None:
    """An anonymous visitor turned out to be a known customer: their messages and browser
    subscriptions follow them (the absorbed contact is deleted right after this signal)."""
    if not merged:
        return
    # One statement per table however many contacts a batch merged (an anonymous visitor has
    # few deliveries and subscriptions, so a CASE with a branch per merge is cheap).
    target = Case(*(When(contact_id=pk, then=Value(to)) for pk, to in merged.items()))
    for model in (Delivery, PushSubscription):
        model.objects.filter(tenant=tenant, contact_id__in=list(merged)).update(contact_id=target)


@receiver(tenant_created, dispatch_uid="messaging.tenant_created")
def make_sender_identity(sender: Any, *, tenant: Tenant, **_: Any) -> None:
    """A new tenant sends as itself: its name on the From line (until it sets an address) and
    its own VAPID key pair for web push, made in the tenant's creating transaction."""
    sender_identity_create(tenant=tenant, sender_name=tenant.name)
