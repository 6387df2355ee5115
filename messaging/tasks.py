"""Thin Celery adapters over messaging/outbox.py. Every task is safe to run twice, at once."""

from __future__ import annotations

from celery import shared_task

from messaging import outbox
from messaging.models import Channel

# A sending task gives its worker back after this long and queues its own continuation.
SEND_SECONDS = 20.0


@shared_task(name="messaging.tasks.send_email_due", ignore_result=True)
def send_email_due() -> None:
    """Send the due emails (one SMTP connection per batch)."""
    if outbox.deliveries_send(channel=Channel.EMAIL, seconds=SEND_SECONDS).more:
        send_email_due.delay()


@shared_task(name="messaging.tasks.send_push_due", ignore_result=True)
def send_push_due() -> None:
    """Send the due web pushes."""
    if outbox.deliveries_send(channel=Channel.PUSH, seconds=SEND_SECONDS).more:
        send_push_due.delay()
