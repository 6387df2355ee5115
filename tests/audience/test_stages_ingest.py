"""Stages kept current by ingestion (/v1/track, /v1/identify, with the tasks their commits
queue), the counts the journey map shows, and erasure."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import connection

from audience import services
from audience.inbox import inbox_drain
from audience.models import Contact, Event, LifecycleStage
from audience.selectors import STAGE_CHANGED, lifecycle_stage_counts
from audience.signals import RecordedEvent
from audience.stages import on_events_recorded, stages_refresh
from tenants import services as tenant_services
from tests.factories import basic

pytestmark = pytest.mark.django_db
S = LifecycleStage


@pytest.fixture
def send(client, world, eager_tasks, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    """POST to /v1/<path> as an SDK does; what the commit queues (the ingest worker's drain,
    then the stages' recomputation) runs in-process once the request is done."""
    key = tenant_services.api_key_create(tenant=world.acme, kind="write", name="site")[1]

    def _send(path: str, body: dict[str, Any]):  # type: ignore[no-untyped-def]
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                f"/v1/{path}",
                data=json.dumps(body),
                content_type="application/json",
                HTTP_AUTHORIZATION=basic(key),
            )
            inbox_drain()  # what the ingest worker does once the request is accepted
        assert response.status_code == 200
        return response

    return _send


def moves(contact: Contact) -> list[tuple[str, str, str]]:
    events = Event.objects.filter(tenant=contact.tenant, contact=contact, name=STAGE_CHANGED)
    return [
        (p["from"], p["to"], p["reason"])
        for p in events.order_by("pk").values_list("properties", flat=True)
    ]


def test_ingestion_moves_a_visitor_through_the_stages(send, world) -> None:
    send("track", {"event": "Product Viewed", "anonymousId": "a-1", "messageId": "m1"})
    visitor = Contact.objects.get()
    assert visitor.lifecycle_stage == S.AWARENESS and moves(visitor) == []

    send("identify", {"userId": "u-1", "anonymousId": "a-1", "messageId": "m2"})
    visitor.refresh_from_db()
    assert visitor.lifecycle_stage == S.ACQUISITION
    send("track", {"event": "Order Completed", "userId": "u-1", "messageId": "m3"})
    send("track", {"event": "Product Viewed", "userId": "u-1", "messageId": "m4"})  # no change
    send("track", {"event": "Product Reviewed", "userId": "u-1", "messageId": "m5"})
    send(
        "track",
        {"event": "NPS Submitted", "userId": "u-1", "messageId": "m6", "properties": {"score": 3}},
    )  # still an advocate: the review counts
    visitor.refresh_from_db()
    assert visitor.lifecycle_stage == S.ADVOCACY
    assert moves(visitor) == [
        ("awareness", "acquisition", "identified"),
        ("acquisition", "onboarding", "first_order"),
        ("onboarding", "advocacy", "advocate"),
    ]
    stage_event = Event.objects.filter(name=STAGE_CHANGED).order_by("pk").first()
    assert stage_event is not None and stage_event.source == "lifecycle"
    # The same message again stores nothing, and moves nothing.
    send("track", {"event": "Product Reviewed", "userId": "u-1", "messageId": "m5"})
    assert len(moves(visitor)) == 3
    # Another team's contacts are not touched.
    assert not Event.objects.filter(tenant=world.globex).exists()


def test_a_profile_edit_through_the_api_moves_the_stage(
    world, api, eager_tasks, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = api("post", "contacts/", {"email": "new@example.com"})
    assert response.status_code in (200, 201)
    contact = Contact.objects.get(tenant=world.acme)
    assert contact.lifecycle_stage == S.ACQUISITION
    assert moves(contact) == [("awareness", "acquisition", "identified")]
    # The stage itself cannot be set: it is computed.
    refused = api("post", "contacts/", {"email": "new@example.com", "lifecycle_stage": "advocacy"})
    assert refused.status_code == 400
    assert "computed" in json.dumps(refused.json())


def test_its_own_stage_events_queue_no_recomputation(world, monkeypatch) -> None:
    queued: list[list[int]] = []
    monkeypatch.setattr(
        "audience.tasks.lifecycle_stages_refresh_contacts.delay",
        lambda tenant_id, ids: queued.append(ids),
    )
    events = [RecordedEvent(1, 7, STAGE_CHANGED), RecordedEvent(2, 8, STAGE_CHANGED)]
    on_events_recorded(None, tenant=world.acme, events=events)
    assert queued == []
    on_events_recorded(None, tenant=world.acme, events=[*events, RecordedEvent(3, 8, "Clicked")])
    assert queued == [[8]]


# --- the journey map's counts -----------------------------------------------------------------


def group_by(tenant: Any) -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT lifecycle_stage, COUNT(*) FROM audience_contact WHERE tenant_id = %s"
            " GROUP BY lifecycle_stage",
            [tenant.pk],
        )
        return dict(cursor.fetchall())


def test_the_counts_equal_a_direct_group_by_with_every_stage(
    world, django_assert_num_queries
) -> None:
    assert lifecycle_stage_counts(tenant=world.acme) == dict.fromkeys(S.values, 0)
    layout = {S.AWARENESS: 5, S.ACQUISITION: 3, S.ENGAGEMENT: 2, S.ADVOCACY: 1}
    for stage, n in layout.items():
        Contact.objects.bulk_create(
            Contact(tenant=world.acme, lifecycle_stage=stage) for _ in range(n)
        )
    Contact.objects.bulk_create(
        Contact(tenant=world.globex, lifecycle_stage=S.RETENTION) for _ in range(4)
    )
    with django_assert_num_queries(1):
        counts = lifecycle_stage_counts(tenant=world.acme)
    assert list(counts) == S.values  # every stage, in journey order
    assert {k: v for k, v in counts.items() if v} == group_by(world.acme)
    assert counts[S.ONBOARDING] == counts[S.RETENTION] == 0
    assert (
        lifecycle_stage_counts(tenant=world.globex)[S.RETENTION]
        == 4
        == sum(lifecycle_stage_counts(tenant=world.globex).values())
    )
    # Recomputed from behaviour, still equal.
    stages_refresh(tenant=world.acme)
    counts = lifecycle_stage_counts(tenant=world.acme)
    assert {k: v for k, v in counts.items() if v} == group_by(world.acme) == {S.AWARENESS: 11}


# --- erasure --------------------------------------------------------------------------------


def test_erasing_a_contact_takes_its_stage_events_and_touches_no_one_else(world) -> None:
    ann = Contact.objects.create(tenant=world.acme, email="ann@example.com")
    bob = Contact.objects.create(tenant=world.acme, email="bob@example.com")
    stages_refresh(tenant=world.acme)
    assert Event.objects.filter(name=STAGE_CHANGED).count() == 2
    deleted = services.contact_erase(tenant=world.acme, contact=ann)
    assert deleted["contact"] == 1 and deleted["event"] == 1
    assert list(Event.objects.filter(name=STAGE_CHANGED).values_list("contact_id", flat=True)) == [
        bob.pk
    ]
    assert stages_refresh(tenant=world.acme) == []  # nothing to redo
    assert lifecycle_stage_counts(tenant=world.acme)[S.ACQUISITION] == 1
