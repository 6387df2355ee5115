"""The outbox (messaging/outbox.py): claiming, the handover stamp, recovery after a dead worker,
idempotent decisions and what an SMTP server's refusals do — against a real SMTP server."""

from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.db import IntegrityError, connection, transaction
from django.utils.timezone import now

from audience.models import Contact, Event
from messaging import outbox, outcomes, tasks
from messaging.models import Channel, Delivery, Suppression, Template
from messaging.services import Decision, DeliveryConflict, deliveries_create, delivery_create
from tests.mail_sink import MailSink
from tests.messaging.outbox_helpers import contacts_create, decide, recipients, send_claimed

pytestmark = pytest.mark.django_db


def _events(name: str) -> list[Event]:
    return list(Event.objects.filter(name=name).order_by("pk"))


# --- claiming ------------------------------------------------------------------------------------


def test_it_gives_each_due_row_to_one_claimer_only(world: Any, email_template: Template) -> None:
    decide(world, email_template, contacts_create(world, 5))
    first = outbox.claim(channel=Channel.EMAIL, limit=3, token=uuid.uuid4(), at=now())
    second = outbox.claim(channel=Channel.EMAIL, limit=3, token=uuid.uuid4(), at=now())
    third = outbox.claim(channel=Channel.EMAIL, limit=3, token=uuid.uuid4(), at=now())

    assert (len(first), len(second), third) == (3, 2, [])
    assert not {d.pk for d in first} & {d.pk for d in second}
    assert set(Delivery.objects.values_list("status", "attempts")) == {("sending", 1)}


def test_it_does_not_claim_a_row_before_it_is_due_nor_another_channels(
    world: Any, email_template: Template
) -> None:
    decide(world, email_template, contacts_create(world, 2))
    later = Delivery.objects.order_by("pk").first()
    Delivery.objects.filter(pk=later.pk).update(not_before=now() + timedelta(minutes=5))

    assert outbox.claim(channel=Channel.PUSH, limit=10, token=uuid.uuid4(), at=now()) == []
    claimed = outbox.claim(channel=Channel.EMAIL, limit=10, token=uuid.uuid4(), at=now())
    assert [d.pk for d in claimed] == [Delivery.objects.exclude(pk=later.pk).get().pk]


