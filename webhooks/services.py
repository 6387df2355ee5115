"""Writes for outbound webhooks: endpoints (create, change, rotate the secret, delete), a test
event, and replaying a message. Views, the REST API and the admin all call these."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.timezone import now

from core.outbound import OutboundRefused, url_check
from tenants.models import Tenant
from webhooks.models import (
    TEST_TYPE,
    WebhookEndpoint,
    WebhookMessage,
    event_types_validate,
    secret_generate,
)
from webhooks.producing import payload_build
from webhooks.sending import ROTATION_GRACE

URL_MAX_LENGTH = 2000
DESCRIPTION_MAX_LENGTH = 200


def url_validate(url: str) -> str:
    """`url` if the product may send to it (core/outbound.py's rules: https, a public host;
    http only to loopback while private addresses are allowed); else ValidationError."""
    url = (url or "").strip()
    if not url:
        raise ValidationError("Enter the URL that receives the events.", code="required")
    if len(url) > URL_MAX_LENGTH:
        raise ValidationError(f"At most {URL_MAX_LENGTH} characters.", code="max_length")
    try:
        # No DNS look-up here (a form must not wait on it): sending checks every address again.
        url_check(url, resolve=False)
    except OutboundRefused as exc:
        raise ValidationError(f"This URL cannot be called: {exc.reason}.", code="invalid") from None
    return url


def _clean(fields: dict[str, Any]) -> dict[str, Any]:
    """Validated endpoint fields; ValidationError naming each bad field."""
    errors: dict[str, list[str]] = {}
    clean: dict[str, Any] = {}
    if "url" in fields:
        try:
            clean["url"] = url_validate(fields["url"])
        except ValidationError as exc:
            errors["url"] = exc.messages
    if "event_types" in fields:
        try:
            clean["event_types"] = event_types_validate(fields["event_types"])
        except ValidationError as exc:
            errors["event_types"] = exc.messages
    if "description" in fields:
        description = (fields["description"] or "").strip()
        if len(description) > DESCRIPTION_MAX_LENGTH:
            errors["description"] = [f"At most {DESCRIPTION_MAX_LENGTH} characters."]
        clean["description"] = description
    if "enabled" in fields:
        clean["enabled"] = bool(fields["enabled"])
    if errors:
        raise ValidationError(errors)
    return clean


@transaction.atomic
def endpoint_create(
    *,
    tenant: Tenant,
    url: str,
    event_types: list[str],
    description: str = "",
    enabled: bool = True,
) -> WebhookEndpoint:
    """A new endpoint with a fresh secret (shown to the team once, by the caller)."""
    fields = _clean(
        {"url": url, "event_types": event_types, "description": description, "enabled": enabled}
    )
    endpoint = WebhookEndpoint.objects.create(tenant=tenant, **fields)
    return endpoint


@transaction.atomic
def endpoint_update(*, endpoint: WebhookEndpoint, **changes: Any) -> WebhookEndpoint:
    """Change any of url, event_types, description, enabled."""
    unknown = set(changes) - {"url", "event_types", "description", "enabled"}
    if unknown:
        raise TypeError(f"not endpoint fields: {', '.join(sorted(unknown))}")
    fields = _clean(changes)
    for name, value in fields.items():
        setattr(endpoint, name, value)
    endpoint.updated_at = now()
    endpoint.save(update_fields=[*fields, "updated_at"])
    return endpoint


@transaction.atomic
def endpoint_secret_rotate(*, endpoint: WebhookEndpoint) -> str:
    """A new secret; the old one keeps signing beside it for ROTATION_GRACE. Returns the new
    secret (the caller shows it once)."""
    stamp = now()
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = stamp + ROTATION_GRACE
    endpoint.secret = secret_generate()
    endpoint.updated_at = stamp
    endpoint.save(
        update_fields=["secret", "previous_secret", "previous_secret_expires_at", "updated_at"]
    )
    return endpoint.secret


@transaction.atomic
def endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    """Delete the endpoint and its messages (none is sent after this commits)."""
    tenant = endpoint.tenant
    WebhookMessage.objects.filter(tenant=tenant, endpoint=endpoint).delete()
    endpoint.delete()


def _wake() -> None:
    from webhooks.tasks import send_due

    send_due.delay()


@transaction.atomic
def endpoint_test_send(*, endpoint: WebhookEndpoint) -> WebhookMessage:
    """Queue a `webhook.test` message to the endpoint (whatever it subscribes to)."""
    stamp = now()
    message = WebhookMessage.objects.create(
        tenant=endpoint.tenant,
        endpoint=endpoint,
        type=TEST_TYPE,
        payload=payload_build(
            type=TEST_TYPE,
            at=stamp,
            data={"message": "A test event from Wayfarer.", "endpoint_id": str(endpoint.public_id)},
        ),
        idempotency_key=f"test:{uuid.uuid4()}",
        next_attempt_at=stamp,
        created_at=stamp,
        updated_at=stamp,
    )
    transaction.on_commit(_wake, robust=True)
    return message


@transaction.atomic
def message_replay(*, message: WebhookMessage) -> WebhookMessage:
    """Queue the message again, now, with the same `webhook-id` and a fresh retry schedule.
    Refused (code "state") while it is being sent."""
    locked = WebhookMessage.objects.select_for_update().get(tenant=message.tenant, pk=message.pk)
    if locked.status == WebhookMessage.Status.SENDING:
        raise ValidationError(
            "It is being sent right now; replay it once it is done.", code="state"
        )
    stamp = now()
    locked.status = WebhookMessage.Status.PENDING
    locked.attempts_before_replay = locked.attempts
    locked.next_attempt_at = stamp
    locked.updated_at = stamp
    locked.save(update_fields=["status", "attempts_before_replay", "next_attempt_at", "updated_at"])
    transaction.on_commit(_wake, robust=True)
    return locked


def messages_prune(*, before: datetime, batch: int = 5000) -> int:
    """Delete finished messages (succeeded or failed for good) written before `before`, every
    team's, in batches of one short transaction each: the log the UI and API show is kept for
    WAYFARER_WEBHOOK_LOG_DAYS, not for ever. Pending and sending messages stay whatever their
    age. Returns how many were deleted."""
    finished = [WebhookMessage.Status.SUCCEEDED, WebhookMessage.Status.FAILED]
    deleted = 0
    endpoints = WebhookEndpoint.objects.values_list("tenant_id", "pk")
    for tenant_id, endpoint_id in endpoints.iterator():
        while True:
            ids = list(
                WebhookMessage.objects.filter(
                    tenant_id=tenant_id,
                    endpoint_id=endpoint_id,
                    created_at__lt=before,
                    status__in=finished,
                ).values_list("pk", flat=True)[:batch]
            )
            if not ids:
                break
            with transaction.atomic():
                gone, _ = WebhookMessage.objects.filter(tenant_id=tenant_id, pk__in=ids).delete()
            deleted += gone
    return deleted
