"""Thin Celery adapters over webhooks/sending.py. Safe to run twice, at once."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils.timezone import now

from webhooks import sending, services

# A sending task gives its worker back after this long and queues its own continuation.
SEND_SECONDS = 20.0


@shared_task(name="webhooks.tasks.send_due", ignore_result=True)
def send_due() -> None:
    """Send the due webhook messages (new ones, retries that came due, replays)."""
    if sending.messages_send(seconds=SEND_SECONDS).more:
        send_due.delay()


@shared_task(name="webhooks.tasks.messages_prune", ignore_result=True)
def messages_prune() -> None:
    """Forget finished messages older than the log keeps (WAYFARER_WEBHOOK_LOG_DAYS)."""
    services.messages_prune(before=now() - timedelta(days=settings.WAYFARER_WEBHOOK_LOG_DAYS))
