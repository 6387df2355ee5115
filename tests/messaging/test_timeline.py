"""Every outcome of a message shows on the contact's timeline, saying what and why."""

from __future__ import annotations

from typing import Any

import pytest

from audience.models import Consent, Contact
from messaging import outbox, services
from messaging.models import Category, Template

pytestmark = pytest.mark.django_db


def test_the_profile_timeline_shows_a_sent_and_a_skipped_message_with_the_reason(
    login: Any, world: Any, email_template: Template, mail_sink: Any
) -> None:
    ann = Contact.objects.create(tenant=world.acme, email="ann@example.com", first_name="Ann")
    services.delivery_create(
        tenant=world.acme,
        contact=ann,
        template=email_template,
        source="campaign:1",
        idempotency_key="campaign:1:ann",
    )
    outbox.deliveries_send(channel="email")
    ann.email_consent = Consent.REVOKED
    ann.save(update_fields=["email_consent"])
    services.delivery_create(
        tenant=world.acme,
        contact=ann,
        template=email_template,
        source="journey:7",
        idempotency_key="journey:7:ann",
        category=Category.MARKETING,
    )
    outbox.deliveries_send(channel="email")

    url = f"/t/acme/contacts/{ann.public_id}/timeline/"
    page = login(world.bob).get(url).content.decode()

    assert "Email Sent" in page
    assert "Message Skipped" in page
    # The template's name: its subject is Liquid ("Hello {{ contact.first_name … }}").
    assert "Email “Welcome” sent" in page
    assert "Email “Welcome” not sent (unsubscribed)" in page
    assert len(mail_sink.messages()) == 1
