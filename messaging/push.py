"""Web push: the channel sender, browsers' subscriptions, and test sends.

A message goes to every active subscription of its contact: a JSON payload encrypted for each
browser (RFC 8291, aes128gcm) and POSTed to its push service (RFC 8030) with the tenant's VAPID
signature (RFC 8292): encrypted by pywebpush, POSTed over kept-alive connections, a group of
messages at once (messaging/push_http.py).

Endpoints go through the outbound guard (core/outbound.py): refused when subscribing if not
https or not public, and again before and while connecting; a stored endpoint the guard refuses
is never requested, and its subscription is deactivated with the reason.

What the push service answers decides the outcome: 201/202 took it; 404/410 means the browser
dropped the subscription, which is deactivated for good; 429, 5xx and connection errors are
temporary, and the outbox tries again later if no subscription took the message. Every POST
carries `Topic` (the delivery's id): a retry after an unanswered POST replaces a copy the push
service still holds instead of queuing a second one, and the payload's `tag` makes the browser
replace a notification it already shows.
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.utils import parseaddr
from typing import Any
from urllib.parse import urlsplit

import orjson
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.timezone import now
from pywebpush import WebPusher

from audience.models import Consent, Contact
from audience.services import Call, contacts_changed_announce
from core.outbound import OutboundRefused, url_check
from messaging.links import push_click_url
from messaging.models import Channel, Delivery, PushSubscription, SenderIdentity
from messaging.outbox import Handover, Outcome, Reclaimed, SendFailure, register
from messaging.push_http import Answer, Post, Poster
from messaging.selectors import sender_identity_get
from messaging.vapid import vapid_signing_key
from tenants.models import Tenant

log = logging.getLogger(__name__)

PUSH_SUBSCRIBED = "Push Subscribed"
CONSENT_SOURCE = "browser permission"
# Push services must accept 4096-byte bodies (RFC 8291 §4); aes128gcm adds an 86-byte header,
# a padding delimiter and a 16-byte tag to what we send.
MAX_PAYLOAD_BYTES = 4096 - 86 - 1 - 16


def _ttl_seconds() -> int:
    """How long a push service keeps a message for a browser that is offline. A day: a
    marketing message older than that is more noise than news."""
    return int(getattr(settings, "MESSAGING_PUSH_TTL_SECONDS", 24 * 3600))


def push_connections() -> int:
    """How many requests one sender has open at once to each push service (and messages it
    sends at once)."""
    return max(1, int(getattr(settings, "MESSAGING_PUSH_CONNECTIONS", 8)))


def _timeout_seconds() -> float:
    return float(getattr(settings, "MESSAGING_PUSH_TIMEOUT_SECONDS", 10.0))


# --- The payload ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Encrypted:
    subscription: PushSubscription
    body: bytes  # the payload encrypted for this browser (aes128gcm)


@dataclass(frozen=True)
class PreparedPush:
    payload: bytes  # the JSON the service worker shows (static/js/wayfarer-sw.js)
    topic: str  # RFC 8030 §5.4: at most 32 base64url characters; "" for none
    encrypted: tuple[Encrypted, ...] = ()  # for each active subscription of the contact


def push_payload(
    *, rendered: Any, tag: str, delivery_id: str = "", wrap: Callable[[str], str] | None = None
) -> dict[str, Any]:
    """The notification as the service worker reads it. `wrap` turns each URL a click opens into
    a tracked one (messaging.links.push_click_url)."""
    wrap = wrap or (lambda url: url)
    actions = []
    for action in rendered.actions or []:
        url = str(action.get("url") or "")
        actions.append(
            {
                "action": str(action.get("action") or ""),
                "title": str(action.get("title") or ""),
                "url": wrap(url) if url else "",
            }
        )
    return {
        "title": rendered.title,
        "body": rendered.body,
        "icon": rendered.icon_url or "",
        "image": rendered.image_url or "",
        "url": wrap(rendered.target_url) if rendered.target_url else "",
        "actions": actions,
        "tag": tag,
        "delivery": delivery_id,
    }


def _encode(payload: dict[str, Any]) -> bytes:
    data = orjson.dumps(payload)
    if len(data) > MAX_PAYLOAD_BYTES:
        raise ValueError(
            f"the push message is {len(data)} bytes with its links; push services take at most "
            f"{MAX_PAYLOAD_BYTES}: shorten the text or the URLs"
        )
    return data


# --- VAPID -----------------------------------------------------------------------------------


def _subject(identity: SenderIdentity) -> str:
    """The VAPID `sub`: whom a push service may contact about this sender (RFC 8292 §2.1)."""
    address = identity.sender_email or parseaddr(settings.DEFAULT_FROM_EMAIL)[1]
    return f"mailto:{address}"


def _audience(endpoint: str) -> str:
    parts = urlsplit(endpoint)
    return f"{parts.scheme}://{parts.netloc}"


class VapidSigner:
    """A tenant's VAPID signature for each push service. A token is reused for an hour (RFC 8292
    §2 allows reuse until `exp`): signing once per message would cost more than encrypting it."""

    LIFETIME = 12 * 3600  # the token's `exp`; push services refuse more than 24 h
    REUSE = 3600

    def __init__(self, tenant: Tenant) -> None:
        identity = sender_identity_get(tenant=tenant)
        self.vapid = vapid_signing_key(identity.vapid_private_key)
        self.subject = _subject(identity)
        self._tokens: dict[str, tuple[float, dict[str, str]]] = {}

    def headers_for(self, endpoint: str) -> dict[str, str]:
        audience = _audience(endpoint)
        signed_at, headers = self._tokens.get(audience, (0.0, {}))
        stamp = time.time()
        if not headers or stamp - signed_at > self.REUSE:
            # A fresh claims dict for every signature: py_vapid and pywebpush write into it.
            claims = {"sub": self.subject, "aud": audience, "exp": int(stamp) + self.LIFETIME}
            headers = dict(self.vapid.sign(claims))
            self._tokens[audience] = (stamp, headers)
        return headers


# --- Posting to push services ----------------------------------------------------------------


@dataclass
class PushResult:
    """What the push services answered for one message."""

    took: int = 0
    location: str = ""
    gone: list[PushSubscription] = field(default_factory=list)
    blocked: list[tuple[PushSubscription, str]] = field(default_factory=list)  # by the guard
    temporary: list[str] = field(default_factory=list)  # 429, 5xx, no connection
    refused: list[str] = field(default_factory=list)  # other 4xx: this message never will


def _encrypted(subscriptions: Sequence[PushSubscription], payload: bytes) -> list[Encrypted]:
    """The payload encrypted for each browser (RFC 8291, by pywebpush)."""
    return [
        Encrypted(s, WebPusher(s.info()).encode(payload, "aes128gcm")["body"])
        for s in subscriptions
    ]


def _still_active(prepared: PreparedPush) -> PreparedPush:
    active = tuple(e for e in prepared.encrypted if e.subscription.active)
    if len(active) == len(prepared.encrypted):
        return prepared
    return PreparedPush(prepared.payload, prepared.topic, active)


def _posts(signer: VapidSigner, prepared: PreparedPush) -> list[Post]:
    """The message's POST to each of its subscriptions, signed (before the handover: nothing
    that can fail is left for after it but the POSTs themselves)."""
    common = {
        "TTL": str(_ttl_seconds()),
        "Content-Encoding": "aes128gcm",
        "Urgency": "normal",
        **({"Topic": prepared.topic} if prepared.topic else {}),
    }
    return [
        Post(
            e.subscription.endpoint,
            e.body,
            {**common, **signer.headers_for(e.subscription.endpoint)},
        )
        for e in prepared.encrypted
    ]


def _post_all(
    poster: Poster,
    messages: list[tuple[PreparedPush, list[Post]]],
    idle: Callable[[], bool] = lambda: False,
) -> list[PushResult]:
    """Write every message's POSTs (all at once), and what came of each message."""
    flat = [post for _, posts in messages for post in posts]
    answers = iter(poster.post_all(flat, idle))
    results = []
    for prepared, posts in messages:
        result = PushResult()
        for encrypted, _post in zip(prepared.encrypted, posts, strict=True):
            _record(result, encrypted.subscription, next(answers))
        results.append(result)
    gone = [s for r in results for s in r.gone]
    if gone:
        _deactivate(gone)
    blocked = [b for r in results for b in r.blocked]
    if blocked:
        _deactivate_blocked(blocked)
    return results


