"""Tenants (the marketing teams), who belongs to them with which role, and their API keys."""

from __future__ import annotations

import hashlib
import uuid
import zoneinfo
from functools import cache
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, validate_slug
from django.db import models
from django.utils.timezone import now

# Slugs that would read as product URLs rather than a team (/t/new/, /t/admin/ …).
RESERVED_SLUGS = frozenset({"new", "admin", "api", "static", "app", "www", "settings", "t", "v1"})


def validate_tenant_slug(value: str) -> None:
    validate_slug(value)
    if value != value.lower():
        raise ValidationError("Use lower-case letters, digits and hyphens only.", code="case")
    if value in RESERVED_SLUGS:
        raise ValidationError(f"“{value}” is reserved; choose another.", code="reserved")


@cache
def known_timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())  # reads the tz database from disk


# A team keeps raw events at least one month and at most ten years (audience/retention.py).
RETENTION_MONTHS_MIN = 1
RETENTION_MONTHS_MAX = 120


def validate_timezone(value: str) -> None:
    if value not in known_timezones():
        raise ValidationError(
            f"“{value}” is not an IANA time zone such as Europe/Berlin.", code="timezone"
        )


class Tenant(models.Model):
    """A team. Only what every app needs: an app's own per-tenant settings live in a row of its
    own (messaging's SenderIdentity and SendingPolicy), made on `tenants.signals.tenant_created`."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=120)
    slug = models.SlugField(
        max_length=50,
        unique=True,
        validators=[validate_tenant_slug],
        error_messages={"unique": "A team with this URL name already exists."},
        help_text="Appears in URLs: /t/your-url-name/. Lower-case letters, digits and hyphens.",
    )
    timezone = models.CharField(
        max_length=64,
        default="UTC",
        validators=[validate_timezone],
        help_text="Used when a contact has no time zone of their own.",
    )
    # Raw events older than this many months before the current one are removed each night
    # (audience/retention.py); empty: settings.WAYFARER_EVENT_RETENTION_MONTHS.
    event_retention_months = models.PositiveSmallIntegerField(
        "Keep raw events for (months)",
        null=True,
        blank=True,
        validators=[
            MinValueValidator(
                RETENTION_MONTHS_MIN, "Keep events for at least %(limit_value)s month."
            ),
            MaxValueValidator(
                RETENTION_MONTHS_MAX, "Keep events for at most %(limit_value)s months."
            ),
        ],
    )
    created_at = models.DateTimeField(default=now, editable=False)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(
                    event_retention_months__gte=RETENTION_MONTHS_MIN,
                    event_retention_months__lte=RETENTION_MONTHS_MAX,
                )
                | models.Q(event_retention_months__isnull=True),
                name="tenant_event_retention_months_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def retention_months(self) -> int:
        """How many months before the current one the team keeps raw events: its own setting
        or the installation's default."""
        if self.event_retention_months is not None:
            return self.event_retention_months
        return retention_months_default()


def retention_months_default() -> int:
    """settings.WAYFARER_EVENT_RETENTION_MONTHS, refused when out of range: 0 would remove every
    event tonight, so rather than guess, nothing runs."""
    months = settings.WAYFARER_EVENT_RETENTION_MONTHS
    if not RETENTION_MONTHS_MIN <= months <= RETENTION_MONTHS_MAX:
        raise ImproperlyConfigured(
            f"WAYFARER_EVENT_RETENTION_MONTHS is {months}; use"
            f" {RETENTION_MONTHS_MIN}-{RETENTION_MONTHS_MAX}."
        )
    return months


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MARKETER = "marketer", "Marketer"
    VIEWER = "viewer", "Viewer"


# What each role may do is a matter of rank: a role can do everything the roles below it can.
ROLE_RANK = {Role.VIEWER: 0, Role.MARKETER: 1, Role.ADMIN: 2, Role.OWNER: 3}