@pytest.mark.django_db(transaction=True)
def test_it_shares_the_queue_between_concurrent_claimers_without_overlap(
    world: Any, email_template: Template
) -> None:
    # Rows written directly: deciding would also wake a sender through the broker once the
    # transaction commits, and this test has no worker.
    Delivery.objects.bulk_create(
        Delivery(
            tenant=world.acme,
            contact=c,
            channel=Channel.EMAIL,
            template=email_template,
            content=email_template.snapshot(),
            source="test",
            idempotency_key=f"k-{c.pk}",
        )
        for c in contacts_create(world, 60)
    )
    start = threading.Barrier(4)
    claims: dict[uuid.UUID, list[int]] = {}
    errors: list[BaseException] = []

    def claimer() -> None:
        token = uuid.uuid4()
        try:
            start.wait()
            taken: list[int] = []
            while batch := outbox.claim(channel=Channel.EMAIL, limit=7, token=token, at=now()):
                taken += [d.pk for d in batch]
            claims[token] = taken
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)
        finally:
            connection.close()  # each thread has its own connection

    threads = [threading.Thread(target=claimer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert not errors
    taken = [pk for pks in claims.values() for pk in pks]
    assert sorted(taken) == sorted(Delivery.objects.values_list("pk", flat=True))  # no overlap
    for token, pks in claims.items():  # each row carries the token of the one who took it
        assert set(Delivery.objects.filter(claim_token=token).values_list("pk", flat=True)) == set(
            pks
        )


# --- the handover stamp and recovery -------------------------------------------------------------


def _claimed_by_a_slow_worker(
    world: Any, template: Template, settings: Any
) -> tuple[Contact, uuid.UUID, datetime, list[Delivery]]:
    """One decided message, claimed by a worker with a 60 s lease: (contact, its token, when it
    claimed, its batch)."""
    settings.MESSAGING_LEASE_SECONDS = 60
    ann = contacts_create(world, 1)[0]
    decide(world, template, [ann])
    token, claimed_at = uuid.uuid4(), now()
    batch = outbox.claim(channel=Channel.EMAIL, limit=10, token=token, at=claimed_at)
    return ann, token, claimed_at, batch


def test_it_refuses_the_handover_to_a_worker_whose_row_was_reclaimed_and_sends_it_once(
    world: Any, email_template: Template, mail_sink: MailSink, settings: Any
) -> None:
    ann, slow_token, claimed_at, slow_batch = _claimed_by_a_slow_worker(
        world, email_template, settings
    )

    # The slow worker stalls past its lease: recovery returns the row to the queue and a
    # healthy worker sends it.
    assert outbox.recover(at=claimed_at + timedelta(seconds=61)) == 1
    assert outbox.deliveries_send(channel=Channel.EMAIL).sent == 1
    assert recipients(mail_sink) == [ann.email]

    # The slow worker wakes up and carries on with the batch it claimed long ago.
    report = send_claimed(slow_batch, slow_token)

    assert report.sent == report.failed == 0
    assert recipients(mail_sink) == [ann.email]  # its DATA was cut off before the final "."
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("sent", 2)
    assert len(_events(outcomes.EMAIL_SENT)) == 1


def test_a_worker_that_stalled_past_its_lease_never_sends_a_row_recovery_gave_up(
    world: Any, email_template: Template, mail_sink: MailSink, settings: Any
) -> None:
    _, slow_token, claimed_at, slow_batch = _claimed_by_a_slow_worker(
        world, email_template, settings
    )
    # Every earlier attempt at this message ended with its worker gone: recovery gives it up.
    Delivery.objects.update(attempts=outbox.MAX_ATTEMPTS)
    assert outbox.recover(at=claimed_at + timedelta(seconds=61)) == 1

    report = send_claimed(slow_batch, slow_token)

    assert report.sent == report.failed == 0
    assert mail_sink.received() == []
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.claim_token, delivery.handed_over_at) == (
        "failed",
        None,
        None,
    )


def test_a_row_holds_a_claim_token_only_while_it_is_sending(
    world: Any, email_template: Template
) -> None:
    decide(world, email_template, contacts_create(world, 1))
    [claimed] = outbox.claim(channel=Channel.EMAIL, limit=10, token=uuid.uuid4(), at=now())

    with pytest.raises(IntegrityError), transaction.atomic():
        Delivery.objects.filter(pk=claimed.pk).update(status=Delivery.Status.SENT)
    with pytest.raises(IntegrityError), transaction.atomic():
        Delivery.objects.filter(pk=claimed.pk).update(claim_token=None)
    Delivery.objects.filter(pk=claimed.pk).update(status=Delivery.Status.SENT, claim_token=None)


def test_it_recovers_a_dead_workers_rows_as_sent_if_handed_over_and_queued_if_not(
    world: Any, email_template: Template, settings: Any
) -> None:
    settings.MESSAGING_LEASE_SECONDS = 60
    decide(world, email_template, contacts_create(world, 3))
    token, claimed_at = uuid.uuid4(), now()
    handed, *untouched = outbox.claim(channel=Channel.EMAIL, limit=10, token=token, at=claimed_at)
    # The worker stamped the first message (what the SMTP sender does before the final ".")
    # and died before it recorded the outcome.
    outbox._handover(token)([handed])

    assert outbox.recover(at=claimed_at + timedelta(seconds=59)) == 0  # its lease still runs
    assert outbox.recover(at=claimed_at + timedelta(seconds=61)) == 3

    sent = Delivery.objects.get(pk=handed.pk)
    assert (sent.status, sent.sent_at) == ("sent", sent.handed_over_at)
    assert "stopped before confirming" in sent.reason
    [event] = _events(outcomes.EMAIL_SENT)
    assert (event.contact_id, event.properties["delivery_id"]) == (
        handed.contact_id,
        str(handed.public_id),
    )
    for row in Delivery.objects.filter(pk__in=[d.pk for d in untouched]):
        assert (row.status, row.claim_token, row.handed_over_at) == ("queued", None, None)
        assert row.reason.startswith("requeued")
    # The requeued rows are due at once, for any worker.
    again = outbox.claim(channel=Channel.EMAIL, limit=10, token=uuid.uuid4(), at=now())
    assert sorted(d.pk for d in again) == sorted(d.pk for d in untouched)
    assert {d.attempts for d in again} == {2}


def test_it_sends_nothing_when_a_retried_task_finds_nothing_due(
    world: Any, email_template: Template, mail_sink: MailSink
) -> None:
    contacts = contacts_create(world, 3)
    decide(world, email_template, contacts)

    tasks.send_email_due()  # the task as the worker runs it
    mail_sink.wait_for(3)
    tasks.send_email_due()  # a retry, a second beat, a duplicate wake-up
    report = outbox.deliveries_send(channel=Channel.EMAIL)

    assert (report.claimed, report.sent) == (0, 0)
    assert recipients(mail_sink) == sorted(c.email for c in contacts)
    assert set(Delivery.objects.values_list("status", "attempts")) == {("sent", 1)}
    assert len(_events(outcomes.EMAIL_SENT)) == 3


def test_it_sends_a_decided_message_to_the_mail_server_and_records_it(
    world: Any, email_template: Template, mail_sink: MailSink
) -> None:
    ann = Contact.objects.create(tenant=world.acme, email="ann@example.com", first_name="Ann")
    delivery, _ = delivery_create(
        tenant=world.acme,
        contact=ann,
        template=email_template,
        source="test",
        idempotency_key="welcome-ann",
    )

    assert outbox.deliveries_send(channel=Channel.EMAIL).sent == 1

    [received] = mail_sink.received()
    message = received.message
    assert received.rcpt_tos == ["ann@example.com"]
    assert message["Subject"] == "Hello Ann"
    delivery.refresh_from_db()
    assert delivery.status == "sent" and delivery.sent_at is not None
    assert delivery.provider_id


# --- deciding, idempotently ----------------------------------------------------------------------


def test_it_decides_a_message_once_per_idempotency_key(
    world: Any, email_template: Template
) -> None:
    ann = contacts_create(world, 1)[0]
    kwargs = {
        "tenant": world.acme,
        "contact": ann,
        "template": email_template,
        "source": "api",
        "idempotency_key": "order-1001-receipt",
    }
    first, created = delivery_create(**kwargs)
    again, created_again = delivery_create(**kwargs)

    assert (created, created_again) == (True, False)
    assert again.pk == first.pk
    assert Delivery.objects.count() == 1


def test_it_refuses_an_idempotency_key_reused_for_another_message(
    world: Any, email_template: Template
) -> None:
    ann, bob = contacts_create(world, 2)
    kwargs = {
        "tenant": world.acme,
        "template": email_template,
        "source": "api",
        "idempotency_key": "k1",
    }
    delivery_create(contact=ann, data={"order": 1}, **kwargs)

    with pytest.raises(DeliveryConflict):
        delivery_create(contact=bob, data={"order": 1}, **kwargs)
    with pytest.raises(DeliveryConflict):
        delivery_create(contact=ann, data={"order": 2}, **kwargs)
    assert Delivery.objects.count() == 1


def test_it_keeps_idempotency_keys_apart_per_tenant(world: Any, email_template: Template) -> None:
    ann = contacts_create(world, 1)[0]
    gus = contacts_create(world, 1, tenant=world.globex)[0]
    globex_template = Template.objects.create(
        tenant=world.globex, name="G", channel=Channel.EMAIL, subject="s", html="<p>h</p>"
    )
    delivery_create(
        tenant=world.acme, contact=ann, template=email_template, source="api", idempotency_key="k"
    )
    _, created = delivery_create(
        tenant=world.globex,
        contact=gus,
        template=globex_template,
        source="api",
        idempotency_key="k",
    )

    assert created
    assert sorted(Delivery.objects.values_list("tenant__slug", flat=True)) == ["acme", "globex"]


def test_it_decides_in_bulk_leaving_keys_already_decided_alone(
    world: Any, email_template: Template
) -> None:
    ann, bob, cid = contacts_create(world, 3)

    def decide(*decisions: Decision) -> int:
        return deliveries_create(
            tenant=world.acme, template=email_template, source="campaign:1", decisions=decisions
        )

    assert decide(Decision(ann, "c1-ann", data={"v": 1}), Decision(bob, "c1-bob")) == 2
    # A campaign run again, and a list that names a contact twice: only the new key counts.
    assert (
        decide(
            Decision(ann, "c1-ann", data={"v": 2}),
            Decision(bob, "c1-bob"),
            Decision(cid, "c1-cid"),
            Decision(cid, "c1-cid"),
        )
        == 1
    )
    assert decide() == 0

    assert Delivery.objects.count() == 3
    assert Delivery.objects.get(idempotency_key="c1-ann").data == {"v": 1}  # the first decision


# --- what the mail server says -------------------------------------------------------------------


def test_it_retries_later_what_the_server_refused_for_now(
    world: Any, email_template: Template, mail_sink: MailSink
) -> None:
    ann, bob = contacts_create(world, 2)
    mail_sink.refuse(ann.email, "450 4.2.1 Mailbox busy, try later")
    decide(world, email_template, [ann, bob])

    before = now()
    report = outbox.deliveries_send(channel=Channel.EMAIL)

    assert (report.sent, report.deferred, report.failed) == (1, 1, 0)
    assert recipients(mail_sink) == [bob.email]
    waiting = Delivery.objects.get(contact=ann)
    assert (waiting.status, waiting.attempts, waiting.claim_token) == ("queued", 1, None)
    assert waiting.not_before >= before + timedelta(seconds=outbox.BACKOFF_SECONDS[0])
    assert "450" in waiting.reason and "450" in waiting.last_error
    # Not due yet: a sender running now leaves it alone.
    assert outbox.deliveries_send(channel=Channel.EMAIL).claimed == 0

    del mail_sink.handler.refuse[ann.email]  # the mailbox has room again
    with time_machine.travel(waiting.not_before + timedelta(seconds=1)):
        assert outbox.deliveries_send(channel=Channel.EMAIL).sent == 1

    assert recipients(mail_sink) == sorted([ann.email, bob.email])
    waiting.refresh_from_db()
    assert (waiting.status, waiting.attempts) == ("sent", 2)


def test_it_gives_up_after_the_last_attempt_the_server_refused_for_now(
    world: Any, email_template: Template, mail_sink: MailSink
) -> None:
    ann = contacts_create(world, 1)[0]
    mail_sink.refuse(ann.email, "451 4.3.0 Try again later")
    decide(world, email_template, [ann])

    for _ in range(outbox.MAX_ATTEMPTS):
        due = Delivery.objects.get().not_before
        with time_machine.travel(due + timedelta(seconds=1)):
            outbox.deliveries_send(channel=Channel.EMAIL)

    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("failed", outbox.MAX_ATTEMPTS)
    assert mail_sink.received() == []
    assert [e.properties["reason"][:16] for e in _events(outcomes.EMAIL_FAILED)] == [
        "RCPT TO: 451 4.3"
    ]


def test_it_fails_a_message_the_server_rejected_for_good_and_records_the_bounce(
    world: Any, email_template: Template, mail_sink: MailSink
) -> None:
    ann, bob = contacts_create(world, 2)
    mail_sink.refuse(ann.email, "550 5.1.1 No such user")
    decide(world, email_template, [ann, bob])

    report = outbox.deliveries_send(channel=Channel.EMAIL)

    assert (report.sent, report.failed, report.deferred) == (1, 1, 0)
    assert recipients(mail_sink) == [bob.email]  # the connection went on after the refusal
    failed = Delivery.objects.get(contact=ann)
    assert (failed.status, failed.attempts) == ("failed", 1)
    assert "550" in failed.reason
    [bounce] = _events(outcomes.EMAIL_BOUNCED)
    assert bounce.contact_id == ann.pk and "550" in bounce.properties["reason"]
    assert [e.contact_id for e in _events(outcomes.EMAIL_SENT)] == [bob.pk]
    # Never tried again, and the address is suppressed for the tenant's next messages.
    with time_machine.travel(now() + timedelta(days=1)):
        assert outbox.deliveries_send(channel=Channel.EMAIL).claimed == 0
    [suppressed] = Suppression.objects.all()
    assert (suppressed.tenant, suppressed.address, suppressed.reason) == (
        world.acme,
        ann.email,
        Suppression.Reason.BOUNCED,
    )
    decide(world, email_template, [ann], prefix="next")
    report = outbox.deliveries_send(channel=Channel.EMAIL)
    assert (report.sent, report.skipped) == (0, 1)
    assert recipients(mail_sink) == [bob.email]
