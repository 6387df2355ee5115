"""Writes for tenants, memberships and API keys. Views, API, admin and commands all call these."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
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
    Invitation,
    Membership,
    Role,
    Tenant,
    hash_api_key,
    invitation_secret_hash,
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


# --- Invitations ------------------------------------------------------------------------------


def invitation_url(*, tenant: Tenant, secret: str) -> str:
    return f"{settings.SITE_URL}{reverse('invitation_accept', args=[tenant.slug, secret])}"


def member_invite(
    *, tenant: Tenant, actor_membership: Membership, email: str, role: str
) -> Membership | Invitation:
    """Add a colleague by email address: someone with a Wayfarer account joins at once; anyone
    else is emailed an invitation whose link creates their account and membership (single use,
    expiring after INVITATION_DAYS). Inviting an address again replaces its pending invitation
    (the old link stops working)."""
    email = email.strip()
    if get_user_model().objects.filter(email__iexact=email).exists():
        return membership_add(
            tenant=tenant, actor_membership=actor_membership, email=email, role=role
        )
    if role not in Role.values:
        raise ValidationError({"role": f"“{role}” is not a role."})
    _check_actor_may_grant(actor_membership, role)
    secret = secrets.token_urlsafe(32)
    with transaction.atomic():
        moment = timezone.now()
        Invitation.objects.filter(
            tenant=tenant, email__iexact=email, accepted_at=None, revoked_at=None
        ).update(revoked_at=moment)
        invitation = Invitation.objects.create(
            tenant=tenant,
            email=email.lower(),
            role=role,
            secret_hash=invitation_secret_hash(secret),
            invited_by=actor_membership.user,
        )
        context = {
            "tenant": tenant,
            "role": invitation.get_role_display(),
            "inviter": actor_membership.user.display_name,
            "url": invitation_url(tenant=tenant, secret=secret),
            "expires_at": invitation.expires_at,
            "site_url": settings.SITE_URL,
        }
        subject = render_to_string("registration/invitation_subject.txt", context)
        body = render_to_string("registration/invitation_email.txt", context)
        # Sent inside the transaction: an invitation nobody was told about is not kept.
        send_mail(" ".join(subject.split()), body, None, [invitation.email])
    return invitation


def invitation_revoke(*, tenant: Tenant, invitation: Invitation) -> Invitation:
    if invitation.accepted_at is not None:
        raise ValidationError("This invitation was accepted already; remove the member instead.")
    if invitation.revoked_at is None:
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])
    return invitation


@transaction.atomic
def invitation_accept(
    *, invitation: Invitation, user: User | None = None, password: str = "", **names: str
) -> Membership:
    """Use a pending invitation once: for `user` (signed in with the invited address), or for a
    new account with `password` (the link proved the address, so it counts as confirmed)."""
    locked = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if not locked.pending:
        raise ValidationError("This invitation has expired, was withdrawn or was used already.")
    if user is None:
        if get_user_model().objects.filter(email__iexact=locked.email).exists():
            raise ValidationError("An account uses this address now: sign in to accept.")
        user = get_user_model().objects.create_user(
            email=locked.email,
            password=password,
            first_name=names.get("first_name", ""),
            last_name=names.get("last_name", ""),
            email_verified_at=timezone.now(),
        )
    elif user.email.lower() != locked.email.lower():
        raise ValidationError(f"This invitation is for {locked.email}.")
    locked.accepted_at = timezone.now()
    locked.save(update_fields=["accepted_at"])
    membership, _ = Membership.objects.get_or_create(
        tenant=locked.tenant, user=user, defaults={"role": locked.role}
    )
    return membership
