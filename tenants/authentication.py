"""Resolving the tenant at the edge of the HTTP APIs.

- REST (`/api/v1/…`): a secret key, `Authorization: Bearer wf_sk_…`.
- Ingestion (`/v1/…`, Segment-compatible): a write key as the user name of HTTP Basic auth, the
  way Segment's and RudderStack's SDKs send it.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING

from django.http import HttpRequest
from rest_framework import authentication, exceptions, permissions, throttling
from rest_framework.request import Request

from core import throttle
from tenants.models import ApiKey, ApiKeyKind
from tenants.selectors import ApiKeyError, api_key_authenticate

if TYPE_CHECKING:  # rest_framework.views imports this module through DRF's settings
    from rest_framework.views import APIView


class SecretKeyAuthentication(authentication.BaseAuthentication):
    """DRF authentication: `request.auth` is the ApiKey and `request.tenant` its tenant."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[None, ApiKey] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, raw = header.partition(" ")
        if scheme.lower() != self.keyword.lower() or not raw.strip():
            raise exceptions.AuthenticationFailed(
                "Send the secret key as `Authorization: Bearer wf_sk_…`."
            )
        try:
            key = api_key_authenticate(raw=raw, kind=ApiKeyKind.SECRET)
        except ApiKeyError as exc:
            raise exceptions.AuthenticationFailed(str(exc)) from None
        request.tenant = key.tenant  # type: ignore[attr-defined]
        request._request.tenant = key.tenant  # type: ignore[attr-defined]
        return None, key

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="api"'


class HasTenantKey(permissions.BasePermission):
    message = "Authentication with a secret API key is required."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return isinstance(request.auth, ApiKey)


class ApiKeyThrottle(throttling.BaseThrottle):
    """DRF throttle: requests per secret key (settings.WAYFARER_THROTTLE_RATES["api"]), counted
    across web processes by core/throttle.py. Over the limit DRF answers 429 with Retry-After,
    in the API's error shape (code "throttled"). Runs after authentication: keyless requests
    were refused already, and the public schema has no key to count."""

    def __init__(self) -> None:
        self.retry_after: float | None = None

    def allow_request(self, request: Request, view: APIView) -> bool:
        if not isinstance(request.auth, ApiKey):
            return True
        self.retry_after = throttle.API.hit(str(request.auth.pk))
        return self.retry_after is None

    def wait(self) -> float | None:
        return self.retry_after


def write_key_from_request(request: HttpRequest) -> ApiKey:
    """The write key of a Segment-style request (HTTP Basic, key as user name, empty password).

    Raises ApiKeyError with a message for the 401 answer."""
    header = request.headers.get("Authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        raise ApiKeyError("Send the write key as the user name of HTTP Basic auth.")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise ApiKeyError("Malformed HTTP Basic credentials.") from None
    raw, _, _password = decoded.partition(":")
    return api_key_authenticate(raw=raw, kind=ApiKeyKind.WRITE)
