"""The segments REST API: always within the key's tenant, errors naming the bad field."""

from __future__ import annotations

import json
from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator

from audience.models import Contact
from audience.segment_spec import parse_call
from audience.services import calls_record
from segments import services
from segments.models import Segment, SegmentMembership
from tests.statements import rls_statements

pytestmark = pytest.mark.django_db


def ingest(tenant: Any, *raw: dict[str, Any]) -> None:
    calls_record(tenant=tenant, calls=[parse_call(m) for m in raw])


def person(tenant: Any, user_id: str, *, orders: int = 0, first_name: str = "") -> Contact:
    traits = {"email": f"{user_id}@example.com", "firstName": first_name or user_id.title()}
    ingest(
        tenant,
        {"type": "identify", "userId": user_id, "traits": traits, "messageId": f"{user_id}-i"},
        *(
            {
                "type": "track",
                "userId": user_id,
                "event": "Order Completed",
                "messageId": f"{user_id}-o{n}",
                "properties": {"total": 50},
            }
            for n in range(orders)
        ),
    )
    return Contact.objects.get(tenant=tenant, user_id=user_id)


def group(*children: dict[str, Any], match: str = "all") -> dict[str, Any]:
    return {"type": "group", "match": match, "children": list(children)}


def ordered(times: int = 1) -> dict[str, Any]:
    return {
        "type": "event",
        "event": "Order Completed",
        "count": {"operator": "at_least", "value": times},
    }


def in_segment(segment: Segment) -> dict[str, Any]:
    return {"type": "segment", "segment": str(segment.public_id)}


@pytest.fixture
def shop(world):  # type: ignore[no-untyped-def]
    """acme: ann (2 orders), ben (1 order), cat (none); globex: its own ann and a segment."""
    contacts = {
        "ann": person(world.acme, "ann", orders=2),
        "ben": person(world.acme, "ben", orders=1),
        "cat": person(world.acme, "cat"),
        "globex_ann": person(world.globex, "ann", orders=3),
    }
    contacts["globex_segment"] = services.segment_create(
        tenant=world.globex, name="Globex secret buyers", rules=group(ordered())
    )
    return contacts


def error_fields(response: Any) -> dict[str, list[str]]:
    assert response.status_code == 400, response.content
    body = response.json()["error"]
    assert body["code"] == "invalid"
    return body["fields"]


# --- create and list ------------------------------------------------------------------------


def test_it_creates_a_segment_with_its_members_and_lists_it(api, world, shop) -> None:
    created = api(
        "post",
        "segments/",
        {"name": " Buyers ", "description": "Ordered once", "rules": group(ordered())},
    )
    assert created.status_code == 201
    body = created.json()
    segment = Segment.objects.get(tenant=world.acme)
    assert body["id"] == str(segment.public_id)
    assert (body["name"], body["description"], body["member_count"]) == (
        "Buyers",
        "Ordered once",
        2,
    )
    assert body["summary"] == "did “Order Completed”"
    assert body["rules"]["children"][0]["count"] == {"operator": "at_least", "value": 1}
    assert body["refreshed_at"] is not None

    listed = api("get", "segments/").json()
    assert [s["name"] for s in listed["results"]] == ["Buyers"]
    row = listed["results"][0]
    for key in ("id", "name", "description", "member_count", "refreshed_at", "rules", "summary"):
        assert row[key] == body[key]


