"""Message templates, the delivery outbox, push subscriptions, suppressions and each tenant's
sender identity and sending policy."""

from __future__ import annotations

import uuid
from email.utils import formataddr
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.timezone import now

from audience.models import Contact
from core.storable import single_line, validate_single_line
from tenants.models import Tenant


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    PUSH = "push", "Web push"


class Category(models.TextChoices):
    # Marketing honours consent, the frequency cap and quiet hours; transactional messages
    # (receipts, password resets) honour only the suppression list and the sending limit.
    MARKETING = "marketing", "Marketing"
    TRANSACTIONAL = "transactional", "Transactional"


# The fields a template of each channel personalises with Liquid (snapshotted into deliveries).
EMAIL_FIELDS = ("subject", "preheader", "html")
PUSH_FIELDS = ("title", "body", "icon_url", "image_url", "target_url", "actions")
# Everything an editor, the admin or the API sets on a template.
TEMPLATE_FIELDS = ("name", "channel", *EMAIL_FIELDS, *PUSH_FIELDS)


class Template(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)
    public_id = models.UUIDField(default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=120)
    channel = models.CharField(max_length=8, choices=Channel.choices, default=Channel.EMAIL)
    # Email
    subject = models.CharField(max_length=500, blank=True)
    preheader = models.CharField(max_length=500, blank=True, help_text="Shown after the subject.")
    html = models.TextField(blank=True, help_text="HTML body; a plain-text part is made from it.")
    # Web push
    title = models.CharField(max_length=500, blank=True)
    body = models.TextField(blank=True)
    icon_url = models.CharField(max_length=1000, blank=True)
    image_url = models.CharField(max_length=1000, blank=True)
    target_url = models.CharField(max_length=1000, blank=True, help_text="Opened on click.")
    # [{"action": "view", "title": "View", "url": "https://…"}], at most two (what browsers show)
    actions = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=now, editable=False)
    updated_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "public_id"], name="template_tenant_public"),
            models.UniqueConstraint(
                fields=["tenant", "name"],
                name="template_tenant_name",
                violation_error_message="A template with this name already exists.",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.channel == Channel.EMAIL:
            missing = [f for f in ("subject", "html") if not getattr(self, f).strip()]
        else:
            missing = [f for f in ("title", "body") if not getattr(self, f).strip()]
        if missing:
            raise ValidationError(
                dict.fromkeys(
                    missing,
                    "An email needs this."
                    if self.channel == Channel.EMAIL
                    else "A push message needs this.",
                )
            )

    def snapshot(self) -> dict[str, Any]:
        """What a delivery keeps of this template, so later edits never change a decided send."""
        fields = EMAIL_FIELDS if self.channel == Channel.EMAIL else PUSH_FIELDS
        return {
            "template": str(self.public_id),
            "name": self.name,
            "channel": self.channel,
            **{f: getattr(self, f) for f in fields},
        }


class Delivery(models.Model):
    """The outbox: one row per (source, contact, channel), decided once.

    `idempotency_key` (unique per tenant) makes deciding idempotent; the status moves
    queued → sending (claimed by one worker, `claim_token`) → sent | skipped | failed, or back to
    queued with a later `not_before` (quiet hours, a retry). A row carries a `claim_token` while,
    and only while, it is `sending` (a constraint): so "this worker's token" alone says "still
    this worker's to send". `handed_over_at` is stamped durably
    just before the message leaves (before SMTP's final "." or the push POST): a worker that dies
    after it counts the message as sent, one that dies before it lets it be sent again — so a
    crash can never send twice (docs/architecture.md, "Delivering exactly once").
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        SKIPPED = "skipped", "Skipped"
        FAILED = "failed", "Failed"

    # The tenant and the template have no database constraint: PostgreSQL checks a foreign key
    # row by row at commit, re-locking the same tenant and template row for every message of a
    # campaign (~30 s of a million-recipient send, bench/campaign.py). The services set both
    # from objects they hold; deletes still cascade (and set null) through the ORM.
    tenant = models.ForeignKey(
        Tenant, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    public_id = models.UUIDField(default=uuid.uuid4, editable=False)
    # Checked by the composite (tenant_id, contact_id) constraint of tenants/keys.py instead of
    # Django's (which would need a unique index on the contact's id alone).
    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    channel = models.CharField(max_length=8, choices=Channel.choices)
    category = models.CharField(max_length=16, choices=Category.choices, default=Category.MARKETING)
    template = models.ForeignKey(
        Template,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
    )
    content = models.JSONField()  # Template.snapshot() at decision time
    data = models.JSONField(default=dict, blank=True)  # extra Liquid data (`data.…`)
    event = models.JSONField(null=True, blank=True)  # the triggering event, for `event.…`
    source = models.CharField(max_length=100)  # "api", "journey:<id>", "campaign:<id>", "test"
    idempotency_key = models.CharField(max_length=255)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    reason = models.CharField(max_length=200, blank=True)  # why skipped, failed or deferred
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    provider_id = models.CharField(max_length=255, blank=True)  # Message-ID, push location
    not_before = models.DateTimeField(default=now)  # due time: quiet hours and retries defer it
    claim_token = models.UUIDField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    handed_over_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=now, editable=False)
    updated_at = models.DateTimeField(default=now)

    class Meta:
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "idempotency_key"], name="delivery_tenant_idempotency"
            ),
            models.UniqueConstraint(fields=["tenant", "public_id"], name="delivery_tenant_public"),
            models.CheckConstraint(
                condition=(
                    models.Q(status="sending", claim_token__isnull=False)
                    | (~models.Q(status="sending") & models.Q(claim_token__isnull=True))
                ),
                name="delivery_token_while_sending",
            ),
        ]
        indexes = [
            # The senders' queue: due rows per channel. Partial, so it stays as small as the
            # backlog however many rows the outbox keeps.
            models.Index(
                fields=["channel", "not_before"],
                name="delivery_due_idx",
                condition=models.Q(status="queued"),
            ),
            # Claimed rows whose worker may have died (recovery).
            models.Index(
                fields=["claimed_at"],
                name="delivery_sending_idx",
                condition=models.Q(status="sending"),
            ),
            # The frequency cap and a contact's message history.
            models.Index(fields=["tenant", "contact", "-created_at"], name="delivery_contact_idx"),
            models.Index(fields=["tenant", "-created_at"], name="delivery_tenant_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.channel} to {self.contact_id} ({self.status})"


class PushSubscription(models.Model):
    """A browser's Push API subscription (RFC 8030 endpoint + RFC 8291 keys) of a contact."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)
    public_id = models.UUIDField(default=uuid.uuid4, editable=False)
    # A composite (tenant_id, contact_id) constraint instead (tenants/keys.py).
    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    endpoint = models.URLField(max_length=2000)
    p256dh = models.CharField(max_length=200)  # the browser's P-256 public key, base64url
    auth = models.CharField(max_length=100)  # the 16-byte auth secret, base64url
    user_agent = models.CharField(max_length=500, blank=True)
    active = models.BooleanField(default=True)
    deactivated_reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=now, editable=False)
    updated_at = models.DateTimeField(default=now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "endpoint"], name="push_tenant_endpoint"),
            models.UniqueConstraint(fields=["tenant", "public_id"], name="push_tenant_public"),
        ]
        indexes = [models.Index(fields=["tenant", "contact"], name="push_tenant_contact_idx")]

    def __str__(self) -> str:
        return f"push subscription of {self.contact_id} ({'active' if self.active else 'off'})"

    def info(self) -> dict[str, Any]:
        """The subscription as the browser's PushSubscription.toJSON() gives it (pywebpush)."""
        return {"endpoint": self.endpoint, "keys": {"p256dh": self.p256dh, "auth": self.auth}}