def _record(result: PushResult, subscription: PushSubscription, answer: Answer | Exception) -> None:
    if isinstance(answer, OutboundRefused):
        # Refused before a byte was sent (a host that resolves to a private address): this
        # endpoint will never be requested again.
        result.blocked.append((subscription, answer.reason))
        result.refused.append(f"{_host(subscription)}: endpoint refused, {answer.reason}")
        return
    if isinstance(answer, Exception):
        # A timeout is ambiguous (the service may have it); a retry is still right: Topic and
        # the notification tag collapse a second copy.
        result.temporary.append(f"{_host(subscription)}: {type(answer).__name__}")
        return
    status = answer.status
    if 200 <= status < 300:
        result.took += 1
        result.location = result.location or answer.headers.get("location", "")
    elif status in (404, 410):
        result.gone.append(subscription)
    elif status == 429 or status >= 500:
        retry_after = answer.headers.get("retry-after")
        wait = f" (Retry-After {retry_after})" if retry_after else ""
        result.temporary.append(f"{_host(subscription)}: {status}{wait}")
    else:
        result.refused.append(f"{_host(subscription)}: {status} {answer.text[:80]}")


def _host(subscription: PushSubscription) -> str:
    return urlsplit(subscription.endpoint).netloc


def _deactivate(
    subscriptions: Sequence[PushSubscription],
    reason: str = "the push service no longer knows it (404/410)",
) -> None:
    ids = [s.pk for s in subscriptions]
    tenants = {s.tenant_id for s in subscriptions}
    PushSubscription.objects.filter(tenant_id__in=tenants, pk__in=ids).update(
        active=False, deactivated_reason=reason[:200], updated_at=now()
    )
    for s in subscriptions:
        s.active = False
    # Rare (a browser gone for good), so one more query for the tenants is no cost that counts.
    for tenant in Tenant.objects.filter(pk__in=tenants):
        contact_ids = [s.contact_id for s in subscriptions if s.tenant_id == tenant.pk]
        contacts_changed_announce(tenant=tenant, contact_ids=contact_ids)