def test_it_lists_segments_newest_first_in_pages_with_a_fixed_number_of_queries(
    api, world, django_assert_num_queries
) -> None:
    first = services.segment_create(tenant=world.acme, name="First", rules=group(ordered()))
    for n in range(4):
        services.segment_create(
            tenant=world.acme, name=f"Uses first {n}", rules=group(in_segment(first))
        )
    # Key lookup + key's last use, the page, the segment names for the summaries, + the scope.
    with django_assert_num_queries(4 + rls_statements(1)):
        page = api("get", "segments/?limit=3").json()
    assert [s["name"] for s in page["results"]] == ["Uses first 3", "Uses first 2", "Uses first 1"]
    assert page["results"][0]["summary"] == "is in “First”"
    rest = api("get", page["next"].split("/api/v1/")[1]).json()
    assert [s["name"] for s in rest["results"]] == ["Uses first 0", "First"]
    assert rest["next"] is None


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        (
            {
                "name": "Bad",
                "rules": group(
                    {"type": "reachable", "channel": "email"},
                    {"type": "event", "event": "", "did": True},
                ),
            },
            "rules",
            "Condition 2: event must be text of 1 to 200 characters.",
        ),
        (
            {"name": "Bad", "rules": group({"type": "rfm", "recency": [6]})},
            "rules",
            "Condition 1: recency must list quintiles from 1 to 5.",
        ),
        (
            {"name": "Bad", "rules": {"type": "event", "event": "x"}},
            "rules",
            "The rules must start with a group (all / any).",
        ),
        ({"name": "   ", "rules": group(ordered())}, "name", "Give the segment a name."),
        ({"name": "Taken", "rules": group(ordered())}, "name", "A segment with this name exists"),
        ({"name": "No rules"}, "rules", "This field is required."),
        ({"rules": group(ordered())}, "name", "This field is required."),
    ],
)
def test_it_refuses_a_bad_segment_naming_the_field_and_saves_nothing(
    api, world, body, field, message
) -> None:
    services.segment_create(tenant=world.acme, name="Taken", rules=group(ordered()))
    fields = error_fields(api("post", "segments/", body))
    assert list(fields) == [field]
    assert fields[field][0].startswith(message)
    assert Segment.objects.filter(tenant=world.acme).count() == 1


def test_it_refuses_rules_that_refer_to_another_tenants_segment(api, world, shop) -> None:
    body = {"name": "Sneaky", "rules": group(in_segment(shop["globex_segment"]))}
    fields = error_fields(api("post", "segments/", body))
    assert "does not exist" in fields["rules"][0]
    assert "Globex secret buyers" not in json.dumps(fields)
    assert not Segment.objects.filter(tenant=world.acme).exists()


# --- one segment ----------------------------------------------------------------------------


def test_it_shows_replaces_and_patches_a_segment(api, world, shop) -> None:
    segment = services.segment_create(
        tenant=world.acme, name="Buyers", rules=group(ordered()), description="Kept"
    )
    shown = api("get", f"segments/{segment.public_id}/").json()
    assert (shown["name"], shown["member_count"]) == ("Buyers", 2)

    renamed = api("patch", f"segments/{segment.public_id}/", {"name": "Customers"})
    assert renamed.status_code == 200
    assert (renamed.json()["name"], renamed.json()["description"]) == ("Customers", "Kept")
    assert renamed.json()["rules"] == shown["rules"]

    replaced = api(
        "put",
        f"segments/{segment.public_id}/",
        {"name": "Repeat buyers", "rules": group(ordered(2))},
    )
    assert replaced.status_code == 200
    body = replaced.json()
    assert (body["name"], body["description"], body["member_count"]) == ("Repeat buyers", "", 1)
    assert body["summary"] == "did “Order Completed” at least 2 times"
    ann = shop["ann"]
    assert list(
        SegmentMembership.objects.filter(segment=segment).values_list("contact", flat=True)
    ) == [ann.pk]


def test_it_refuses_a_bad_change_and_keeps_the_segment(api, world, shop) -> None:
    segment = services.segment_create(tenant=world.acme, name="Buyers", rules=group(ordered()))
    services.segment_create(tenant=world.acme, name="Other", rules=group(ordered(2)))
    uses = services.segment_create(
        tenant=world.acme, name="Uses buyers", rules=group(in_segment(segment))
    )
    path = f"segments/{segment.public_id}/"
    assert error_fields(api("patch", path, {"name": "Other"}))["name"] == [
        "A segment with this name exists already."
    ]
    loop = {"rules": group(in_segment(uses))}
    assert "cannot include itself" in error_fields(api("patch", path, loop))["rules"][0]
    bad = {"rules": group({"type": "metric", "metric": "orders_count", "operator": "gt"})}
    assert error_fields(api("patch", path, bad))["rules"] == [
        "Condition 1: value must be a number."
    ]
    assert "rules" in error_fields(api("put", path, {"name": "Only a name"}))
    segment.refresh_from_db()
    assert (segment.name, segment.rules["children"][0]["count"]["value"]) == ("Buyers", 1)


