"""Outbound webhooks: a team's endpoints (a URL subscribed to event types, with its signing
secret) and the messages written for them (the outbox the sender works through).

A message is written in the transaction that stores the event it announces (webhooks/producing.py),
once per endpoint and event (`idempotency_key`, unique per endpoint), and then moves
pending → sending (claimed by one worker, `claim_token`) → succeeded | failed, or back to pending
with a later `next_attempt_at` (a retry). docs/webhooks.md says what a receiver sees.
"""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.timezone import now

from tenants.models import Tenant

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32  # the Standard Webhooks spec asks for 24 to 64 random bytes


class EventType(models.TextChoices):
    """What an endpoint may subscribe to (ISSUE15 decision 9). The audience event names each
    type stands for are in webhooks/producing.py."""

    MESSAGE_SENT = "message.sent", "Message sent (email or push)"
    MESSAGE_OPENED = "message.opened", "Email opened"
    MESSAGE_CLICKED = "message.clicked", "Message clicked (email link or push)"
    MESSAGE_BOUNCED = "message.bounced", "Email bounced"
    CONTACT_UNSUBSCRIBED = "contact.unsubscribed", "Contact unsubscribed"
    SEGMENT_ENTERED = "segment.entered", "Contact entered a segment"
    CONTACT_STAGE_CHANGED = "contact.stage_changed", "Lifecycle stage changed"
    CONVERSION = "conversion", "Journey goal reached (a conversion)"


TEST_TYPE = "webhook.test"  # "Send test event": goes to the endpoint whatever it subscribes to


def secret_generate() -> str:
    """A new signing secret in the Standard Webhooks form: `whsec_` + base64 of random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def event_types_validate(value: Any) -> list[str]:
    """`value` as a list of known event types, each once, in the catalog's order; raises
    ValidationError naming what is wrong."""
    if not isinstance(value, list) or not value:
        raise ValidationError("Choose at least one event type.", code="required")
    unknown = [str(v) for v in value if v not in EventType.values]
    if unknown:
        raise ValidationError(
            f"Unknown event type: {', '.join(unknown)}. Known: {', '.join(EventType.values)}.",
            code="invalid",
        )
    return [t for t in EventType.values if t in value]


class WebhookEndpoint(models.Model):
    """A URL of the team's that receives the events it subscribes to, signed with `secret`.

    `previous_secret` still signs (as a second signature) until `previous_secret_expires_at`,
    so a receiver can switch to a rotated secret without dropping a message."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)
    public_id = models.UUIDField(default=uuid.uuid4, editable=False)
    url = models.CharField("URL", max_length=2000)
    description = models.CharField(max_length=200, blank=True)
    event_types = models.JSONField(default=list)
    secret = models.CharField(max_length=120, default=secret_generate, editable=False)
    previous_secret = models.CharField(max_length=120, blank=True, editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=now, editable=False)
    updated_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "public_id"], name="webhook_endpoint_tenant_public"
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "enabled"], name="webhook_endpoint_tenant_on"),
        ]

    def __str__(self) -> str:
        return self.url

    def clean(self) -> None:
        try:
            self.event_types = event_types_validate(self.event_types)
        except ValidationError as exc:
            raise ValidationError({"event_types": exc.messages}) from None

    @property
    def secret_masked(self) -> str:
        return f"{SECRET_PREFIX}…{self.secret[-4:]}"

    def type_labels(self) -> list[str]:
        labels = dict(EventType.choices)
        return [labels.get(t, t) for t in self.event_types]


class WebhookMessage(models.Model):
    """One event for one endpoint, and how sending it went. `public_id` is the `webhook-id`
    header: the same on every attempt and replay, so a receiver can drop a repeat."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)
    endpoint = models.ForeignKey(
        WebhookEndpoint,
        on_delete=models.CASCADE,
        related_name="messages",
        db_index=False,
        db_constraint=False,  # tenants/keys.py installs the (tenant_id, endpoint_id) key
    )
    public_id = models.UUIDField(default=uuid.uuid4, editable=False)
    type = models.CharField(max_length=40)
    payload = models.JSONField()
    # What it announces ("event:<id>", "conversion:<enrollment>"): one message per endpoint.
    idempotency_key = models.CharField(max_length=200)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    # Attempts made before the last replay: the retry schedule counts from there.
    attempts_before_replay = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, default=now)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    claim_token = models.UUIDField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    succeeded_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=now, editable=False)
    updated_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "endpoint", "idempotency_key"],
                name="webhook_message_tenant_endpoint_key",
            ),
            models.UniqueConstraint(
                fields=["tenant", "public_id"], name="webhook_message_tenant_public"
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(status="sending", claim_token__isnull=False)
                    | (~models.Q(status="sending") & models.Q(claim_token__isnull=True))
                ),
                name="webhook_message_token_while_sending",
            ),
        ]
        indexes = [
            # An endpoint's recent messages (the page and the API list).
            models.Index(
                fields=["tenant", "endpoint", "-created_at"],
                name="webhook_message_tenant_recent",
            ),
            # The sender's queue spans every team, so it cannot start with tenant (like
            # messaging's delivery queue): partial, as small as the backlog.
            models.Index(
                fields=["next_attempt_at"],
                name="webhook_message_due_idx",
                condition=models.Q(status="pending"),
            ),
            models.Index(
                fields=["claimed_at"],
                name="webhook_message_sending_idx",
                condition=models.Q(status="sending"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.public_id}"

    def payload_json(self) -> str:
        return json.dumps(self.payload, indent=2, ensure_ascii=False)

    @property
    def webhook_id(self) -> str:
        return f"msg_{self.public_id.hex}"
