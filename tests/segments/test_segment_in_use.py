"""Deleting a segment that a campaign or a journey uses is refused, naming them (segments.registry
SEGMENT_USERS, registered by campaigns and journeys), in the UI and the API: never a 500."""

from __future__ import annotations

from typing import Any

import pytest

from campaigns.models import Campaign, CampaignSegment
from journeys.models import Journey, Node
from segments import services
from segments.models import Segment
from tests.journeys.conftest import journey_build

pytestmark = pytest.mark.django_db

RULES = {
    "type": "group",
    "match": "all",
    "children": [
        {"type": "event", "event": "Order Completed", "count": {"operator": "at_least", "value": 1}}
    ],
}


def segment(tenant: Any, name: str) -> Segment:
    return services.segment_create(tenant=tenant, name=name, rules=RULES)


def campaign_to(seg: Segment, name: str, *, exclude: bool = False, **fields: Any) -> Campaign:
    campaign = Campaign.objects.create(tenant=seg.tenant, name=name, **fields)
    CampaignSegment.objects.create(
        tenant=seg.tenant, campaign=campaign, segment=seg, exclude=exclude
    )
    return campaign


def journey_on(seg: Segment, name: str, *, status: str = "live") -> Journey:
    """A journey started by entering `seg`, its trigger step labelled “Entered”."""
    journey = journey_build(
        seg.tenant,
        {
            "t": ("trigger_segment", {"segment": str(seg.public_id), "direction": "entered"}),
            "e": ("exit", {}),
        },
        "t.next>e",
        name=name,
        status=status,
    )
    Node.objects.filter(version__journey=journey, key="t").update(label="Entered")
    return journey


def journey_branching_on(seg: Segment, name: str) -> Journey:
    """A journey with a condition branch (step “b”) on membership of `seg`, under a group."""
    rules = {
        "type": "group",
        "match": "any",
        "negate": False,
        "children": [
            {
                "type": "group",
                "match": "all",
                "negate": False,
                "children": [{"type": "segment", "segment": str(seg.public_id), "member": False}],
            }
        ],
    }
    return journey_build(
        seg.tenant,
        {
            "t": ("trigger_event", {"event": "Signed Up"}),
            "b": ("branch_condition", {"rules": rules}),
            "e": ("exit", {}),
        },
        "t.next>b b.yes>e b.no>e",
        name=name,
    )


def test_a_finished_campaign_keeps_its_segment_from_being_deleted(world) -> None:
    used = segment(world.acme, "Buyers")
    campaign_to(used, "Spring sale", state=Campaign.State.SENT)
    campaign_to(used, "Not buyers", exclude=True, state=Campaign.State.CANCELLED)
    with pytest.raises(services.SegmentInUse) as refused:
        services.segment_delete(tenant=world.acme, segment=used)
    assert refused.value.message == (
        "This segment is used by campaign “Not buyers”; campaign “Spring sale”."
    )
    assert Segment.objects.filter(pk=used.pk).exists()


def test_the_ui_refuses_naming_the_campaign_instead_of_failing(login, world) -> None:
    used = segment(world.acme, "Buyers")
    campaign_to(used, "Spring sale", state=Campaign.State.SENT)
    client = login(world.dave)
    response = client.post(f"/t/acme/segments/{used.public_id}/delete/", follow=True)
    assert response.status_code == 200
    page = response.content.decode()
    assert "“Buyers” was not deleted." in page
    assert "This segment is used by campaign “Spring sale”." in page
    assert Segment.objects.filter(pk=used.pk).exists()


def test_the_api_answers_409_in_use_naming_the_campaign(api, world) -> None:
    used = segment(world.acme, "Buyers")
    campaign_to(used, "Spring sale", state=Campaign.State.SENT)
    refused = api("delete", f"segments/{used.public_id}/")
    assert refused.status_code == 409
    assert refused.json()["error"] == {
        "code": "in_use",
        "message": "This segment is used by campaign “Spring sale”.",
    }
    assert Segment.objects.filter(pk=used.pk).exists()


def test_journeys_using_the_segment_are_named_too(api, world) -> None:
    used = segment(world.acme, "Buyers")
    journey_on(used, "Welcome")
    journey_branching_on(used, "Follow-up")
    journey_on(used, "Old welcome", status=Journey.Status.ARCHIVED)  # nobody travels it
    other = segment(world.acme, "Others")
    journey_on(other, "Elsewhere")
    journey_branching_on(other, "Elsewhere too")
    services.segment_create(
        tenant=world.acme,
        name="Loyal",
        rules={
            "type": "group",
            "match": "all",
            "children": [{"type": "segment", "segment": str(used.public_id)}],
        },
    )
    refused = api("delete", f"segments/{used.public_id}/")
    assert refused.status_code == 409
    assert refused.json()["error"]["message"] == (
        "This segment is used by journey “Follow-up” (step “b”);"
        " journey “Welcome” (step “Entered”); segment “Loyal”."
    )
    assert Segment.objects.filter(pk=used.pk).exists()


def test_another_teams_use_does_not_count(world) -> None:
    ours = segment(world.acme, "Buyers")
    theirs = segment(world.globex, "Buyers")
    campaign_to(theirs, "Spring sale")
    journey_on(theirs, "Welcome")
    assert services.segment_users(tenant=world.acme, segment=ours) == []
    services.segment_delete(tenant=world.acme, segment=ours)
    assert not Segment.objects.filter(pk=ours.pk).exists()


def test_an_unused_segment_still_deletes(api, login, world) -> None:
    first, second = segment(world.acme, "First"), segment(world.acme, "Second")
    campaign_to(segment(world.acme, "Used"), "Spring sale")
    assert api("delete", f"segments/{first.public_id}/").status_code == 204
    response = login(world.dave).post(f"/t/acme/segments/{second.public_id}/delete/", follow=True)
    assert "Deleted “Second”" in response.content.decode()
    assert list(Segment.objects.filter(tenant=world.acme).values_list("name", flat=True)) == [
        "Used"
    ]


def test_a_campaign_that_takes_the_segment_after_the_check_still_stops_it(
    monkeypatch, world
) -> None:
    """The last resort: the foreign key's PROTECT, read after the segment's lock."""
    used = segment(world.acme, "Buyers")
    campaign_to(used, "Spring sale")
    monkeypatch.setattr(services, "segment_users", lambda **kw: [])  # the check saw nothing
    with pytest.raises(services.SegmentInUse, match="used by a campaign"):
        services.segment_delete(tenant=world.acme, segment=used)
    assert Segment.objects.filter(pk=used.pk).exists()
