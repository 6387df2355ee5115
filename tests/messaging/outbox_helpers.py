"""Helpers of the outbox tests (test_outbox.py, test_smtp_groups.py): contacts, decisions, what
the sink received, and a worker that sends a batch it claimed earlier."""

from __future__ import annotations

import uuid
from typing import Any

from audience.models import Contact
from messaging import outbox
from messaging.context import contexts_build
from messaging.email_channel import EmailSender
from messaging.models import Delivery, Template
from messaging.services import Decision, deliveries_create
from tests.mail_sink import MailSink


def contacts_create(world: Any, count: int, tenant: Any = None) -> list[Contact]:
    tenant = tenant or world.acme
    return [
        Contact.objects.create(
            tenant=tenant, email=f"c{i}@{tenant.slug}.example", first_name=f"C{i}"
        )
        for i in range(count)
    ]


def decide(world: Any, template: Template, who: list[Contact], prefix: str = "k") -> None:
    deliveries_create(
        tenant=world.acme,
        template=template,
        source="test",
        decisions=[Decision(c, f"{prefix}-{c.pk}") for c in who],
    )


def recipients(sink: MailSink) -> list[str]:
    return sorted(to for r in sink.received() for to in r.rcpt_tos)


def send_claimed(batch: list[Delivery], token: uuid.UUID) -> outbox.SendReport:
    """What a worker does with a batch it claimed (with `token`), whenever it gets to it."""
    report = outbox.SendReport()
    sender = EmailSender()
    try:
        outbox._send_batch(batch, sender, token, report, contexts_build)
    finally:
        sender.close()
    return report
