"""Operators' admin, the sender's task and recovery, and the outbox's atomicity."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.db import transaction
from django.utils import timezone

from audience.models import Contact
from audience.services import Fact, events_record
from journeys.kinds.goals import conversion_record
from journeys.models import Enrollment
from webhooks import sending, services
from webhooks.models import WebhookEndpoint, WebhookMessage

pytestmark = pytest.mark.django_db


@pytest.fixture
def ann(world: Any) -> Contact:
    return Contact.objects.create(tenant=world.acme, email="ann@example.com")


def staff(login: Any, user: Any) -> Any:
    user.is_staff = True
    user.save()
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="webhooks"))
    return login(user)


def test_operators_see_their_teams_endpoints_without_the_secret(world: Any, login: Any) -> None:
    mine = services.endpoint_create(
        tenant=world.acme, url="https://hooks.acme.example/", event_types=["conversion"]
    )
    theirs = services.endpoint_create(
        tenant=world.globex, url="https://hooks.globex.example/", event_types=["conversion"]
    )
    client = staff(login, world.alice)  # an admin of acme
    listing = client.get("/admin/webhooks/webhookendpoint/").content.decode()
    assert "hooks.acme.example" in listing and "hooks.globex.example" not in listing
    page = client.get(f"/admin/webhooks/webhookendpoint/{mine.pk}/change/")
    assert page.status_code == 200 and mine.secret not in page.content.decode()
    assert client.get(f"/admin/webhooks/webhookendpoint/{theirs.pk}/change/").status_code == 404
    client.post(f"/admin/webhooks/webhookendpoint/{mine.pk}/change/", {"enabled": ""})
    mine.refresh_from_db()
    assert mine.enabled is False
    viewer = staff(login, world.bob)
    viewer.post(f"/admin/webhooks/webhookendpoint/{mine.pk}/change/", {"enabled": "on"})
    mine.refresh_from_db()
    assert mine.enabled is False  # a viewer of the team may not change it


def test_writing_a_message_wakes_the_sender(
    world: Any,
    ann: Contact,
    receiver: Any,
    endpoint_factory: Any,
    eager_tasks: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    endpoint_factory(event_types=["message.bounced"])
    with django_capture_on_commit_callbacks(execute=True):
        events_record(tenant=world.acme, facts=[Fact(ann.pk, "Email Bounced", "b", "m", {})])
    assert receiver.types() == ["message.bounced"]  # sent by the task, no one called it


def test_a_rolled_back_event_leaves_no_message(
    world: Any, ann: Contact, endpoint_factory: Any
) -> None:
    endpoint_factory(event_types=["message.bounced"])
    with pytest.raises(RuntimeError), transaction.atomic():
        events_record(tenant=world.acme, facts=[Fact(ann.pk, "Email Bounced", "b", "m", {})])
        assert WebhookMessage.objects.count() == 1
        raise RuntimeError("the storing transaction fails")
    assert WebhookMessage.objects.count() == 0


def test_a_message_whose_worker_died_is_sent_again(
    world: Any, ann: Contact, receiver: Any, endpoint_factory: Any
) -> None:
    endpoint_factory(event_types=["message.bounced"])
    events_record(tenant=world.acme, facts=[Fact(ann.pk, "Email Bounced", "b", "m", {})])
    assert len(sending.claim(limit=5, token=uuid.uuid4(), at=timezone.now())) == 1
    # … and its worker died: the lease runs out
    stale = timezone.now() - timedelta(seconds=sending.LEASE_SECONDS + 1)
    WebhookMessage.objects.update(claimed_at=stale)
    report = sending.messages_send()
    assert report.recovered == 1 and report.succeeded == 1
    assert WebhookMessage.objects.get().attempts == 2


def test_a_replay_is_refused_while_the_message_is_being_sent(
    world: Any, ann: Contact, endpoint_factory: Any
) -> None:
    endpoint_factory(event_types=["message.bounced"])
    events_record(tenant=world.acme, facts=[Fact(ann.pk, "Email Bounced", "b", "m", {})])
    (message,) = sending.claim(limit=5, token=uuid.uuid4(), at=timezone.now())
    with pytest.raises(Exception, match="being sent"):
        services.message_replay(message=message)


def test_a_simulated_conversion_announces_nothing(
    world: Any, ann: Contact, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        conversion_record(Enrollment(tenant=world.acme, contact=ann), {}, "", timezone.now())
    assert callbacks == []


def test_deleting_an_endpoint_deletes_its_log(
    world: Any, ann: Contact, endpoint_factory: Any
) -> None:
    endpoint = endpoint_factory(event_types=["message.bounced"])
    events_record(tenant=world.acme, facts=[Fact(ann.pk, "Email Bounced", "b", "m", {})])
    services.endpoint_delete(endpoint=endpoint)
    assert not WebhookEndpoint.objects.exists() and not WebhookMessage.objects.exists()
