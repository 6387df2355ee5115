"""Sending where it used to break: limits outside a test's transaction, senders with commas in
their names, messages that kill their worker, unusable data."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.utils.timezone import now

from audience.models import Contact
from messaging import outbox, services
from messaging.models import Delivery, SendingPolicy, Template


def _decide(world: Any, template: Template, count: int) -> list[Contact]:
    contacts = [
        Contact.objects.create(tenant=world.acme, email=f"c{i}@example.com") for i in range(count)
    ]
    services.deliveries_create(
        tenant=world.acme,
        template=template,
        source="campaign:1",
        decisions=[services.Decision(contact=c, idempotency_key=f"k{c.pk}") for c in contacts],
    )
    return contacts


@pytest.mark.django_db(transaction=True)
def test_the_hourly_limit_holds_in_a_real_sender_run(
    world: Any, email_template: Template, mail_sink: Any
) -> None:
    """The sender runs in autocommit (no test transaction around it here)."""
    SendingPolicy.objects.create(tenant=world.acme, hourly_limit=2)
    _decide(world, email_template, 3)

    report = outbox.deliveries_send(channel="email")

    assert (report.sent, report.deferred) == (2, 1)
    assert len(mail_sink.messages()) == 2
    held = Delivery.objects.get(status=Delivery.Status.QUEUED)
    assert held.reason == "hourly sending limit reached"


@pytest.mark.django_db
def test_a_sender_name_with_a_comma_is_quoted_not_mangled(
    world: Any, email_template: Template, mail_sink: Any
) -> None:
    services.sender_identity_update(
        tenant=world.acme,
        sender_name="Smith, Jones & Co",
        sender_email="news@acme.example",
        verified=True,
    )
    _decide(world, email_template, 1)

    assert outbox.deliveries_send(channel="email").sent == 1

    (received,) = mail_sink.received()
    assert received.mail_from == "news@acme.example"
    assert received.message["From"].addresses[0].display_name == "Smith, Jones & Co"


@pytest.mark.django_db
def test_a_message_whose_worker_dies_on_every_attempt_is_given_up(
    world: Any, email_template: Template, settings: Any
) -> None:
    settings.MESSAGING_LEASE_SECONDS = 60
    (contact,) = _decide(world, email_template, 1)
    delivery = Delivery.objects.get(contact=contact)
    for attempt in range(1, outbox.MAX_ATTEMPTS + 1):
        # A worker claims it and dies before handing it over; recovery finds it later.
        claimed = outbox.claim(channel="email", limit=10, token=uuid.uuid4(), at=now())
        assert [d.pk for d in claimed] == [delivery.pk]
        assert outbox.recover(channel="email", at=now() + timedelta(minutes=2)) == 1
        delivery.refresh_from_db()
        assert delivery.attempts == attempt
    assert delivery.status == Delivery.Status.FAILED
    assert "stopped during each of 5 attempts" in delivery.reason


@pytest.mark.django_db
def test_the_api_refuses_data_it_could_not_store(api: Any, world: Any) -> None:
    template = Template.objects.create(tenant=world.acme, name="R", subject="s", html="h")
    Contact.objects.create(tenant=world.acme, email="ann@example.com")
    for data in ({"note": "a\x00b"}, {"big": 2**70}):
        response = api(
            "post",
            "messages/",
            {
                "template": str(template.public_id),
                "contact": {"email": "ann@example.com"},
                "data": data,
            },
        )
        assert response.status_code == 400, data
        assert [name.split(".")[0] for name in response.json()["error"]["fields"]] == ["data"]
    assert not Delivery.objects.exists()
