"""Signed survey links: /s/<token>/ for one contact, one survey and one send (the delivery).

The token holds the tenant's id, the survey's, the contact's and the delivery's public ids,
signed with SECRET_KEY under a salt of its own (as messaging/links.py signs its links), so a
link cannot be forged, and changing any part of it — another survey, contact, delivery or
tenant — breaks the signature. The one-click links of an NPS row in an email are the same URL
with `?score=N`: the score is the reader's choice, not something to protect.
"""

from __future__ import annotations

import base64
import functools
import uuid
from typing import NamedTuple

from django.conf import settings
from django.core import signing
from django.urls import reverse

_SALT = "personalisation.surveys.link"


class SurveyRef(NamedTuple):
    tenant_id: int
    survey: uuid.UUID
    contact: uuid.UUID
    send: uuid.UUID  # the delivery's public id


@functools.lru_cache(maxsize=8)
def _cached_signer(key: str, fallbacks: tuple[str, ...]) -> signing.Signer:
    return signing.Signer(key=key, fallback_keys=list(fallbacks), salt=_SALT)


def _signer() -> signing.Signer:
    return _cached_signer(settings.SECRET_KEY, tuple(settings.SECRET_KEY_FALLBACKS))


def _b64(value: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(value.bytes).rstrip(b"=").decode()


def _uuid(raw: str) -> uuid.UUID:
    return uuid.UUID(bytes=base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))


def token_make(ref: SurveyRef) -> str:
    # ~100 characters: short enough for plain-text mail.
    parts = (f"{ref.tenant_id:x}", _b64(ref.survey), _b64(ref.contact), _b64(ref.send))
    return _signer().sign(".".join(parts))


def token_read(token: str) -> SurveyRef:
    """The reference a token holds; raises signing.BadSignature for anything forged, altered or
    garbled."""
    value = _signer().unsign(token)
    try:
        tenant, survey, contact, send = value.split(".")
        return SurveyRef(int(tenant, 16), _uuid(survey), _uuid(contact), _uuid(send))
    except (ValueError, TypeError):
        raise signing.BadSignature("Not a survey link.") from None


@functools.lru_cache(maxsize=4)
def _route(urlconf: str) -> tuple[str, str]:
    head, _, tail = reverse("survey_page", args=["TOKEN"], urlconf=urlconf).rpartition("TOKEN")
    return head, tail


def survey_url(ref: SurveyRef) -> str:
    """The hosted page's absolute URL for this contact and send."""
    head, tail = _route(settings.ROOT_URLCONF)
    return f"{settings.SITE_URL}{head}{token_make(ref)}{tail}"


def preview_url() -> str:
    """What a link is in a preview, where there is no message to sign it for."""
    head, tail = _route(settings.ROOT_URLCONF)
    return f"{settings.SITE_URL}{head}preview{tail}"
