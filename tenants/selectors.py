"""Reads for tenants, memberships and API keys, including the gatekeepers that 404 on other
tenants' objects."""

from __future__ import annotations

import hmac
import re
import time
import zoneinfo
from datetime import timedelta
from functools import cache

from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone

from accounts.models import User
from core import rls
from core.ids import uuid_or_404
from tenants.models import (
    KEY_MARKERS,
    ApiKey,
    ApiKeyKind,
    Invitation,
    Membership,
    Tenant,
    hash_api_key,
    invitation_secret_hash,
    known_timezones,
)

RAW_KEY_RE = re.compile(r"^(wf_sk|wf_wk)_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
# last_used_at is a hint for operators, not an audit log: write it at most this often per key.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@cache
def timezone_choices() -> list[tuple[str, str]]:
    """The time zones a team or a contact can be given, as form choices (regions, and UTC)."""
    zones = sorted(z for z in known_timezones() if "/" in z or z == "UTC")
    return [(z, z.replace("_", " ")) for z in zones]


class ApiKeyError(Exception):
    """Why a presented key does not authenticate; the message is safe to show the caller."""


def tenant_for_member(*, user: User, slug: str) -> tuple[Tenant, Membership]:
    """The tenant at `slug` and the user's membership in it; 404 when it is missing or the user
    is not a member, so other tenants' names cannot be probed. The UI's edge: looked up in the
    system scope, then the connection is scoped to the tenant (core/rls.py)."""
    with rls.edge_lookup():
        membership = (
            Membership.objects.select_related("tenant").filter(user=user, tenant__slug=slug).first()
        )
        if membership is None:
            raise Http404("No such team")
        rls.tenant_set(membership.tenant_id)
    return membership.tenant, membership


def memberships_for_user(*, user: User) -> list[Membership]:
    """The user's teams: across tenants, so read in the system scope (core/rls.py)."""
    with rls.system_scope():
        return list(
            Membership.objects.filter(user=user).select_related("tenant").order_by("tenant__name")
        )


def membership_list(*, tenant: Tenant) -> QuerySet[Membership]:
    return Membership.objects.filter(tenant=tenant).select_related("user").order_by("created_at")


def membership_get(*, tenant: Tenant, public_id: object) -> Membership:
    membership = (
        Membership.objects.select_related("user")
        .filter(tenant=tenant, public_id=uuid_or_404(public_id, what="member"))
        .first()
    )
    if membership is None:
        raise Http404("No such member")
    return membership


def api_key_list(*, tenant: Tenant) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(tenant=tenant).select_related("created_by")


def api_key_get(*, tenant: Tenant, public_id: object) -> ApiKey:
    key = ApiKey.objects.filter(
        tenant=tenant, public_id=uuid_or_404(public_id, what="API key")
    ).first()
    if key is None:
        raise Http404("No such API key")
    return key


# Ingestion authenticates every request with a write key whose row almost never changes, so each
# process remembers the write keys it has verified for a short while. A revocation therefore takes
# effect at once in the process that made it and within this time in the others. Secret keys (the
# REST API) are always read from the database.
WRITE_KEY_CACHE_SECONDS = 30.0
_write_keys: dict[str, tuple[float, ApiKey]] = {}  # key hash -> (valid until, key with tenant)


def api_key_forget(*, api_key: ApiKey) -> None:
    """Drop `api_key` from this process's write-key cache (after a revocation)."""
    for key_hash, (_, cached) in list(_write_keys.items()):
        if cached.pk == api_key.pk:
            _write_keys.pop(key_hash, None)


def api_key_authenticate(*, raw: str, kind: str) -> ApiKey:
    """The active key of `kind` that `raw` is, with its tenant loaded; ApiKeyError otherwise.

    This is the edge of the key-authenticated doors (REST, tracking, push): on success the
    connection is scoped to the key's tenant (core/rls.py); the look-up before it, which cannot
    know the tenant yet, runs in the system scope."""
    raw = raw.strip()
    match = RAW_KEY_RE.match(raw)
    if match is None:
        raise ApiKeyError("Malformed API key.")
    marker, prefix, _ = match.groups()
    if marker != KEY_MARKERS[ApiKeyKind(kind)]:
        expected = "secret (wf_sk_…)" if kind == ApiKeyKind.SECRET else "write (wf_wk_…)"
        raise ApiKeyError(f"This endpoint needs a {expected} key.")
    key_hash = hash_api_key(raw)
    if kind == ApiKeyKind.WRITE:
        valid_until, cached = _write_keys.get(key_hash, (0.0, None))
        if cached is not None and time.monotonic() < valid_until:
            rls.tenant_set(cached.tenant_id)
            return cached
    with rls.edge_lookup():
        key = _api_key_find(prefix=prefix, kind=kind, key_hash=key_hash)
        rls.tenant_set(key.tenant_id)
    return key


def _api_key_find(*, prefix: str, kind: str, key_hash: str) -> ApiKey:
    key = ApiKey.objects.select_related("tenant").filter(prefix=prefix, kind=kind).first()
    if key is None or not hmac.compare_digest(key.key_hash, key_hash):
        raise ApiKeyError("Unknown API key.")
    if key.revoked_at is not None:
        raise ApiKeyError("This API key has been revoked.")
    if kind == ApiKeyKind.WRITE:
        if len(_write_keys) > 10_000:  # a bound, not an LRU: keys are few in practice
            _write_keys.clear()
        _write_keys[key_hash] = (time.monotonic() + WRITE_KEY_CACHE_SECONDS, key)
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key


def team_zone(tenant: Tenant) -> zoneinfo.ZoneInfo:
    """The team's time zone, UTC if unset or unknown to this machine's tz database."""
    try:
        return zoneinfo.ZoneInfo(tenant.timezone or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def invitation_list(*, tenant: Tenant) -> list[Invitation]:
    """The team's pending invitations, newest first."""
    found = Invitation.objects.filter(
        tenant=tenant, accepted_at=None, revoked_at=None, expires_at__gt=timezone.now()
    ).select_related("invited_by")
    return list(found.order_by("-created_at"))


def invitation_get(*, tenant: Tenant, public_id: object) -> Invitation:
    found = Invitation.objects.filter(
        tenant=tenant, public_id=uuid_or_404(public_id, what="invitation")
    ).first()
    if found is None:
        raise Http404("No such invitation")
    return found


def invitation_for_link(*, team: str, secret: str) -> Invitation | None:
    """The invitation a link names (pending or not), found at the edge before any tenant scope;
    the connection is then scoped to its team (core/rls.py). None for an unknown link."""
    with rls.edge_lookup():
        invitation = (
            Invitation.objects.select_related("tenant")
            .filter(tenant__slug=team, secret_hash=invitation_secret_hash(secret))
            .first()
        )
        if invitation is not None:
            rls.tenant_set(invitation.tenant_id)
    return invitation
