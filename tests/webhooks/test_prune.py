"""The webhook log keeps finished messages for WAYFARER_WEBHOOK_LOG_DAYS: older succeeded and
failed ones go, anything still to send stays, whatever its age."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils.timezone import now

from webhooks.models import WebhookEndpoint, WebhookMessage
from webhooks.tasks import messages_prune

pytestmark = pytest.mark.django_db


def message(endpoint: Any, status: str, age_days: int) -> WebhookMessage:
    token = {"claim_token": "00000000-0000-0000-0000-000000000001"} if status == "sending" else {}
    return WebhookMessage.objects.create(
        tenant=endpoint.tenant,
        endpoint=endpoint,
        type="message.sent",
        payload={"type": "message.sent", "data": {}},
        idempotency_key=f"{status}-{age_days}",
        status=status,
        created_at=now() - timedelta(days=age_days),
        **token,
    )


def test_it_forgets_finished_messages_past_the_log_days(world: Any, settings: Any) -> None:
    settings.WAYFARER_WEBHOOK_LOG_DAYS = 30
    kept, gone = [], []
    for tenant in (world.acme, world.globex):
        endpoint = WebhookEndpoint.objects.create(
            tenant=tenant, url="https://hooks.example/in", event_types=["message.sent"]
        )
        gone += [message(endpoint, "succeeded", 31), message(endpoint, "failed", 45)]
        kept += [
            message(endpoint, "succeeded", 29),
            message(endpoint, "failed", 2),
            message(endpoint, "pending", 90),  # a retry still due: never forgotten
            message(endpoint, "sending", 90),
        ]
    messages_prune()
    left = set(WebhookMessage.objects.values_list("pk", flat=True))
    assert left == {m.pk for m in kept}
    messages_prune()  # again: nothing more to do
    assert set(WebhookMessage.objects.values_list("pk", flat=True)) == left
