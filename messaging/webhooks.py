"""What the email service provider tells us after a message left: delivered, bounced,
complained, opened, clicked, unsubscribed (django-anymail's normalised `tracking` signal,
connected in MessagingConfig.ready()).

anymail's webhook views (mounted at /anymail/, e.g. /anymail/postmark/tracking/, by
messaging/esp_webhooks.py, which refuses them until their secret or signature is configured)
check the ESP's basic auth or signature and turn its payload into AnymailTrackingEvents. The
message is found by the metadata messaging/mail.py gives every email: {"delivery": public id,
"tenant": slug}. An event for a message we do not know (sent by something else, or since
erased) is logged and ignored, so the ESP does not retry it forever.

An event changes only its own message's recipient: one that names another address than the
delivery's contact has is ignored (the delivery id is in every email's headers, so a forged or
confused report must not suppress someone else).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from anymail.signals import AnymailTrackingEvent, EventType, tracking
from django.conf import settings
from django.db import transaction
from django.dispatch import receiver

from messaging import outcomes, services
from messaging import tracking as message_tracking
from messaging.models import Channel, Delivery, Suppression

log = logging.getLogger(__name__)

# Bounces that say "not now" rather than "never": an SMTP 4xx reply, or what Postmark calls them.
_SOFT_REPLY = re.compile(r"^\s*4\d\d\b")
_SOFT_TYPES = frozenset({"SoftBounce", "Transient", "DnsError"})


@receiver(tracking, dispatch_uid="messaging.webhooks.tracking")
def tracking_received(sender: Any, *, event: AnymailTrackingEvent, esp_name: str, **_: Any) -> None:
    delivery = _delivery(event)
    if delivery is None:
        return
    with transaction.atomic():
        tracking_apply(delivery=delivery, event=event, esp_name=esp_name)


def _text(value: object) -> str:
    """A field of the provider's payload as text: "" for a missing or non-text value."""
    return value if isinstance(value, str) else ""


def _address(value: object) -> str:
    return _text(value).strip().lower()


def _delivery(event: AnymailTrackingEvent) -> Delivery | None:
    metadata = event.metadata if isinstance(event.metadata, dict) else {}
    public_id = _text(metadata.get("delivery"))
    delivery = None
    if public_id:
        delivery = message_tracking.delivery_for_public_id(
            public_id=public_id, tenant_slug=_text(metadata.get("tenant"))
        )
    if delivery is None or delivery.channel != Channel.EMAIL:
        log.info(
            "ignoring an ESP %s event for an unknown message (delivery %r, message id %r)",
            event.event_type,
            public_id,
            event.message_id,
        )
        return None
    recipient = event.recipient
    if recipient and (
        not isinstance(recipient, str) or _address(recipient) != _address(delivery.contact.email)
    ):
        log.warning(
            "ignoring an ESP %s event for delivery %s: it names another recipient",
            event.event_type,
            delivery.public_id,
        )
        return None
    return delivery


def tracking_apply(*, delivery: Delivery, event: AnymailTrackingEvent, esp_name: str) -> None:
    """Turn one ESP event about `delivery` into suppressions, consent and outcome events."""
    kind = event.event_type
    # The delivery's own recipient (_delivery() ignored an event naming another).
    address = _address(delivery.contact.email)
    detail = _detail(event)
    facts = {"esp": esp_name, **({"detail": detail} if detail else {})}
    if kind == EventType.BOUNCED and _is_soft(event):
        log.info("soft bounce for delivery %s: %s", delivery.public_id, detail)
        return
    if kind in (EventType.BOUNCED, EventType.REJECTED):
        if address:
            services.suppression_add(
                tenant=delivery.tenant,
                address=address,
                reason=Suppression.Reason.BOUNCED,
                detail=detail or str(event.reject_reason or kind),
            )
        reason = str(event.reject_reason or kind)
        message_tracking.outcome_record(
            delivery=delivery,
            name=outcomes.EMAIL_BOUNCED,
            properties={**facts, "reason": reason},
            unique=True,
        )
    elif kind == EventType.COMPLAINED:
        if address:
            services.suppression_add(
                tenant=delivery.tenant,
                address=address,
                reason=Suppression.Reason.COMPLAINED,
                detail=detail,
            )
        message_tracking.outcome_record(
            delivery=delivery, name=outcomes.EMAIL_COMPLAINED, properties=facts, unique=True
        )
        message_tracking.unsubscribe(delivery=delivery, source=f"spam complaint ({esp_name})")
    elif kind == EventType.DELIVERED:
        message_tracking.outcome_record(
            delivery=delivery, name=outcomes.EMAIL_DELIVERED, properties=facts, unique=True
        )
    elif kind == EventType.OPENED:
        message_tracking.open_record(
            delivery=delivery, user_agent=_text(event.user_agent), via=esp_name
        )
    elif kind == EventType.CLICKED:
        if _is_our_link(_text(event.click_url)):
            return  # the ESP wrapped our own click redirect, which records the click itself
        message_tracking.click_record(
            delivery=delivery,
            url=_text(event.click_url),
            user_agent=_text(event.user_agent),
            via=esp_name,
        )
    elif kind == EventType.UNSUBSCRIBED:
        message_tracking.unsubscribe(delivery=delivery, source=f"unsubscribed at {esp_name}")
    # queued, sent, deferred, autoresponded, subscribed, unknown: nothing to act on.


def _is_our_link(url: str) -> bool:
    return url.startswith(f"{settings.SITE_URL}/m/")


def _detail(event: AnymailTrackingEvent) -> str:
    parts = [p for p in (event.description, event.mta_response) if p]
    return " — ".join(str(p) for p in parts)[:500]


def _is_soft(event: AnymailTrackingEvent) -> bool:
    esp_event = event.esp_event if isinstance(event.esp_event, dict) else {}
    if esp_event.get("Type") in _SOFT_TYPES:
        return True
    return bool(event.mta_response and _SOFT_REPLY.match(str(event.mta_response)))
