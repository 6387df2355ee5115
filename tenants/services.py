"""Writes for tenants, memberships and API keys. Views, API, admin and commands all call these."""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from accounts.models import User
from accounts.services import email_verification_send, signup_attempt_notify
from core import rls
from tenants.models import (
    KEY_MARKERS,
    KEY_PREFIX_LENGTH,
    ApiKey,
    ApiKeyKind,
    Membership,
    Role,
    Tenant,
    hash_api_key,
)
from tenants.selectors import api_key_forget
from tenants.signals import tenant_created

EDITABLE_TENANT_FIELDS = ("name", "timezone", "event_retention_months")


def suggest_slug(name: str) -> str:
    return slugify(name)[:50].strip("-") or "team"


def _tenant_checked(*, name: str, slug: str, timezone_name: str) -> Tenant:
    """An unsaved tenant, validated: names the bad field (slug taken or reserved, unknown time
    zone…)."""
    tenant = Tenant(name=name.strip(), slug=slug.strip().lower(), timezone=timezone_name)
    tenant.full_clean()
    return tenant


@transaction.atomic
def tenant_create(
    *,
    name: str,
    slug: str,
    owner: User | None = None,
    timezone_name: str = "UTC",
) -> Tenant:
    """Create a tenant and, when given, its first owner. Every way of making a tenant comes
    here: `tenant_created` lets the other apps make their part of it (messaging: the sender
    identity and VAPID keys) in the same transaction."""
    tenant = _tenant_checked(name=name, slug=slug, timezone_name=timezone_name)
    try:
        with transaction.atomic():
            tenant.save()
    except IntegrityError as exc:  # a concurrent sign-up took the slug after full_clean()
        raise ValidationError({"slug": "A team with this URL name already exists."}) from exc
    # The new tenant's own rows (its owner, the other apps' parts) are written in its scope: at
    # sign-up nothing else has scoped the connection yet (core/rls.py).
    with rls.tenant_scope(tenant.pk):
        if owner is not None:
            Membership.objects.create(tenant=tenant, user=owner, role=Role.OWNER)
        tenant_created.send(sender=Tenant, tenant=tenant)
    return tenant


def user_sign_up(
    *, email: str, password: str, tenant_name: str, tenant_slug: str, timezone_name: str = "UTC"
) -> tuple[User, Tenant] | None:
    """A new person and their team, created together or not at all; the link that confirms
    their address is emailed to them.

    An address that has an account already gets no second one, and no error either: its owner
    is emailed a notice, and None is returned, which the caller must answer exactly as a new
    sign-up (sign-up must not reveal which addresses have accounts). The team's fields are
    checked all the same, and the password hashed, so that the answer and its time match too."""
    existing = get_user_model().objects.filter(email__iexact=email.strip()).first()
    if existing is None:
        try:
            with transaction.atomic():
                user = get_user_model().objects.create_user(email=email, password=password)
                tenant = tenant_create(
                    name=tenant_name, slug=tenant_slug, owner=user, timezone_name=timezone_name
                )
        except IntegrityError:  # the same address signed up at the same moment
            existing = get_user_model().objects.filter(email__iexact=email.strip()).first()
            if existing is None:
                raise
        else:
            email_verification_send(user=user)
            return user, tenant
    _tenant_checked(name=tenant_name, slug=tenant_slug, timezone_name=timezone_name)
    make_password(password)
    signup_attempt_notify(user=existing)
    return None


@transaction.atomic
def tenant_update(*, tenant: Tenant, actor: User, **fields: object) -> Tenant:
    unknown = set(fields) - set(EDITABLE_TENANT_FIELDS)
    if unknown:
        raise ValueError(f"Not editable: {', '.join(sorted(unknown))}")
    for name, value in fields.items():
        setattr(tenant, name, value)
    tenant.full_clean()
    tenant.save(update_fields=list(fields))
    return tenant


def _owner_count(tenant: Tenant) -> int:
    return Membership.objects.filter(tenant=tenant, role=Role.OWNER).count()


def _check_actor_may_grant(actor_membership: Membership, role: str) -> None:
    # Admins manage everyone below owner; only owners create or touch owners.
    if role == Role.OWNER and actor_membership.role != Role.OWNER:
        raise ValidationError({"role": "Only an owner can make someone an owner."})


@transaction.atomic
def membership_add(
    *, tenant: Tenant, actor_membership: Membership, email: str, role: str
) -> Membership:
    """Add an existing Wayfarer user to the tenant by their email address."""
    if role not in Role.values:
        raise ValidationError({"role": f"“{role}” is not a role."})
    _check_actor_may_grant(actor_membership, role)
    user = get_user_model().objects.filter(email__iexact=email.strip()).first()
    if user is None:
        raise ValidationError(
            {"email": f"No Wayfarer account uses {email}. Ask them to sign up first."}
        )
    if Membership.objects.filter(tenant=tenant, user=user).exists():
        raise ValidationError({"email": f"{user.email} is already a member."})
    return Membership.objects.create(tenant=tenant, user=user, role=role)


@transaction.atomic
def membership_change_role(
    *, tenant: Tenant, actor_membership: Membership, membership: Membership, role: str
) -> Membership:
    if role not in Role.values:
        raise ValidationError({"role": f"“{role}” is not a role."})
    membership = Membership.objects.select_for_update().get(pk=membership.pk, tenant=tenant)
    if membership.role == role:
        return membership
    _check_actor_may_grant(actor_membership, role)
    if membership.role == Role.OWNER:
        _check_actor_may_grant(actor_membership, Role.OWNER)
        if _owner_count(tenant) == 1:
            raise ValidationError({"role": "A team needs at least one owner."})
    membership.role = role
    membership.save(update_fields=["role"])
    return membership


@transaction.atomic
def membership_remove(
    *, tenant: Tenant, actor_membership: Membership, membership: Membership
) -> None:
    membership = Membership.objects.select_for_update().get(pk=membership.pk, tenant=tenant)
    if membership.role == Role.OWNER:
        _check_actor_may_grant(actor_membership, Role.OWNER)
        if _owner_count(tenant) == 1:
            raise ValidationError({"role": "A team needs at least one owner."})
    membership.delete()


def api_key_create(
    *, tenant: Tenant, kind: str, name: str, actor: User | None = None
) -> tuple[ApiKey, str]:
    """Create a key and return it with the raw key, which is shown once and never stored."""
    if kind not in ApiKeyKind.values:
        raise ValidationError({"kind": f"“{kind}” is not a kind of key (secret or write)."})
    name = name.strip() or f"{ApiKeyKind(kind).label.split(' ')[0]} key"
    prefix = secrets.token_hex(KEY_PREFIX_LENGTH // 2)
    raw = f"{KEY_MARKERS[ApiKeyKind(kind)]}_{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(
        tenant=tenant,
        kind=kind,
        name=name[:100],
        prefix=prefix,
        key_hash=hash_api_key(raw),
        created_by=actor,
    )
    return key, raw


def api_key_revoke(*, tenant: Tenant, api_key: ApiKey) -> ApiKey:
    # Conditional, so revoking twice keeps the first revocation time.
    ApiKey.objects.filter(pk=api_key.pk, tenant=tenant, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    api_key.refresh_from_db(fields=["revoked_at"])
    api_key_forget(api_key=api_key)
    return api_key