def _deactivate_blocked(blocked: Sequence[tuple[PushSubscription, str]]) -> None:
    by_reason: dict[str, list[PushSubscription]] = {}
    for subscription, reason in blocked:
        by_reason.setdefault(reason, []).append(subscription)
    for reason, subscriptions in by_reason.items():
        _deactivate(subscriptions, f"endpoint refused: {reason}")


def _guarded(prepared: PreparedPush) -> tuple[PreparedPush, list[tuple[PushSubscription, str]]]:
    """The message without the subscriptions whose stored endpoint the outbound guard refuses
    as it is written (no DNS here: connecting checks the addresses), and those refused."""
    kept, blocked = [], []
    for e in prepared.encrypted:
        try:
            url_check(e.subscription.endpoint, resolve=False)
        except OutboundRefused as exc:
            blocked.append((e.subscription, exc.reason))
            continue
        kept.append(e)
    if not blocked:
        return prepared, []
    return PreparedPush(prepared.payload, prepared.topic, tuple(kept)), blocked


def _failure(result: PushResult) -> SendFailure:
    """Why no subscription took the message: retryable while some answer may change."""
    if result.temporary:
        return SendFailure(
            "push service unavailable: " + "; ".join(result.temporary), retryable=True
        )
    parts = [f"{len(result.gone)} subscription(s) expired (404/410)"] if result.gone else []
    parts += [f"refused by {r}" for r in result.refused]
    return SendFailure("; ".join(parts) or "no active push subscription", retryable=False)


# --- The channel -----------------------------------------------------------------------------