def test_it_deletes_a_segment_unless_others_use_it(api, world, shop) -> None:
    used = services.segment_create(tenant=world.acme, name="Buyers", rules=group(ordered()))
    user = services.segment_create(
        tenant=world.acme, name="Uses buyers", rules=group(in_segment(used))
    )
    refused = api("delete", f"segments/{used.public_id}/")
    assert refused.status_code == 400
    assert refused.json()["error"] == {
        "code": "in_use",
        "message": "Other segments use this one: Uses buyers.",
    }
    assert Segment.objects.filter(pk=used.pk).exists()
    assert api("delete", f"segments/{user.public_id}/").status_code == 204
    assert api("delete", f"segments/{used.public_id}/").status_code == 204
    assert not Segment.objects.filter(tenant=world.acme).exists()
    assert not SegmentMembership.objects.filter(tenant=world.acme).exists()


# --- counting a draft -----------------------------------------------------------------------


def test_it_counts_a_draft_like_the_saved_segment_without_saving(api, world, shop) -> None:
    rules = group(ordered(), {"type": "attribute", "field": "first_name", "operator": "exists"})
    counted = api("post", "segments/count/", {"rules": rules})
    assert counted.status_code == 200
    summary = "all of: did “Order Completed”; first name is set"
    assert counted.json() == {"count": 2, "summary": summary}
    assert not Segment.objects.filter(tenant=world.acme).exists()
    saved = api("post", "segments/", {"name": "Saved", "rules": rules}).json()
    assert saved["member_count"] == counted.json()["count"]


def test_it_counts_rfm_drafts_like_the_saved_segment(api, world, shop) -> None:
    # Two customers make two fifths only (NTILE): ben is in the first, ann in the second.
    rules = group({"type": "rfm", "frequency": [2]})
    counted = api("post", "segments/count/", {"rules": rules}).json()
    saved = api("post", "segments/", {"name": "Frequent", "rules": rules}).json()
    assert counted == {"count": 1, "summary": "RFM frequency 2"}
    assert saved["member_count"] == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"rules": group(ordered(), {"type": "lifecycle", "value": ["vip"]})},
            "Condition 2: value must list stages",
        ),
        ({"rules": group()}, "an empty group matches nothing useful"),
        ({"rules": "everyone"}, "must be an object."),
        ({}, "This field is required."),
    ],
)
def test_it_refuses_to_count_bad_rules_naming_the_condition(api, body, message) -> None:
    assert error_fields(api("post", "segments/count/", body))["rules"][0].startswith(message)


def test_it_counts_only_the_keys_tenant(api, world, shop) -> None:
    assert api("post", "segments/count/", {"rules": group(ordered(3))}).json()["count"] == 0
    counted = api("post", "segments/count/", {"rules": group(ordered(3))}, tenant=world.globex)
    assert counted.json()["count"] == 1
    sneaky = {"rules": group(in_segment(shop["globex_segment"]))}
    assert "does not exist" in error_fields(api("post", "segments/count/", sneaky))["rules"][0]


# --- members, and a contact's segments ------------------------------------------------------


def test_it_lists_members_with_when_they_entered_in_pages(
    api, world, shop, django_assert_num_queries
) -> None:
    segment = services.segment_create(tenant=world.acme, name="Buyers", rules=group(ordered()))
    entered = dict(
        SegmentMembership.objects.filter(segment=segment).values_list(
            "contact__user_id", "entered_at"
        )
    )
    with django_assert_num_queries(4 + rls_statements(1)):  # key (2), segment, page, + scope
        page = api("get", f"segments/{segment.public_id}/members/?limit=1").json()
    assert len(page["results"]) == 1 and page["next"]
    rest = api("get", page["next"].split("/api/v1/")[1]).json()
    rows = page["results"] + rest["results"]
    assert rest["next"] is None
    assert [r["user_id"] for r in rows] == ["ben", "ann"]  # newest contacts first
    ben = rows[0]
    assert ben == {
        "id": str(shop["ben"].public_id),
        "email": "ben@example.com",
        "user_id": "ben",
        "first_name": "Ben",
        "last_name": "",
        "entered_at": ben["entered_at"],
    }
    assert ben["entered_at"].replace("Z", "+00:00") == entered["ben"].isoformat()