class Suppression(models.Model):
    """An address no message may go to: hard bounces, complaints, or an operator's choice."""

    class Reason(models.TextChoices):
        BOUNCED = "bounced", "Bounced"
        COMPLAINED = "complained", "Complained (marked as spam)"
        MANUAL = "manual", "Added by hand"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)
    address = models.CharField(max_length=254)  # email, lower-cased
    reason = models.CharField(max_length=12, choices=Reason.choices)
    detail = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "address"], name="suppression_tenant_addr"),
        ]

    def __str__(self) -> str:
        return f"{self.address} ({self.reason})"

    def clean(self) -> None:
        # Stored lower-cased (as suppression_add does): reachability matches the address so.
        self.address = self.address.strip().lower()


class SenderIdentity(models.Model):
    """One per tenant: who its messages come from. For email the From and Reply-To addresses;
    for web push the VAPID key pair that identifies the tenant to push services (RFC 8292).

    Made when the tenant is (tenants.signals.tenant_created); read through
    `messaging.selectors.sender_identity_get`, which makes one for a tenant that has none.
    Browsers subscribed with the public key, so the pair never changes once made."""

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, related_name="+")
    # One line: it goes into the From header (a line break there stopped every email).
    sender_name = models.CharField(max_length=120, blank=True, validators=[validate_single_line])
    sender_email = models.EmailField(blank=True, help_text="Default From address of messages.")
    reply_to_email = models.EmailField(blank=True)
    # A new From address waits here until someone at it follows the link emailed to it
    # (messaging/sender_verification.py); `sender_email` is always one that was confirmed (or
    # set before confirmation was asked), so nothing is ever sent from an unproven address.
    pending_sender_email = models.EmailField(blank=True)
    pending_sender_requested_at = models.DateTimeField(null=True, blank=True)
    # Both base64url, raw EC P-256 keys (messaging.push.vapid_key_pair).
    vapid_public_key = models.CharField(max_length=100, editable=False)
    vapid_private_key = models.CharField(max_length=100, editable=False)

    class Meta:
        verbose_name_plural = "sender identities"

    def __str__(self) -> str:
        return f"sender identity of {self.tenant}"

    @property
    def from_email(self) -> str:
        """The From header of the tenant's messages, falling back to the site default."""
        if not self.sender_email:
            return settings.DEFAULT_FROM_EMAIL
        # formataddr quotes a name with commas or other specials ("Smith, Jones & Co").
        # single_line: a name stored before it was validated must not stop the tenant's mail.
        return formataddr((single_line(self.sender_name), self.sender_email))