@register(Channel.PUSH)
class PushSender:
    """One instance per outbox run: kept-alive connections to each push service, one VAPID
    signer per tenant, and the active subscriptions of a claimed batch's contacts, loaded in
    one query when the outbox begins the batch. A group's messages are POSTed all at once."""

    def __init__(self) -> None:
        self.group_size = push_connections()
        self.poster = Poster(per_origin=self.group_size, timeout=_timeout_seconds())
        self._signers: dict[int, VapidSigner] = {}
        self._subscriptions: dict[int, list[PushSubscription]] = {}

    def prepare(self, delivery: Delivery, context: dict[str, Any]) -> PreparedPush:
        from messaging.rendering import render_push

        rendered = render_push(delivery.content, context)
        payload = push_payload(
            rendered=rendered,
            tag=f"wayfarer-{delivery.public_id}",
            delivery_id=str(delivery.public_id),
            wrap=lambda url: push_click_url(delivery, url),
        )
        data = _encode(payload)
        subscriptions = self._subscriptions.get(delivery.contact_id, [])
        return PreparedPush(data, delivery.public_id.hex, tuple(_encrypted(subscriptions, data)))

    def send_group(
        self,
        group: list[tuple[Delivery, PreparedPush]],
        handover: Handover,
        idle: Callable[[], bool],
    ) -> list[Outcome]:
        outcomes: list[Outcome | None] = [None] * len(group)
        ready: dict[int, tuple[PreparedPush, list[Post]]] = {}
        for i, (d, prepared) in enumerate(group):
            # A subscription a message earlier in the batch found gone is left out.
            prepared, blocked = _guarded(_still_active(prepared))
            if blocked:
                _deactivate_blocked(blocked)
            if not prepared.encrypted:
                reasons = [f"endpoint refused, {reason}" for _s, reason in blocked]
                outcomes[i] = SendFailure(
                    "; ".join(reasons) or "no active push subscription", retryable=False
                )
                continue
            try:
                ready[i] = (prepared, _posts(self._signer_for(d.tenant), prepared))
            except Exception as exc:  # the tenant's VAPID key cannot sign
                log.exception("push for delivery %s could not be signed", d.pk)
                outcomes[i] = SendFailure(f"could not sign the push: {exc}", retryable=False)
        # The POSTs are the point of no return: stamped together, then written together.
        mine = {d.pk for d in handover([group[i][0] for i in ready])}
        posting = [i for i in ready if group[i][0].pk in mine]
        results = _post_all(self.poster, [ready[i] for i in posting], idle)
        for i, result in zip(posting, results, strict=True):
            took = result.location[:255] or f"{result.took} subscription(s)"
            outcomes[i] = took if result.took else _failure(result)
        return [
            Reclaimed(f"delivery {group[i][0].pk} was reclaimed") if o is None else o
            for i, o in enumerate(outcomes)
        ]

    def close(self) -> None:
        self.poster.close()

    def _signer_for(self, tenant: Tenant) -> VapidSigner:
        if tenant.pk not in self._signers:
            self._signers[tenant.pk] = VapidSigner(tenant)
        return self._signers[tenant.pk]

    def begin(self, deliveries: Sequence[Delivery]) -> None:
        """Load the active subscriptions of a batch's contacts, in one query per tenant."""
        self._subscriptions = {}
        by_tenant: dict[int, set[int]] = {}
        for d in deliveries:
            by_tenant.setdefault(d.tenant_id, set()).add(d.contact_id)
        for tenant_id, contact_ids in by_tenant.items():
            found = PushSubscription.objects.filter(
                tenant_id=tenant_id, contact_id__in=contact_ids, active=True
            ).order_by("contact_id", "-updated_at", "pk")
            for s in found:
                self._subscriptions.setdefault(s.contact_id, []).append(s)


def push_send_test(*, tenant: Tenant, contact: Contact, rendered: Any) -> int:
    """Send a rendered push to the contact's active subscriptions now, without the outbox (the
    editor's "send test"). Links are not tracked. Returns how many subscriptions took it."""
    subscriptions = list(
        PushSubscription.objects.filter(tenant=tenant, contact=contact, active=True).order_by(
            "-updated_at"
        )
    )
    if not subscriptions:
        return 0
    # Each test is a new notification (its own tag), never collapsed with the previous one.
    data = _encode(push_payload(rendered=rendered, tag=f"wayfarer-test-{uuid.uuid4()}"))
    prepared, blocked = _guarded(PreparedPush(data, "", tuple(_encrypted(subscriptions, data))))
    if blocked:
        _deactivate_blocked(blocked)
    if not prepared.encrypted:
        return 0
    poster = Poster(per_origin=push_connections(), timeout=_timeout_seconds())
    try:
        [result] = _post_all(poster, [(prepared, _posts(VapidSigner(tenant), prepared))])
    finally:
        poster.close()
    return result.took


# --- Subscriptions ---------------------------------------------------------------------------


def _b64url_decode(value: object, field_name: str) -> bytes:
    if not isinstance(value, str) or not value:
        raise ValidationError({field_name: "Give it as a base64url string."})
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise ValidationError({field_name: "This is not base64url."}) from None