def test_it_lists_the_segments_a_contact_is_in(api, world, shop, django_assert_num_queries) -> None:
    services.segment_create(tenant=world.acme, name="Repeat", rules=group(ordered(2)))
    services.segment_create(tenant=world.acme, name="Buyers", rules=group(ordered()))
    with django_assert_num_queries(4 + rls_statements(1)):  # key (2), contact, segments, scope
        body = api("get", f"contacts/{shop['ann'].public_id}/segments/").json()
    assert [s["name"] for s in body["results"]] == ["Buyers", "Repeat"]
    assert set(body["results"][0]) == {"id", "name", "description", "entered_at"}
    assert api("get", f"contacts/{shop['cat'].public_id}/segments/").json() == {"results": []}


# --- presets --------------------------------------------------------------------------------


def test_it_lists_and_adds_ready_made_segments(api, world, shop) -> None:
    listed = api("get", "segments/presets/").json()["results"]
    keys = [p["key"] for p in listed]
    assert {"cart-abandoners", "rfm-champions", "rfm-at-risk", "rfm-hibernating"} <= set(keys)
    champions = next(p for p in listed if p["key"] == "rfm-champions")
    assert champions["summary"] == "RFM recency 5, frequency 4-5, monetary 4-5"

    added = api("post", "segments/presets/rfm-champions/")
    assert added.status_code == 201
    assert added.json()["name"] == "Champions"
    again = api("post", "segments/presets/rfm-champions/")
    assert again.json()["name"] == "Champions (2)"
    assert Segment.objects.filter(tenant=world.acme).count() == 2


def test_it_answers_404_for_an_unknown_preset(api, world) -> None:
    response = api("post", "segments/presets/whales/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert "rfm-champions" in response.json()["error"]["message"]
    assert not Segment.objects.exists()


# --- tenancy --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "segments/{segment}/", None),
        ("put", "segments/{segment}/", {"name": "Mine now", "rules": group(ordered())}),
        ("patch", "segments/{segment}/", {"name": "Mine now"}),
        ("delete", "segments/{segment}/", None),
        ("get", "segments/{segment}/members/", None),
        ("get", "contacts/{contact}/segments/", None),
    ],
)
@pytest.mark.parametrize("whose", ["globex", "bad uuid", "unknown"])
def test_it_answers_404_for_other_tenants_ids_and_never_leaks(
    api, world, shop, method, path, body, whose
) -> None:
    services.segment_create(tenant=world.acme, name="Acme buyers", rules=group(ordered()))
    ids = {
        "globex": (shop["globex_segment"].public_id, shop["globex_ann"].public_id),
        "bad uuid": ("not-a-uuid", "1 OR 1=1"),
        "unknown": ("00000000-0000-4000-8000-000000000000",) * 2,
    }[whose]
    response = api(method, path.format(segment=ids[0], contact=ids[1]), body)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "not_found"
    assert "Globex" not in response.content.decode()
    globex = Segment.objects.get(tenant=world.globex)
    assert (globex.name, globex.member_count) == ("Globex secret buyers", 1)


def test_it_never_lists_other_tenants_segments(api, world, shop) -> None:
    services.segment_create(tenant=world.acme, name="Acme buyers", rules=group(ordered()))
    assert [s["name"] for s in api("get", "segments/").json()["results"]] == ["Acme buyers"]
    globex = api("get", "segments/", tenant=world.globex).json()["results"]
    assert [s["name"] for s in globex] == ["Globex secret buyers"]
    acme_ann = shop["ann"].public_id
    assert api("get", f"contacts/{acme_ann}/segments/", tenant=world.globex).status_code == 404


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "segments/"),
        ("post", "segments/count/"),
        ("get", "segments/presets/"),
        ("post", "segments/presets/rfm-champions/"),
    ],
)
def test_it_requires_a_secret_key(client, world, method, path) -> None:
    response = getattr(client, method)(f"/api/v1/{path}")
    assert response.status_code == 401
    assert not Segment.objects.exists()


def test_it_describes_every_segment_endpoint_in_the_schema() -> None:
    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    assert {
        "/api/v1/segments/",
        "/api/v1/segments/{public_id}/",
        "/api/v1/segments/count/",
        "/api/v1/segments/{public_id}/members/",
        "/api/v1/segments/presets/",
        "/api/v1/segments/presets/{key}/",
        "/api/v1/contacts/{public_id}/segments/",
    } <= set(paths)
