"""Materialised membership: entering and leaving as contacts change, recorded exactly once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from audience.models import Contact, Event
from audience.segment_spec import parse_call
from audience.services import calls_record
from segments import services
from segments.models import Segment, SegmentMembership
from segments.services import SegmentError
from segments.signals import segment_membership_changed

pytestmark = pytest.mark.django_db


def track(tenant: Any, anonymous_id: str, event: str, n: str, **properties: Any) -> None:
    call = parse_call(
        {
            "type": "track",
            "event": event,
            "anonymousId": anonymous_id,
            "messageId": n,
            "properties": properties,
        }
    )
    calls_record(tenant=tenant, calls=[call])


def buyers(times: int = 1) -> dict[str, Any]:
    return {
        "type": "group",
        "match": "all",
        "children": [
            {
                "type": "event",
                "event": "Order Completed",
                "count": {"operator": "at_least", "value": times},
            },
        ],
    }


def members(segment: Segment) -> set[str]:
    ids = SegmentMembership.objects.filter(segment=segment).values_list("contact_id", flat=True)
    return set(Contact.objects.filter(pk__in=ids).values_list("identities__value", flat=True))


def test_it_computes_members_when_a_segment_is_created(world) -> None:
    track(world.acme, "ann", "Order Completed", "o1", total=20)
    track(world.acme, "bob", "Product Viewed", "v1")
    track(world.globex, "ann", "Order Completed", "g1", total=5)  # another tenant's Ann
    segment = services.segment_create(tenant=world.acme, name="Buyers", rules=buyers())
    assert members(segment) == {"ann"}
    assert segment.member_count == 1 and segment.refreshed_at is not None
    entered = Event.objects.filter(tenant=world.acme, name="Segment Entered")
    assert entered.count() == 1
    assert entered.get().properties == {"segment_id": str(segment.public_id), "segment": "Buyers"}


def test_it_records_each_entry_and_exit_exactly_once(world) -> None:
    segment = services.segment_create(tenant=world.acme, name="Repeat", rules=buyers(2))
    changes: list[tuple[list[int], list[int]]] = []

    def spy(
        sender: object, segment: Segment, entered: list[int], exited: list[int], **_: Any
    ) -> None:
        changes.append((entered, exited))

    segment_membership_changed.connect(spy)
    try:
        track(world.acme, "ann", "Order Completed", "o1")
        track(world.acme, "ann", "Order Completed", "o2")
        ann = Contact.objects.get(tenant=world.acme)
        for _ in range(3):  # a refresh that runs again (a retried task) changes nothing
            services.segment_memberships_refresh_contacts(tenant=world.acme, contact_ids=[ann.pk])
        assert members(segment) == {"ann"}
        segment = services.segment_update(
            tenant=world.acme, segment=segment, name="Repeat", rules=buyers(3)
        )
        services.segment_membership_refresh(segment=segment)
    finally:
        segment_membership_changed.disconnect(spy)
    assert members(segment) == set()
    names = list(
        Event.objects.filter(contact=ann, name__startswith="Segment")
        .order_by("pk")
        .values_list("name", flat=True)
    )
    assert names == ["Segment Entered", "Segment Exited"]


def test_it_refuses_bad_rules_and_saves_nothing(world) -> None:
    bad = {
        "type": "group",
        "match": "all",
        "children": [
            {"type": "attribute", "field": "email", "operator": "equals", "value": "a@b.c"},
            {"type": "event", "event": "", "count": {"operator": "at_least", "value": 1}},
        ],
    }
    with pytest.raises(SegmentError, match="Condition 2: event must be text"):
        services.segment_create(tenant=world.acme, name="Bad", rules=bad)
    assert not Segment.objects.exists()


def test_it_refuses_a_segment_that_includes_itself(world) -> None:
    a = services.segment_create(tenant=world.acme, name="A", rules=buyers())
    b = services.segment_create(
        tenant=world.acme,
        name="B",
        rules={
            "type": "group",
            "match": "all",
            "children": [{"type": "segment", "segment": str(a.public_id)}],
        },
    )
    loop = {
        "type": "group",
        "match": "all",
        "children": [{"type": "segment", "segment": str(b.public_id)}],
    }
    with pytest.raises(SegmentError, match="cannot include itself"):
        services.segment_update(tenant=world.acme, segment=a, name="A", rules=loop)
    other = services.segment_create(tenant=world.globex, name="G", rules=buyers())
    foreign = {
        "type": "group",
        "match": "all",
        "children": [{"type": "segment", "segment": str(other.public_id)}],
    }
    with pytest.raises(SegmentError, match="does not exist"):
        services.segment_create(tenant=world.acme, name="C", rules=foreign)


def test_it_follows_rolling_windows_on_the_scheduled_refresh(world) -> None:
    track(world.acme, "ann", "Product Viewed", "v1")
    rules = {
        "type": "group",
        "match": "all",
        "children": [{"type": "event", "event": "Product Viewed", "window": {"last_days": 7}}],
    }
    segment = services.segment_create(tenant=world.acme, name="Recent", rules=rules)
    assert segment.time_relative and members(segment) == {"ann"}
    services.segment_membership_refresh(segment=segment, now=datetime.now(UTC) + timedelta(days=8))
    assert members(segment) == set()


def test_it_updates_membership_right_after_an_ingested_event(
    world, eager_tasks, django_capture_on_commit_callbacks
) -> None:
    segment = services.segment_create(tenant=world.acme, name="Buyers", rules=buyers())
    with django_capture_on_commit_callbacks(execute=True):
        track(world.acme, "ann", "Order Completed", "o1", total=20)
    assert members(segment) == {"ann"}
    assert Segment.objects.get(pk=segment.pk).member_count == 1


def test_it_updates_membership_after_a_profile_edit(
    world, eager_tasks, django_capture_on_commit_callbacks
) -> None:
    from audience.services import contact_upsert

    rules = {
        "type": "group",
        "match": "all",
        "children": [
            {"type": "attribute", "field": "attributes.plan", "operator": "equals", "value": "pro"}
        ],
    }
    segment = services.segment_create(tenant=world.acme, name="Pro", rules=rules)
    with django_capture_on_commit_callbacks(execute=True):
        contact, _ = contact_upsert(
            tenant=world.acme, user_id="u1", fields={"attributes": {"plan": "pro"}}, source="api"
        )
    assert set(
        SegmentMembership.objects.filter(segment=segment).values_list("contact_id", flat=True)
    ) == {contact.pk}
    with django_capture_on_commit_callbacks(execute=True):
        contact_upsert(
            tenant=world.acme, user_id="u1", fields={"attributes": {"plan": "free"}}, source="api"
        )
    assert not SegmentMembership.objects.filter(segment=segment).exists()
    assert list(
        Event.objects.filter(contact=contact, name__startswith="Segment")
        .order_by("pk")
        .values_list("name", flat=True)
    ) == ["Segment Entered", "Segment Exited"]


def test_it_reuses_a_segments_sql_for_other_contacts_correctly(world) -> None:
    # The second refresh reuses the SQL compiled for the first (same segment, one contact, same
    # minute) and must evaluate its own contact, not the first one again.
    segment = services.segment_create(tenant=world.acme, name="Buyers", rules=buyers())
    track(world.acme, "ann", "Order Completed", "o1")
    track(world.acme, "bob", "Product Viewed", "v1")
    ann, bob = (
        Contact.objects.get(tenant=world.acme, identities__value=name) for name in ("ann", "bob")
    )
    services.segment_memberships_refresh_contacts(tenant=world.acme, contact_ids=[ann.pk])
    services.segment_memberships_refresh_contacts(tenant=world.acme, contact_ids=[bob.pk])
    assert members(segment) == {"ann"}
    track(world.acme, "bob", "Order Completed", "o2")
    services.segment_memberships_refresh_contacts(tenant=world.acme, contact_ids=[bob.pk])
    assert members(segment) == {"ann", "bob"}


def test_it_refreshes_a_segment_that_includes_one_whose_members_changed(world) -> None:
    inner = services.segment_create(tenant=world.acme, name="Buyers", rules=buyers())
    outer = services.segment_create(
        tenant=world.acme,
        name="Buyers, via the other segment",
        rules={
            "type": "group",
            "match": "all",
            "children": [{"type": "segment", "segment": str(inner.public_id)}],
        },
    )
    track(world.acme, "ann", "Order Completed", "o1")
    ann = Contact.objects.get(tenant=world.acme)
    assert (
        services.segment_memberships_refresh_contacts(tenant=world.acme, contact_ids=[ann.pk]) == 2
    )
    assert members(inner) == members(outer) == {"ann"}
