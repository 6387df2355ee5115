"""Reads for outbound webhooks, with the gatekeepers: another team's endpoint or message is a
404, like an unknown one."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from core.ids import uuid_or_404
from tenants.models import Tenant
from webhooks.models import WebhookEndpoint, WebhookMessage


def endpoint_list(*, tenant: Tenant) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(tenant=tenant).order_by("created_at", "pk")


def endpoint_get(*, tenant: Tenant, public_id: object) -> WebhookEndpoint:
    found = WebhookEndpoint.objects.filter(
        tenant=tenant, public_id=uuid_or_404(public_id, what="webhook endpoint")
    ).first()
    if found is None:
        raise Http404("No such webhook endpoint")
    return found


def message_list(*, endpoint: WebhookEndpoint) -> QuerySet[WebhookMessage]:
    """The endpoint's messages, newest first."""
    return WebhookMessage.objects.filter(tenant_id=endpoint.tenant_id, endpoint=endpoint).order_by(
        "-created_at", "-pk"
    )


def message_get(*, endpoint: WebhookEndpoint, public_id: object) -> WebhookMessage:
    """By its id: the UUID, or the `webhook-id` form (msg_<hex>)."""
    if isinstance(public_id, str) and public_id.startswith("msg_"):
        public_id = public_id.removeprefix("msg_")
    found = WebhookMessage.objects.filter(
        tenant_id=endpoint.tenant_id,
        endpoint=endpoint,
        public_id=uuid_or_404(public_id, what="webhook message"),
    ).first()
    if found is None:
        raise Http404("No such webhook message")
    return found
