"""Signed links in messages: open pixel, click redirects, unsubscribe and preferences.

A token names a delivery (its public id) and is signed with SECRET_KEY, so nobody can forge an
open, a click or an unsubscribe for someone else, and a click redirect only ever leads to the
URL the message contained (no open redirect).
"""

from __future__ import annotations

import base64
import functools
import uuid
from urllib.parse import quote_plus

from django.conf import settings
from django.core import signing
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils.crypto import constant_time_compare

from messaging.models import Delivery

_SALT = "messaging.links"


# A message has a handful of links, all with the same token, made for thousands of messages a
# second: the signers, the tokens and the routes' paths are made once (they depend only on what
# their caches are keyed by, SECRET_KEY included).


@functools.lru_cache(maxsize=8)
def _cached_signer(salt: str, key: str, fallbacks: tuple[str, ...]) -> signing.Signer:
    return signing.Signer(key=key, fallback_keys=list(fallbacks), salt=salt)


def _signer(salt: str = _SALT) -> signing.Signer:
    return _cached_signer(salt, settings.SECRET_KEY, tuple(settings.SECRET_KEY_FALLBACKS))


@functools.lru_cache(maxsize=4096)
def _signed(key: str, tenant_id: int, public_id: uuid.UUID) -> str:
    # The tenant's id (hex) and the delivery's uuid in 22 characters of base64url: short links in
    # plain-text mail, and a lookup by (tenant, public_id), the index every tenant table has.
    raw = base64.urlsafe_b64encode(public_id.bytes).rstrip(b"=").decode()
    return _signer().sign(f"{tenant_id:x}.{raw}")


def _token(delivery: Delivery) -> str:
    return _signed(settings.SECRET_KEY, delivery.tenant_id, delivery.public_id)


_SLOT = "TOKEN"


@functools.lru_cache(maxsize=64)
def _route(name: str, prefix: str, urlconf: str) -> tuple[str, str]:
    # The last "TOKEN": the script prefix before the slot might contain one.
    head, _, tail = reverse(name, args=[_SLOT], urlconf=urlconf).rpartition(_SLOT)
    return head, tail


def _path(name: str, token: str) -> str:
    """reverse(name, args=[token]): a token needs no quoting (base64url, "." and ":")."""
    urlconf = get_urlconf() or settings.ROOT_URLCONF  # outside a request: the settings' one
    head, tail = _route(name, get_script_prefix(), urlconf)
    return f"{head}{token}{tail}"


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
    return _signer(f"{_SALT}.url").signature(f"{token}|{url}")


def url_is_signed(token: str, url: str, signature: str) -> bool:
    """Signed with SECRET_KEY or one of SECRET_KEY_FALLBACKS: the links of mail sent before a
    key rotation keep working, as their tokens do."""
    signer = _signer(f"{_SALT}.url")
    return any(
        constant_time_compare(signer.signature(f"{token}|{url}", key), signature)
        for key in [signer.key, *signer.fallback_keys]
    )


def _absolute(path: str) -> str:
    return f"{settings.SITE_URL}{path}"


def open_url(delivery: Delivery) -> str:
    return _absolute(_path("open_pixel", _token(delivery)))


def _query(token: str, url: str) -> str:
    # urlencode({"u": url, "s": signature}), spelled out: a signature is base64url, never quoted.
    return f"u={quote_plus(url)}&s={url_signature(token, url)}"


def click_url(delivery: Delivery, url: str) -> str:
    token = _token(delivery)
    return _absolute(f"{_path('click', token)}?{_query(token, url)}")


def push_click_url(delivery: Delivery, url: str) -> str:
    token = _token(delivery)
    return _absolute(f"{_path('push_click', token)}?{_query(token, url)}")


def unsubscribe_url(delivery: Delivery) -> str:
    """GET shows a confirmation page; POST (RFC 8058 one-click) unsubscribes at once."""
    return _absolute(_path("unsubscribe", _token(delivery)))


def preferences_url(delivery: Delivery) -> str:
    return _absolute(_path("preferences", _token(delivery)))