def _validate_keys(endpoint: object, p256dh: object, auth: object) -> None:
    if not isinstance(endpoint, str) or not endpoint:
        raise ValidationError({"endpoint": "A subscription needs its endpoint URL."})
    if len(endpoint) > 2000:
        raise ValidationError({"endpoint": "The endpoint is longer than 2000 characters."})
    try:
        # Push services are public HTTPS services (core/outbound.py; a local test receiver
        # only with WAYFARER_OUTBOUND_ALLOW_PRIVATE).
        url_check(endpoint)
    except OutboundRefused as exc:
        raise ValidationError({"endpoint": f"The endpoint is refused: {exc.reason}."}) from None
    point = _b64url_decode(p256dh, "p256dh")
    if len(point) != 65 or point[0] != 4:
        raise ValidationError({"p256dh": "Expected an uncompressed P-256 public key (65 bytes)."})
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError:
        raise ValidationError({"p256dh": "This is not a point on the P-256 curve."}) from None
    if len(_b64url_decode(auth, "auth")) != 16:
        raise ValidationError({"auth": "Expected a 16-byte auth secret."})


def push_subscription_save(
    *,
    tenant: Tenant,
    contact: Contact,
    endpoint: str,
    p256dh: str,
    auth: str,
    user_agent: str = "",
) -> PushSubscription:
    """Store a browser's subscription for the contact: by (tenant, endpoint), so a browser that
    subscribes again (new keys, another visitor signed in) updates its one row and turns it on.
    Raises ValidationError by field for keys no browser would send."""
    _validate_keys(endpoint, p256dh, auth)
    if contact.tenant_id != tenant.pk:
        raise ValueError("the contact belongs to another tenant")
    with transaction.atomic():
        # The browser may have belonged to another contact until now: both became (un)reachable.
        previous = PushSubscription.objects.filter(tenant=tenant, endpoint=endpoint).values_list(
            "contact_id", flat=True
        )
        changed = [contact.pk, *previous]
        subscription, _ = PushSubscription.objects.update_or_create(
            tenant=tenant,
            endpoint=endpoint,
            defaults={
                "contact": contact,
                "p256dh": p256dh,
                "auth": auth,
                "user_agent": user_agent[:500],
                "active": True,
                "deactivated_reason": "",
                "updated_at": now(),
            },
        )
        contacts_changed_announce(tenant=tenant, contact_ids=changed)
    return subscription


def push_subscribe(
    *,
    tenant: Tenant,
    anonymous_id: str | None,
    user_id: str | None,
    endpoint: str,
    p256dh: str,
    auth: str,
    user_agent: str = "",
    context: dict[str, Any] | None = None,
) -> PushSubscription:
    """A browser allowed notifications (POST /v1/push/subscribe): record `Push Subscribed` on
    the visitor's contact (found or created from the ids, like any tracked event), grant push
    consent, and save the subscription, all or nothing."""
    from audience.services import calls_record
    from messaging.services import consent_set

    _validate_keys(endpoint, p256dh, auth)  # before anything is written
    call = Call(
        type="track",
        message_id=f"push-subscribed:{uuid.uuid4()}",
        user_id=user_id,
        anonymous_id=anonymous_id,
        event=PUSH_SUBSCRIBED,
        properties={"endpoint_host": urlsplit(endpoint).hostname or ""},
        context=context or {},
    )
    with transaction.atomic():
        recorded = calls_record(tenant=tenant, calls=[call], source="push")
        contact = Contact.objects.get(tenant=tenant, pk=recorded.contact_ids[0])
        consent_set(
            tenant=tenant,
            contact=contact,
            channel=Channel.PUSH,
            consent=Consent.GRANTED,
            source=CONSENT_SOURCE,
        )
        return push_subscription_save(
            tenant=tenant,
            contact=contact,
            endpoint=endpoint,
            p256dh=p256dh,
            auth=auth,
            user_agent=user_agent,
        )


def push_subscription_deactivate(*, tenant: Tenant, endpoint: str, reason: str) -> bool:
    """Turn off the tenant's subscription with this endpoint; False if it has none."""
    with transaction.atomic():
        found = PushSubscription.objects.filter(tenant=tenant, endpoint=endpoint)
        contact_ids = list(found.values_list("contact_id", flat=True))
        changed = found.update(active=False, deactivated_reason=reason[:200], updated_at=now())
        contacts_changed_announce(tenant=tenant, contact_ids=contact_ids)
    return bool(changed)
