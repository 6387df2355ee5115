"""What the links inside messages record: opens, clicks, push clicks and unsubscribes.

The public views (messaging/public_views.py) and the ESP webhooks (messaging/webhooks.py) call
these. A token (messaging/links.py) names one delivery, and the delivery names its tenant and
contact: nothing here takes a tenant from anywhere else, so one tenant's link can never touch
another tenant's contact.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from django.core import signing
from django.db import IntegrityError, transaction

from audience.models import Consent
from core import rls
from core.ids import parse_uuid
from messaging import links, outcomes, services
from messaging.models import Channel, Delivery

log = logging.getLogger(__name__)

CHANNELS = (Channel.EMAIL, Channel.PUSH)


def delivery_for_token(token: str) -> Delivery | None:
    """The delivery a signed link names, or None for a forged, garbled or unknown token.

    The edge of the link views: the signed token names the tenant, and the connection is
    scoped to it (row-level security, core/rls.py)."""
    try:
        tenant_id, public_id = links.delivery_ref(token)
    except signing.BadSignature:
        return None
    rls.tenant_set(tenant_id)
    found = Delivery.objects.select_related("tenant", "contact")
    return found.filter(tenant_id=tenant_id, public_id=public_id).first()


def delivery_for_public_id(*, public_id: uuid.UUID | str, tenant_slug: str = "") -> Delivery | None:
    """The delivery with this public id (within the tenant, when its slug is known), or None.

    The edge of the ESP webhooks: looked up across tenants, then the connection is scoped to
    the delivery's tenant (row-level security, core/rls.py)."""
    key = parse_uuid(public_id)
    if key is None:
        return None
    with rls.edge_lookup():
        found = Delivery.objects.select_related("tenant", "contact").filter(public_id=key)
        if tenant_slug:
            found = found.filter(tenant__slug=tenant_slug)
        # Public ids are unique per tenant only; two tenants holding the same uuid4 is not going
        # to happen, but if it ever did the link must not pick one of them.
        rows = list(found[:2])
        if len(rows) != 1:
            return None
        rls.tenant_set(rows[0].tenant_id)
    return rows[0]


def outcome_record(
    *, delivery: Delivery, name: str, properties: dict[str, Any], unique: bool
) -> bool:
    """Record one outcome; returns whether it was stored. Two requests racing to record the
    same unique outcome (a pixel loaded twice at once) both pass record()'s "already stored?"
    check and one INSERT then hits the unique message id: that one quietly lost, not a 500.
    The savepoint keeps a caller's transaction usable on PostgreSQL after the error."""
    try:
        with transaction.atomic():
            return bool(outcomes.record([(delivery, name, properties)], unique=unique))
    except IntegrityError:
        return False


def _client(user_agent: str) -> dict[str, Any]:
    return {"user_agent": user_agent[:500]} if user_agent else {}


def open_record(*, delivery: Delivery, user_agent: str = "", via: str = "pixel") -> bool:
    """`Email Opened`, once per delivery however often the message is opened."""
    return outcome_record(
        delivery=delivery,
        name=outcomes.EMAIL_OPENED,
        properties={**_client(user_agent), "via": via},
        unique=True,
    )


def click_record(
    *, delivery: Delivery, url: str, user_agent: str = "", via: str = "redirect"
) -> None:
    """`Email Link Clicked`, every click; and `Email Opened` if the open was never seen (the
    reader's client blocks images, but clicking proves the message was opened)."""
    properties = {**_client(user_agent), "url": url[:2000], "via": via}
    outcome_record(
        delivery=delivery, name=outcomes.EMAIL_CLICKED, properties=properties, unique=False
    )
    open_record(delivery=delivery, user_agent=user_agent, via=via)


def push_click_record(*, delivery: Delivery, url: str, user_agent: str = "") -> None:
    """`Push Clicked`, every click on the notification (or one of its actions)."""
    properties = {**_client(user_agent), "url": url[:2000]}
    outcome_record(
        delivery=delivery, name=outcomes.PUSH_CLICKED, properties=properties, unique=False
    )


def unsubscribe(*, delivery: Delivery, source: str = "one-click unsubscribe") -> bool:
    """Revoke the contact's consent for the delivery's channel (idempotent; the very next
    marketing message on it is skipped). Returns whether it changed."""
    return services.consent_set(
        tenant=delivery.tenant,
        contact=delivery.contact,
        channel=delivery.channel,
        consent=Consent.REVOKED,
        source=source,
    )


def preferences_save(
    *, delivery: Delivery, wanted: dict[str, bool], source: str = "preference centre"
) -> list[str]:
    """Grant or revoke each channel's consent as the contact chose; returns the channels that
    changed."""
    changed: list[str] = []
    for channel in CHANNELS:
        if channel not in wanted:
            continue
        consent = Consent.GRANTED if wanted[channel] else Consent.REVOKED
        if services.consent_set(
            tenant=delivery.tenant,
            contact=delivery.contact,
            channel=channel,
            consent=consent,
            source=source,
        ):
            changed.append(channel)
    return changed
