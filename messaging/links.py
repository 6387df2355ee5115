"""Signed links in messages: open pixel, click redirects, unsubscribe and preferences.

A token names a delivery (its public id) and is signed with SECRET_KEY, so nobody can forge an
open, a click or an unsubscribe for someone else, and a click redirect only ever leads to the
URL the message contained (no open redirect).
"""

from __future__ import annotations

import base64
import uuid
from urllib.parse import urlencode

from django.conf import settings
from django.core import signing
from django.urls import reverse

from messaging.models import Delivery

_SALT = "messaging.links"


def _signer() -> signing.Signer:
    return signing.Signer(salt=_SALT)


def _token(delivery: Delivery) -> str:
    # The tenant's id (hex) and the delivery's uuid in 22 characters of base64url: short links in
    # plain-text mail, and a lookup by (tenant, public_id), the index every tenant table has.
    raw = base64.urlsafe_b64encode(delivery.public_id.bytes).rstrip(b"=").decode()
    return _signer().sign(f"{delivery.tenant_id:x}.{raw}")


def delivery_ref(token: str) -> tuple[int, uuid.UUID]:
    """(tenant id, delivery public id) of a token; raises signing.BadSignature for anything
    forged or garbled."""
    value = _signer().unsign(token)
    tenant, _, raw = value.partition(".")
    try:
        return int(tenant, 16), uuid.UUID(
            bytes=base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
        )
    except (ValueError, TypeError):
        raise signing.BadSignature("Not a delivery.") from None


def delivery_public_id(token: str) -> uuid.UUID:
    """The delivery a token names; raises signing.BadSignature for anything forged or garbled."""
    return delivery_ref(token)[1]


def url_signature(token: str, url: str) -> str:
    # A salt of its own: a URL's signature is never a valid token signature.
    return signing.Signer(salt=f"{_SALT}.url").signature(f"{token}|{url}")


def url_is_signed(token: str, url: str, signature: str) -> bool:
    return signing.constant_time_compare(url_signature(token, url), signature)


def _absolute(path: str) -> str:
    return f"{settings.SITE_URL}{path}"


def open_url(delivery: Delivery) -> str:
    return _absolute(reverse("messaging:open", args=[_token(delivery)]))


def click_url(delivery: Delivery, url: str) -> str:
    token = _token(delivery)
    query = urlencode({"u": url, "s": url_signature(token, url)})
    return _absolute(f"{reverse('messaging:click', args=[token])}?{query}")


def push_click_url(delivery: Delivery, url: str) -> str:
    token = _token(delivery)
    query = urlencode({"u": url, "s": url_signature(token, url)})
    return _absolute(f"{reverse('messaging:push-click', args=[token])}?{query}")


def unsubscribe_url(delivery: Delivery) -> str:
    """GET shows a confirmation page; POST (RFC 8058 one-click) unsubscribes at once."""
    return _absolute(reverse("messaging:unsubscribe", args=[_token(delivery)]))


def preferences_url(delivery: Delivery) -> str:
    return _absolute(reverse("messaging:preferences", args=[_token(delivery)]))
