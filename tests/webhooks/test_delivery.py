"""Webhooks end to end: events stored by the one fact API become signed POSTs that a real
receiver on loopback verifies with the standardwebhooks library; failures are retried on the
spec's schedule, recorded and replayable; nothing is sent twice."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.core.exceptions import ValidationError

from audience.models import Contact
from audience.services import Fact, events_record
from journeys import reactions
from segments import services as segment_services
from tests.journeys.conftest import journey_build
from webhooks import sending, services
from webhooks.models import EventType, WebhookMessage

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def ann(world: Any) -> Contact:
    return Contact.objects.create(
        tenant=world.acme, email="ann@example.com", user_id="u-ann", first_name="Ann"
    )


def record(world: Any, contact: Contact, name: str, **properties: Any) -> list[int]:
    return events_record(
        tenant=world.acme,
        facts=[Fact(contact.pk, name, str(uuid.uuid4()), "messaging", properties)],
    )


def test_email_outcomes_arrive_signed_with_the_contact_and_the_event(
    world: Any, ann: Contact, receiver: Any, endpoint_factory: Any
) -> None:
    endpoint_factory()
    record(world, ann, "Email Opened", template="Welcome")
    record(world, ann, "Email Link Clicked", url="https://shop.example/")
    record(world, ann, "Unsubscribed", channel="email")
    record(world, ann, "Email Delivered")  # no webhook type: nothing sent
    report = sending.messages_send()
    assert report.succeeded == 3 and receiver.rejected == []
    assert receiver.types() == ["message.opened", "message.clicked", "contact.unsubscribed"]
    opened = receiver.verified[0]
    assert set(opened) == {"type", "timestamp", "data"}
    assert opened["data"] == {
        "contact_id": str(ann.public_id),
        "user_id": "u-ann",
        "email": "ann@example.com",
        "event": "Email Opened",
        "properties": {"template": "Welcome"},
        "occurred_at": opened["data"]["occurred_at"],
        "source": "messaging",
    }
    headers, _ = receiver.requests[0]
    message = WebhookMessage.objects.get(type="message.opened")
    assert headers["webhook-id"] == message.webhook_id
    assert message.status == "succeeded" and message.attempts == 1
    assert message.last_response_code == 200


def test_a_segment_entry_and_a_stage_change_arrive_signed(
    world: Any, ann: Contact, receiver: Any, endpoint_factory: Any
) -> None:
    endpoint_factory(event_types=["segment.entered", "contact.stage_changed"])
    segment = segment_services.segment_create(
        tenant=world.acme,
        name="Has email",
        rules={
            "type": "group",
            "match": "all",
            "children": [{"type": "attribute", "field": "email", "operator": "exists"}],
        },
    )
    segment_services.segment_membership_refresh(segment=segment)
    record(world, ann, "Lifecycle Stage Changed", **{"from": "awareness", "to": "acquisition"})
    record(world, ann, "Email Opened")  # not subscribed
    sending.messages_send()
    assert receiver.rejected == []
    assert receiver.types() == ["segment.entered", "contact.stage_changed"]
    entered, changed = receiver.verified
    assert entered["data"]["properties"]["segment"] == "Has email"
    assert entered["data"]["contact_id"] == str(ann.public_id)
    assert changed["data"]["properties"] == {"from": "awareness", "to": "acquisition"}


def test_a_journey_conversion_arrives_signed(
    world: Any,
    ann: Contact,
    receiver: Any,
    endpoint_factory: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    endpoint_factory(event_types=["conversion"])
    journey = journey_build(
        world.acme,
        {
            "t": ("trigger_event", {"event": "Product Added"}),
            "g": (
                "goal",
                {
                    "event": "Order Completed",
                    "amount": 7,
                    "unit": "days",
                    "revenue_property": "revenue",
                },
            ),
        },
        "t.next>g",
        name="Cart rescue",
    )
    with django_capture_on_commit_callbacks(execute=True):
        for name, props in (("Product Added", {}), ("Order Completed", {"revenue": "49.90"})):
            ids = events_record(
                tenant=world.acme, facts=[Fact(ann.pk, name, str(uuid.uuid4()), "test", props)]
            )
            reactions.events_process(tenant=world.acme, event_ids=ids, now=None)
    sending.messages_send()
    assert receiver.rejected == []
    assert receiver.types() == ["conversion"]
    data = receiver.verified[0]["data"]
    assert data["journey"] == "Cart rescue" and data["journey_id"] == str(journey.public_id)
    assert data["revenue"] == "49.90" and data["contact_id"] == str(ann.public_id)
    assert data["event"] == "Order Completed"


def test_a_failed_attempt_is_retried_on_the_schedule_and_recorded(
    world: Any, ann: Contact, receiver: Any, endpoint_factory: Any
) -> None:
    endpoint_factory(event_types=["message.opened"])
    receiver.answers = [500]
    with time_machine.travel(T0, tick=False):
        record(world, ann, "Email Opened")
        assert sending.messages_send().retrying == 1
        message = WebhookMessage.objects.get()
        assert message.status == "pending" and message.attempts == 1
        assert message.last_response_code == 500
        assert message.last_error == "the endpoint answered 500"
        # 5 s after the first failure, give or take the jitter
        assert T0 + timedelta(seconds=4.5) <= message.next_attempt_at <= T0 + timedelta(seconds=5.5)
        assert sending.messages_send().claimed == 0  # not due yet
    with time_machine.travel(T0 + timedelta(seconds=6), tick=False):
        assert sending.messages_send().succeeded == 1
    message.refresh_from_db()
    assert message.status == "succeeded" and message.attempts == 2
    assert message.last_response_code == 200 and message.last_error == ""
    first, second = receiver.requests
    assert first[0]["webhook-id"] == second[0]["webhook-id"] == message.webhook_id


def test_it_gives_up_after_the_last_attempt_and_a_replay_sends_it_again(
    world: Any, ann: Contact, receiver: Any, endpoint_factory: Any
) -> None:
    endpoint_factory(event_types=["message.opened"])
    receiver.answers = [503] * sending.MAX_ATTEMPTS
    at = T0
    with time_machine.travel(at, tick=False):
        record(world, ann, "Email Opened")
    for _ in range(sending.MAX_ATTEMPTS):
        with time_machine.travel(at, tick=False):
            assert sending.messages_send().claimed == 1
        message = WebhookMessage.objects.get()
        at = message.next_attempt_at or at
    assert message.status == "failed" and message.attempts == sending.MAX_ATTEMPTS
    assert message.next_attempt_at is None and message.last_response_code == 503
    # the schedule spans about a day (5 s … 10 h), jitter aside
    assert timedelta(hours=25) < at - T0 < timedelta(hours=33)

    with time_machine.travel(at + timedelta(minutes=1), tick=False):
        services.message_replay(message=message)
        assert sending.messages_send().succeeded == 1
    message.refresh_from_db()
    assert message.status == "succeeded" and message.attempts == sending.MAX_ATTEMPTS + 1
    ids = {headers["webhook-id"] for headers, _ in receiver.requests}
    assert ids == {message.webhook_id}
    assert len(receiver.verified) == 1


def test_a_replayed_message_that_fails_gets_a_fresh_schedule(
    world: Any, ann: Contact, receiver: Any, endpoint_factory: Any
) -> None:
    endpoint_factory(event_types=["message.opened"])
    record(world, ann, "Email Opened")
    sending.messages_send()
    message = WebhookMessage.objects.get()
    receiver.answers = [500]
    services.message_replay(message=message)
    sending.messages_send()
    message.refresh_from_db()
    assert message.status == "pending" and message.attempts == 2  # retried, not given up


def test_nothing_is_sent_twice_when_the_task_runs_twice_or_the_event_repeats(
    world: Any, ann: Contact, receiver: Any, endpoint_factory: Any
) -> None:
    endpoint_factory(event_types=["message.opened"])
    fact = Fact(ann.pk, "Email Opened", "delivery-1:open", "messaging", {})
    events_record(tenant=world.acme, facts=[fact])
    events_record(tenant=world.acme, facts=[fact])  # the same fact: stored once
    token, other = uuid.uuid4(), uuid.uuid4()
    claimed = sending.claim(limit=10, token=token, at=datetime.now(UTC))
    assert len(claimed) == 1
    assert sending.claim(limit=10, token=other, at=datetime.now(UTC)) == []  # a second worker
    sending.message_attempt(claimed[0], token)
    assert sending.message_attempt(claimed[0], other) == "pending"  # not its claim: no POST
    assert sending.messages_send().claimed == 0
    assert len(receiver.requests) == 1


def test_a_message_per_subscribed_endpoint_and_none_for_a_disabled_one(
    world: Any, ann: Contact, receiver: Any, endpoint_factory: Any
) -> None:
    first = endpoint_factory(event_types=["message.opened"])
    endpoint_factory(event_types=["message.opened", "message.clicked"])
    off = endpoint_factory(event_types=["message.opened"])
    services.endpoint_update(endpoint=off, enabled=False)
    endpoint_factory(tenant=world.globex)  # another team's: never sees acme's events
    record(world, ann, "Email Opened")
    assert WebhookMessage.objects.filter(tenant=world.acme).count() == 2
    assert not WebhookMessage.objects.filter(tenant=world.globex).exists()
    sending.messages_send()
    assert len(receiver.verified) == 2
    services.endpoint_update(endpoint=first, enabled=False)  # disabled after writing
    record(world, ann, "Email Opened")
    assert WebhookMessage.objects.filter(endpoint=first).count() == 1


def test_a_rotated_secret_still_verifies_with_the_previous_one_for_a_day(
    world: Any, ann: Contact, receiver: Any, endpoint_factory: Any
) -> None:
    endpoint = endpoint_factory(event_types=["message.opened"])
    old = endpoint.secret
    new = services.endpoint_secret_rotate(endpoint=endpoint)
    assert new != old and new.startswith("whsec_")
    receiver.secrets = [old]  # a receiver that has not switched yet
    record(world, ann, "Email Opened")
    sending.messages_send()
    assert receiver.rejected == [] and len(receiver.verified) == 1
    headers, _ = receiver.requests[0]
    assert len(headers["webhook-signature"].split(" ")) == 2
    receiver.secrets = [new]
    with time_machine.travel(datetime.now(UTC) + timedelta(hours=25), tick=False):
        services.endpoint_test_send(endpoint=endpoint)
        sending.messages_send()
    headers, _ = receiver.requests[-1]
    assert len(headers["webhook-signature"].split(" ")) == 1
    assert receiver.types() == ["message.opened", "webhook.test"]


def test_the_guard_refuses_private_addresses_in_production(
    world: Any, ann: Contact, receiver: Any, endpoint_factory: Any, settings: Any
) -> None:
    endpoint = endpoint_factory(event_types=["message.opened"])  # made while allowed (tests)
    settings.WAYFARER_OUTBOUND_ALLOW_PRIVATE = False  # production's setting
    for url, reason in (
        ("https://127.0.0.1/hooks", "loopback"),
        ("https://10.1.2.3/hooks", "private"),
        ("https://[::1]/hooks", "loopback"),
        ("https://localhost/hooks", "loopback"),
        ("http://example.com/hooks", "https"),
        (receiver.url, "https"),
    ):
        with pytest.raises(ValidationError) as refused:
            services.endpoint_create(tenant=world.acme, url=url, event_types=["conversion"])
        assert reason in refused.value.message_dict["url"][0], url
    record(world, ann, "Email Opened")
    assert sending.messages_send().failed == 1  # refused: retrying cannot help
    message = WebhookMessage.objects.get(endpoint=endpoint)
    assert message.status == "failed" and "refused" in message.last_error
    assert receiver.requests == []


def test_event_types_are_validated(world: Any) -> None:
    with pytest.raises(ValidationError) as refused:
        services.endpoint_create(
            tenant=world.acme, url="https://hooks.example.com/", event_types=["message.nope"]
        )
    assert "Unknown event type: message.nope" in refused.value.message_dict["event_types"][0]
    endpoint = services.endpoint_create(
        tenant=world.acme,
        url="https://hooks.example.com/",
        event_types=["conversion", "message.sent", "conversion"],
    )
    assert endpoint.event_types == ["message.sent", "conversion"]  # the catalog's order, once
    assert endpoint.secret.startswith("whsec_") and len(endpoint.secret) > 40
    assert set(EventType.values) >= set(endpoint.event_types)