class Membership(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    public_id = models.UUIDField(default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MARKETER)
    created_at = models.DateTimeField(default=now, editable=False)

    class Meta:
        # "Team members", not "Memberships": the admin lists segments' members too.
        verbose_name = "team member"
        verbose_name_plural = "team members"
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "user"], name="membership_tenant_user_unique"
            ),
            models.UniqueConstraint(
                fields=["tenant", "public_id"], name="membership_tenant_public_id_unique"
            ),
        ]
        indexes = [models.Index(fields=["tenant", "role"], name="membership_tenant_role_idx")]

    def __str__(self) -> str:
        return f"{self.user} @ {self.tenant} ({self.role})"

    def has_role(self, minimum: str) -> bool:
        return ROLE_RANK[Role(self.role)] >= ROLE_RANK[Role(minimum)]

    @property
    def can_edit(self) -> bool:
        return self.has_role(Role.MARKETER)

    @property
    def can_manage(self) -> bool:
        return self.has_role(Role.ADMIN)


INVITATION_DAYS = 7


def invitation_secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _invitation_expiry() -> Any:
    from datetime import timedelta

    return now() + timedelta(days=INVITATION_DAYS)


class Invitation(models.Model):
    """An email invitation to join a team, for someone who has no Wayfarer account yet: its link
    creates the account and the membership. Single use, expiring, revocable; only a hash of the
    link's secret is kept (the link is the only copy)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)
    public_id = models.UUIDField(default=uuid.uuid4, editable=False)
    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MARKETER)
    secret_hash = models.CharField(max_length=64)  # sha256 of the link's secret
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=now, editable=False)
    expires_at = models.DateTimeField(default=_invitation_expiry)
    accepted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "public_id"], name="invitation_tenant_public_id_unique"
            ),
            # The link names its team and secret: /invite/<team slug>/<secret>/.
            models.UniqueConstraint(
                fields=["tenant", "secret_hash"], name="invitation_tenant_secret_unique"
            ),
        ]
        indexes = [models.Index(fields=["tenant", "email"], name="invitation_tenant_email_idx")]

    def __str__(self) -> str:
        return f"{self.email} → {self.tenant} ({self.role})"

    @property
    def pending(self) -> bool:
        return self.accepted_at is None and self.revoked_at is None and self.expires_at > now()


class ApiKeyKind(models.TextChoices):
    SECRET = "secret", "Secret (REST API, server-side only)"
    WRITE = "write", "Write (tracking from browsers and SDKs)"


# Raw keys look like wf_sk_<prefix>_<secret> / wf_wk_<prefix>_<secret>. Only the prefix (to find
# the row) and a SHA-256 of the whole key are stored: the key has 256 bits of entropy, so a fast
# hash is safe, and it keeps authentication cheap on every request.
KEY_MARKERS = {ApiKeyKind.SECRET: "wf_sk", ApiKeyKind.WRITE: "wf_wk"}
KEY_PREFIX_LENGTH = 12


def hash_api_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiKey(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="api_keys")
    public_id = models.UUIDField(default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=8, choices=ApiKeyKind.choices)
    # Authentication finds a key by its prefix before it knows the tenant, so this unique index
    # cannot start with `tenant` (the one exception to the rule; docs/architecture.md).
    prefix = models.CharField(max_length=KEY_PREFIX_LENGTH, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "public_id"], name="apikey_tenant_public_id_unique"
            ),
        ]
        indexes = [models.Index(fields=["tenant", "kind"], name="apikey_tenant_kind_idx")]

    def __str__(self) -> str:
        return f"{self.name} ({self.masked})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # The hash is the only trace of the key; a row without one could never authenticate.
        if len(self.key_hash) != 64 or len(self.prefix) != KEY_PREFIX_LENGTH:
            raise ValueError("API keys are created with tenants.services.api_key_create().")
        super().save(*args, **kwargs)

    @property
    def masked(self) -> str:
        return f"{KEY_MARKERS[ApiKeyKind(self.kind)]}_{self.prefix}_…"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
