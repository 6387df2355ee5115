"""The segments admin: the same checks and services as the app, scoped to the operator's tenants."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import Permission

from audience.models import Contact, Event, Order
from segments import services
from segments.models import Segment, SegmentMembership
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def group(*children: dict[str, Any]) -> dict[str, Any]:
    return {"type": "group", "match": "all", "children": list(children)}


def ordered(times: int = 1) -> dict[str, Any]:
    return {
        "type": "event",
        "event": "Order Completed",
        "count": {"operator": "at_least", "value": times},
    }


def order(contact: Contact, n: int) -> None:
    """An order stored directly, as ingestion stores it (the event and its order-ledger row),
    but with no refresh after it (as if the queue were behind)."""
    fields = {
        "tenant_id": contact.tenant_id,
        "contact": contact,
        "occurred_at": "2026-05-01T10:00:00Z",
        "message_id": f"{contact.user_id}-{n}",
    }
    Event.objects.create(name="Order Completed", **fields)
    Order.objects.create(**fields)


@pytest.fixture
def shop(world):  # type: ignore[no-untyped-def]
    ann = Contact.objects.create(tenant=world.acme, user_id="ann", email="ann@example.com")
    order(ann, 1)
    gus = Contact.objects.create(tenant=world.globex, user_id="gus", email="gus@example.com")
    order(gus, 1)
    return {
        "ann": ann,
        "gus": gus,
        "acme": services.segment_create(
            tenant=world.acme, name="Acme buyers", rules=group(ordered())
        ),
        "globex": services.segment_create(
            tenant=world.globex, name="Globex buyers", rules=group(ordered())
        ),
    }


@pytest.fixture
def superuser(login):  # type: ignore[no-untyped-def]
    return login(UserFactory(is_staff=True, is_superuser=True))


@pytest.fixture
def staff_alice(login, world):  # type: ignore[no-untyped-def]
    world.alice.is_staff = True
    world.alice.save()
    world.alice.user_permissions.set(Permission.objects.filter(content_type__app_label="segments"))
    return login(world.alice)


def add_form(tenant: Any, name: str, rules: object) -> dict[str, Any]:
    return {"tenant": tenant.pk, "name": name, "description": "", "rules": json.dumps(rules)}


def change_form(name: str, rules: object) -> dict[str, Any]:
    return {"name": name, "description": "", "rules": json.dumps(rules)}


def test_it_adds_a_segment_through_the_service_so_members_follow(superuser, world, shop) -> None:
    response = superuser.post(
        "/admin/segments/segment/add/", add_form(world.acme, "Admin buyers", group(ordered()))
    )
    assert response.status_code == 302
    segment = Segment.objects.get(name="Admin buyers")
    assert segment.tenant == world.acme and segment.member_count == 1
    assert segment.refreshed_at is not None
    assert segment.rules["children"][0]["where"] == []  # saved normalised
    assert SegmentMembership.objects.filter(segment=segment, contact=shop["ann"]).exists()
    page = superuser.get(f"/admin/segments/segment/{segment.pk}/change/").content.decode()
    assert "did “Order Completed”" in page  # the summary
    assert f"/admin/segments/segmentmembership/?segment={segment.pk}" in page


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        (
            group(ordered(), {"type": "event", "event": "", "did": True}),
            "Condition 2: event must be text of 1 to 200 characters.",
        ),
        (group({"type": "rfm"}), "Condition 1: choose quintiles for recency, frequency or"),
        (group({"type": "wishes"}), "Condition 1: “wishes” is not a kind of condition"),
    ],
)
def test_it_refuses_an_invalid_tree_naming_the_condition_and_saves_nothing(
    superuser, world, shop, rules, message
) -> None:
    response = superuser.post("/admin/segments/segment/add/", add_form(world.acme, "Broken", rules))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Segment.objects.filter(name="Broken").exists()


def test_it_refuses_a_reference_to_another_tenants_segment(superuser, world, shop) -> None:
    rules = group({"type": "segment", "segment": str(shop["globex"].public_id)})
    response = superuser.post("/admin/segments/segment/add/", add_form(world.acme, "Sneaky", rules))
    assert "refers to a segment that does not exist" in response.content.decode()
    assert not Segment.objects.filter(name="Sneaky").exists()


def test_it_refuses_a_duplicate_name_when_adding(superuser, world, shop) -> None:
    response = superuser.post(
        "/admin/segments/segment/add/", add_form(world.acme, "Acme buyers", group(ordered(2)))
    )
    assert response.status_code == 200
    assert "already exists" in response.content.decode()
    assert Segment.objects.filter(tenant=world.acme).count() == 1


def test_it_changes_a_segment_through_the_service(superuser, world, shop) -> None:
    segment = shop["acme"]
    path = f"/admin/segments/segment/{segment.pk}/change/"
    response = superuser.post(path, change_form("Repeat buyers", group(ordered(2))))
    assert response.status_code == 302
    segment.refresh_from_db()
    assert (segment.name, segment.member_count) == ("Repeat buyers", 0)
    assert not SegmentMembership.objects.filter(segment=segment).exists()
    assert Event.objects.filter(contact=shop["ann"], name="Segment Exited").count() == 1


def test_it_refuses_a_bad_change_and_keeps_the_segment(superuser, world, shop) -> None:
    segment = shop["acme"]
    services.segment_create(tenant=world.acme, name="Other", rules=group(ordered(3)))
    user = services.segment_create(
        tenant=world.acme,
        name="Uses acme buyers",
        rules=group({"type": "segment", "segment": str(segment.public_id)}),
    )
    path = f"/admin/segments/segment/{segment.pk}/change/"
    loop = group({"type": "segment", "segment": str(user.public_id)})
    page = superuser.post(path, change_form("Acme buyers", loop)).content.decode()
    assert "A segment cannot include itself" in page
    page = superuser.post(path, change_form("Other", group(ordered()))).content.decode()
    assert "A segment with this name exists already." in page
    segment.refresh_from_db()
    assert (segment.name, segment.rules["children"][0]["type"]) == ("Acme buyers", "event")


def test_it_refreshes_membership_now(superuser, world, shop) -> None:
    repeat = services.segment_create(tenant=world.acme, name="Repeat", rules=group(ordered(2)))
    order(shop["ann"], 2)  # not refreshed yet
    response = superuser.post(
        "/admin/segments/segment/",
        {"action": "refresh_membership", "_selected_action": [repeat.pk]},
        follow=True,
    )
    assert "Refreshed 1 segment(s): 1 contact(s) entered, 0 left." in response.content.decode()
    repeat.refresh_from_db()
    assert repeat.member_count == 1


def test_it_refuses_to_delete_a_segment_others_use(superuser, world, shop) -> None:
    used = shop["acme"]
    user = services.segment_create(
        tenant=world.acme,
        name="Uses acme buyers",
        rules=group({"type": "segment", "segment": str(used.public_id)}),
    )
    path = f"/admin/segments/segment/{used.pk}/delete/"
    page = superuser.post(path, {"post": "yes"}).content.decode()
    assert "Uses acme buyers (uses Acme buyers)" in page
    assert Segment.objects.filter(pk=used.pk).exists()
    # Both at once is fine: the one that uses the other goes first.
    superuser.post(
        "/admin/segments/segment/",
        {"action": "delete_selected", "_selected_action": [used.pk, user.pk], "post": "yes"},
    )
    assert not Segment.objects.filter(tenant=world.acme).exists()
    assert Segment.objects.filter(tenant=world.globex).exists()


def test_it_shows_superusers_every_tenants_segments(superuser, shop) -> None:
    page = superuser.get("/admin/segments/segment/").content.decode()
    assert "Acme buyers" in page and "Globex buyers" in page


@pytest.mark.parametrize(
    ("path", "own", "other"),
    [
        ("/admin/segments/segment/", "Acme buyers", "Globex buyers"),
        ("/admin/segments/segmentmembership/", "ann@example.com", "gus@example.com"),
        ("/admin/segments/segment/add/", ">Acme<", ">Globex<"),  # the tenant choices
    ],
)
def test_it_shows_staff_only_their_own_tenants(staff_alice, shop, path, own, other) -> None:
    page = staff_alice.get(path).content.decode()
    assert own in page
    assert other not in page


def test_it_hides_other_tenants_segments_from_staff_by_id(staff_alice, world, shop) -> None:
    globex = shop["globex"]
    assert staff_alice.get(f"/admin/segments/segment/{globex.pk}/change/").status_code == 404
    assert staff_alice.get(f"/admin/segments/segment/{shop['acme'].pk}/change/").status_code == 200
    members = staff_alice.get(
        f"/admin/segments/segmentmembership/?segment={globex.pk}"
    ).content.decode()
    assert "gus@example.com" not in members
    # Nor can staff act on them or file a segment under another tenant.
    staff_alice.post(
        "/admin/segments/segment/",
        {"action": "delete_selected", "_selected_action": [globex.pk], "post": "yes"},
    )
    assert Segment.objects.filter(pk=globex.pk).exists()
    response = staff_alice.post(
        "/admin/segments/segment/add/", add_form(world.globex, "Planted", group(ordered()))
    )
    assert response.status_code == 200
    assert not Segment.objects.filter(name="Planted").exists()
