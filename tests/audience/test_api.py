"""The audience REST API: contacts, events and products, always within the key's tenant."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from audience.models import Contact, Event, Identity, Product
from audience.segment_spec import parse_call
from audience.services import calls_record
from tests.statements import rls_statements

pytestmark = pytest.mark.django_db


def ingest(tenant, *raw: dict) -> None:  # type: ignore[no-untyped-def]
    calls_record(tenant=tenant, calls=[parse_call(m) for m in raw])


def test_it_upserts_a_contact_by_user_id_then_email(api, world) -> None:
    created = api(
        "post", "contacts/", {"user_id": "u1", "email": "Ann@Example.com", "first_name": "Ann"}
    )
    assert created.status_code == 201
    body = created.json()
    assert (body["email"], body["user_id"], body["lifecycle_stage"]) == (
        "ann@example.com",
        "u1",
        "acquisition",  # known: computed at once for an edit (audience/stages.py)
    )
    updated = api(
        "post",
        "contacts/",
        {"email": "ann@example.com", "attributes": {"plan": "gold"}, "email_consent": "granted"},
    )
    assert updated.status_code == 200
    assert updated.json()["id"] == body["id"]
    ann = Contact.objects.get()
    assert ann.attributes == {"plan": "gold"}
    assert (ann.email_consent, ann.email_consent_source) == ("granted", "api")
    assert ann.email_consent_at is not None
    assert Identity.objects.filter(kind="user_id", value="u1", contact=ann).exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"first_name": "Nobody"}, "user_id"),
        ({"user_id": "u", "email": "not-mail"}, "email"),
        ({"user_id": "u", "timezone": "Atlantis/Capital"}, "timezone"),
        ({"user_id": "u", "birthday_month": 2, "birthday_day": 30}, "birthday_day"),
        ({"user_id": "u", "birthday_month": 13, "birthday_day": 1}, "birthday_month"),
        ({"user_id": "u", "lifecycle_stage": "vip"}, "lifecycle_stage"),
        ({"user_id": "u", "attributes": ["x"]}, "attributes"),
        ({"user_id": "u", "email_consent": "maybe"}, "email_consent"),
    ],
)
def test_it_refuses_a_bad_contact_with_field_errors(api, body, field) -> None:
    response = api("post", "contacts/", body)
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not Contact.objects.exists()


def test_it_lists_and_searches_contacts_with_cursor_pages(
    api, world, django_assert_max_num_queries
) -> None:
    for i in range(7):
        api("post", "contacts/", {"user_id": f"u{i}", "email": f"person{i}@example.com"})
    api(
        "post",
        "contacts/",
        {"user_id": "other", "email": "person9@globex.example"},
        tenant=world.globex,
    )
    # key, page, identities (no query per contact), + the tenant's scope
    with django_assert_max_num_queries(4 + rls_statements(1)):
        first = api("get", "contacts/?limit=5").json()
    assert len(first["results"]) == 5
    second = api("get", first["next"].split("/api/v1/")[1]).json()
    emails = {c["email"] for c in first["results"] + second["results"]}
    assert emails == {f"person{i}@example.com" for i in range(7)}
    assert second["next"] is None
    found = api("get", "contacts/?search=person3").json()["results"]
    assert [c["user_id"] for c in found] == ["u3"]
    assert api("get", "contacts/?lifecycle_stage=vip").status_code == 400


def test_it_shows_a_contact_with_its_recent_events(api, world) -> None:
    ingest(
        world.acme,
        {
            "type": "identify",
            "userId": "u1",
            "anonymousId": "a1",
            "messageId": "1",
            "timestamp": "2026-11-01T10:00:00Z",
        },
        {
            "type": "track",
            "userId": "u1",
            "event": "Order Completed",
            "messageId": "2",
            "timestamp": "2026-11-02T10:00:00Z",
        },
    )
    contact = Contact.objects.get()
    body = api("get", f"contacts/{contact.public_id}/").json()
    assert body["anonymous_ids"] == ["a1"]
    assert [e["name"] for e in body["recent_events"]] == ["Order Completed", "Identify"]


def test_it_erases_a_contact_and_everything_about_them(api, world) -> None:
    ingest(world.acme, {"type": "track", "userId": "gone", "event": "X", "messageId": "g1"})
    ingest(world.acme, {"type": "track", "userId": "stays", "event": "X", "messageId": "s1"})
    gone = Contact.objects.get(user_id="gone")
    assert api("delete", f"contacts/{gone.public_id}/").status_code == 204
    assert not Contact.objects.filter(user_id="gone").exists()
    assert not Identity.objects.filter(value="gone").exists()
    assert list(Event.objects.values_list("message_id", flat=True)) == ["s1"]
    assert api("get", f"contacts/{gone.public_id}/").status_code == 404


def test_it_never_shows_or_erases_another_tenants_contact(api, world) -> None:
    ingest(world.globex, {"type": "track", "userId": "g", "event": "X", "messageId": "g"})
    theirs = Contact.objects.get(tenant=world.globex)
    for method in ("get", "delete"):
        response = api(method, f"contacts/{theirs.public_id}/")
        assert response.status_code == 404
    assert api("get", f"events/?contact={theirs.public_id}").status_code == 404
    assert api("get", "events/").json()["results"] == []
    assert api("get", "contacts/").json()["results"] == []
    assert Contact.objects.filter(pk=theirs.pk).exists()
    assert api("get", "contacts/not-a-uuid/").status_code == 404


def test_it_filters_events(api, world) -> None:
    ingest(
        world.acme,
        {
            "type": "track",
            "userId": "u",
            "event": "A",
            "messageId": "1",
            "timestamp": "2026-01-01T10:00:00Z",
        },
        {
            "type": "track",
            "userId": "u",
            "event": "B",
            "messageId": "2",
            "timestamp": "2026-02-01T10:00:00Z",
        },
    )
    names = lambda q: [e["name"] for e in api("get", f"events/?{q}").json()["results"]]  # noqa: E731
    assert names("name=A") == ["A"]
    assert names("since=2026-01-15T00:00:00Z") == ["B"]
    assert names("until=2026-01-15T00:00:00Z") == ["A"]
    bad = api("get", "events/?since=last-week")
    assert bad.status_code == 400 and "since" in bad.json()["error"]["fields"]


def test_it_bulk_upserts_products_and_tells_interested_contacts(api, world) -> None:
    catalog = {
        "products": [
            {"sku": "TENT", "name": "Tent", "price": "199.00", "category": "camping"},
            {"sku": "BOOT", "name": "Boot", "price": "120.00", "in_stock": False},
        ]
    }
    assert api("post", "products/", catalog).json() == {
        "created": 2,
        "updated": 0,
        "unchanged": 0,
        "price_dropped": [],
        "back_in_stock": [],
    }
    ingest(
        world.acme,
        {
            "type": "track",
            "userId": "wish",
            "event": "Product Added to Wishlist",
            "messageId": "w",
            "properties": {"sku": "TENT"},
        },
        {
            "type": "track",
            "userId": "cart",
            "event": "Product Added",
            "messageId": "c",
            "properties": {"sku": "BOOT"},
        },
        {
            "type": "track",
            "userId": "none",
            "event": "Product Viewed",
            "messageId": "n",
            "properties": {"sku": "TENT"},
        },
    )
    ingest(
        world.globex,
        {
            "type": "track",
            "userId": "wish",
            "event": "Product Added to Wishlist",
            "messageId": "gw",
            "properties": {"sku": "TENT"},
        },
    )
    change = {
        "products": [
            {"sku": "TENT", "name": "Tent", "price": "149.00", "category": "camping"},
            {"sku": "BOOT", "name": "Boot", "price": "120.00", "in_stock": True},
        ]
    }
    body = api("post", "products/", change).json()
    assert (body["updated"], body["price_dropped"], body["back_in_stock"]) == (
        2,
        ["TENT"],
        ["BOOT"],
    )
    dropped = Event.objects.get(name="Product Price Dropped")
    assert dropped.contact.user_id == "wish" and dropped.tenant == world.acme
    assert (dropped.properties["price"], dropped.properties["previous_price"]) == (
        "149.00",
        "199.00",
    )
    assert Event.objects.get(name="Product Back in Stock").contact.user_id == "cart"
    # The same update again changes nothing and tells nobody twice.
    again = api("post", "products/", change).json()
    assert (again["unchanged"], again["price_dropped"]) == (2, [])
    assert (
        Event.objects.filter(name__in=["Product Price Dropped", "Product Back in Stock"]).count()
        == 2
    )


@pytest.mark.parametrize(
    ("products", "message"),
    [
        ([], "products"),
        ([{"name": "No sku"}], "products"),
        ([{"sku": "A", "name": "A", "price": "-1"}], "products"),
        ([{"sku": "A", "name": "A", "currency": "euro"}], "products"),
        ([{"sku": "A", "name": "A"}, {"sku": "A", "name": "again"}], "products"),
    ],
)
def test_it_refuses_a_bad_catalog_whole(api, products, message) -> None:
    response = api(
        "post",
        "products/",
        {"products": [{"sku": "OK", "name": "fine"}, *products]} if products else {"products": []},
    )
    assert response.status_code == 400
    assert message in response.json()["error"]["fields"]
    assert not Product.objects.exists()


def test_it_keeps_catalogs_apart(api, world) -> None:
    api("post", "products/", {"products": [{"sku": "X", "name": "Acme X"}]})
    api("post", "products/", {"products": [{"sku": "X", "name": "Globex X"}]}, tenant=world.globex)
    names = [p["name"] for p in api("get", "products/").json()["results"]]
    assert names == ["Acme X"]


def test_it_publishes_a_clean_openapi_schema() -> None:
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "manage.py", "spectacular", "--validate", "--fail-on-warn"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    for path in ("/api/v1/contacts/", "/api/v1/events/", "/api/v1/products/"):
        assert path in result.stdout
