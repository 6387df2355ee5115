"""Email sent in groups (messaging/email_channel.py): one message per SMTP connection, every
step on all connections before the next, one handover commit per group — against a real SMTP
server that refuses, drops connections and limits how many a client may open."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.utils.timezone import now

from messaging import outbox
from messaging.models import Channel, Delivery, Template
from tests.mail_sink import MailSink
from tests.messaging.outbox_helpers import contacts_create, decide, recipients, send_claimed

pytestmark = pytest.mark.django_db


def test_it_sends_a_group_over_several_connections_and_keeps_them_for_the_next(
    world: Any, email_template: Template, mail_sink: MailSink, settings: Any
) -> None:
    settings.MESSAGING_SMTP_CONNECTIONS = 3
    contacts = contacts_create(world, 7)
    decide(world, email_template, contacts)

    report = outbox.deliveries_send(channel=Channel.EMAIL)

    assert report.sent == 7
    received = mail_sink.wait_for(7)
    assert recipients(mail_sink) == sorted(c.email for c in contacts)
    # Three connections, kept open from one group to the next (groups of 3, 3 and 1).
    assert sorted(Counter(r.peer for r in received).values()) == [2, 2, 3]
    # Each message is whole and its own: the Message-ID of the delivery sent to that address.
    by_address = {d.contact.email: d for d in Delivery.objects.select_related("contact")}
    for r in received:
        public_id = by_address[r.rcpt_tos[0]].public_id
        assert r.message["Message-ID"].startswith(f"<{public_id}@")
        assert "Hi" in r.message.get_body(preferencelist=("plain",)).get_content()
    # One handover commit per group.
    assert len(set(Delivery.objects.values_list("handed_over_at", flat=True))) == 3


def test_a_refusal_in_a_group_leaves_the_others_going_and_the_connection_in_use(
    world: Any, email_template: Template, mail_sink: MailSink, settings: Any
) -> None:
    settings.MESSAGING_SMTP_CONNECTIONS = 4
    ann, bob, cid, dan, *second_group = contacts_create(world, 8)
    mail_sink.refuse(bob.email, "550 5.1.1 No such user")
    mail_sink.refuse(cid.email, "452 4.2.2 Mailbox full")
    decide(world, email_template, [ann, bob, cid, dan, *second_group])

    report = outbox.deliveries_send(channel=Channel.EMAIL)

    assert (report.sent, report.failed, report.deferred) == (6, 1, 1)
    assert recipients(mail_sink) == sorted(c.email for c in [ann, dan, *second_group])
    statuses = dict(Delivery.objects.values_list("contact__email", "status"))
    assert (statuses[bob.email], statuses[cid.email]) == ("failed", "queued")
    assert Delivery.objects.get(contact=cid).handed_over_at is None
    # The refused connections were reset, not dropped: the second group used the same four.
    assert len({r.peer for r in mail_sink.received()}) == 4


def test_a_connection_lost_before_the_handover_retries_only_its_message(
    world: Any, email_template: Template, mail_sink: MailSink, settings: Any
) -> None:
    settings.MESSAGING_SMTP_CONNECTIONS = 3
    ann, bob, cid = contacts_create(world, 3)
    mail_sink.handler.drop.add(bob.email)
    decide(world, email_template, [ann, bob, cid])

    report = outbox.deliveries_send(channel=Channel.EMAIL)

    assert (report.sent, report.deferred, report.failed) == (2, 1, 0)
    assert recipients(mail_sink) == sorted([ann.email, cid.email])
    waiting = Delivery.objects.get(contact=bob)
    assert (waiting.status, waiting.handed_over_at) == ("queued", None)
    assert "connection lost" in waiting.reason

    mail_sink.handler.drop.clear()
    with time_machine.travel(waiting.not_before + timedelta(seconds=1)):
        assert outbox.deliveries_send(channel=Channel.EMAIL).sent == 1
    assert recipients(mail_sink) == sorted([ann.email, bob.email, cid.email])  # once each


def test_it_makes_do_with_the_connections_a_server_allows(
    world: Any, email_template: Template, settings: Any
) -> None:
    with MailSink(max_connections=2) as sink:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = (
            "127.0.0.1",
            sink.port,
            10,
        )
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        settings.MESSAGING_SMTP_CONNECTIONS = 5
        contacts = contacts_create(world, 6)
        decide(world, email_template, contacts)

        report = outbox.deliveries_send(channel=Channel.EMAIL)

        assert (report.sent, report.deferred, report.failed) == (6, 0, 0)
        assert recipients(sink) == sorted(c.email for c in contacts)
        assert len({r.peer for r in sink.received()}) == 2


def test_a_worker_sends_none_of_the_group_rows_another_has_taken_over(
    world: Any, email_template: Template, mail_sink: MailSink, settings: Any
) -> None:
    settings.MESSAGING_SMTP_CONNECTIONS = 2
    ann, bob = contacts_create(world, 2)
    decide(world, email_template, [ann, bob])
    token = uuid.uuid4()
    batch = outbox.claim(channel=Channel.EMAIL, limit=10, token=token, at=now())
    # While this worker stalled, bob's row was requeued and claimed by another worker.
    Delivery.objects.filter(contact=bob).update(claim_token=uuid.uuid4())

    report = send_claimed(batch, token)

    assert report.sent == 1
    assert recipients(mail_sink) == [ann.email]  # bob's DATA was cut off before its "."
    assert Delivery.objects.get(contact=bob).handed_over_at is None


def test_a_reply_after_the_final_dot_that_is_not_a_refusal_counts_as_sent_never_again(
    world: Any, email_template: Template, mail_sink: MailSink
) -> None:
    [ann] = contacts_create(world, 1)
    mail_sink.handler.data_reply = "OK queued"  # no reply code: the server may well have it
    decide(world, email_template, [ann])

    report = outbox.deliveries_send(channel=Channel.EMAIL)

    assert (report.sent, report.deferred) == (1, 0)
    delivery = Delivery.objects.get()
    assert delivery.status == "sent" and delivery.provider_id.startswith("unconfirmed")
    with time_machine.travel(now() + timedelta(hours=1)):
        assert outbox.deliveries_send(channel=Channel.EMAIL).claimed == 0
    assert recipients(mail_sink) == [ann.email]


def test_a_connection_refused_at_its_greeting_leaves_the_group_to_the_others(
    world: Any, email_template: Template, mail_sink: MailSink, settings: Any
) -> None:
    settings.MESSAGING_SMTP_CONNECTIONS = 4
    mail_sink.handler.refuse_hello = {3}  # the third connection: EHLO and HELO get 421
    contacts = contacts_create(world, 4)
    decide(world, email_template, contacts)

    report = outbox.deliveries_send(channel=Channel.EMAIL)

    assert (report.sent, report.deferred, report.failed) == (4, 0, 0)
    assert recipients(mail_sink) == sorted(c.email for c in contacts)
    assert len({r.peer for r in mail_sink.received()}) == 2  # it went on with what it had