class SendingPolicy(models.Model):
    """One per tenant: what every message must pass before it leaves (messaging/policy.py)."""

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, related_name="+")
    # Marketing email and push need consent granted; "unknown" counts as no when this is on.
    require_opt_in = models.BooleanField(
        default=False,
        help_text="Send marketing only to contacts who opted in. Off: everyone who did not "
        "opt out.",
    )
    # At most `frequency_cap` marketing messages per contact in any `frequency_window_hours`.
    frequency_cap = models.PositiveIntegerField(
        default=0, help_text="Marketing messages per contact in the window; 0 means no cap."
    )
    frequency_window_hours = models.PositiveIntegerField(
        default=24, validators=[MinValueValidator(1), MaxValueValidator(24 * 31)]
    )
    # Quiet hours in the contact's local time (the tenant's when unknown); start > end spans
    # midnight. Equal times mean none.
    quiet_start = models.TimeField(null=True, blank=True)
    quiet_end = models.TimeField(null=True, blank=True)
    # Messages per hour for the whole tenant (the reputation of its sending domain); 0: no limit.
    hourly_limit = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name_plural = "sending policies"

    def __str__(self) -> str:
        return f"sending policy of {self.tenant}"

    def clean(self) -> None:
        if (self.quiet_start is None) != (self.quiet_end is None):
            raise ValidationError("Give quiet hours both a start and an end, or neither.")


class SendCounter(models.Model):
    """Messages a tenant sent in one clock hour (the hourly limit), one row per hour."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)
    hour = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "hour"], name="sendcounter_tenant_hour"),
        ]

    def __str__(self) -> str:
        return f"{self.count} sent in the hour from {self.hour:%Y-%m-%d %H:00}"
