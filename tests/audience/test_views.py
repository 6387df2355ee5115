"""The contacts UI as a marketer uses it."""

from __future__ import annotations

import pytest

from audience.models import Contact, Event, Product
from audience.segment_spec import parse_call
from audience.services import calls_record
from audience.stages import stages_refresh
from tests.statements import rls_statements

pytestmark = pytest.mark.django_db


def ingest(tenant, *raw: dict) -> None:  # type: ignore[no-untyped-def]
    calls_record(tenant=tenant, calls=[parse_call(m) for m in raw])


@pytest.fixture
def ann(world) -> Contact:  # type: ignore[no-untyped-def]
    Product.objects.create(tenant=world.acme, sku="TENT", name="Trail Tent 2P", price="199.00")
    ingest(
        world.acme,
        {
            "type": "identify",
            "userId": "ann",
            "messageId": "i",
            "traits": {"email": "ann@example.com", "firstName": "Ann"},
        },
        {
            "type": "track",
            "userId": "ann",
            "event": "Product Viewed",
            "messageId": "v",
            "properties": {"sku": "TENT"},
        },
        {
            "type": "track",
            "userId": "ann",
            "event": "Product Added",
            "messageId": "a",
            "properties": {"sku": "TENT", "price": 199},
        },
    )
    return Contact.objects.get(user_id="ann")


def test_it_lists_searches_and_filters_contacts(
    login, world, ann, django_assert_max_num_queries
) -> None:
    ingest(world.acme, {"type": "track", "anonymousId": "anon", "event": "X", "messageId": "x"})
    ingest(
        world.globex,
        {
            "type": "identify",
            "userId": "g",
            "messageId": "g",
            "traits": {"email": "ann@globex.example"},
        },
    )
    stages_refresh(tenant=world.acme)  # what the commit's queued task does (audience/stages.py)
    client = login(world.bob)  # viewers may look
    # The first page of a team after signing in also remembers the team in the session (one
    # write per team switch, tenants/middleware.py): not the list's cost, so it is paid first.
    client.get("/t/acme/settings/")
    # + the scope: the tenant's, the system's for the team switcher, the tenant's again.
    with django_assert_max_num_queries(8 + rls_statements(3)):
        page = client.get("/t/acme/contacts/").content.decode()
    assert "Ann" in page and "Anonymous visitor" in page and "globex" not in page
    found = client.get("/t/acme/contacts/?q=ann@").content.decode()
    assert "ann@example.com" in found and "Anonymous visitor" not in found
    leads = client.get("/t/acme/contacts/?stage=acquisition").content.decode()
    assert "Ann" in leads and "Anonymous visitor" not in leads
    partial = client.get(
        "/t/acme/contacts/?q=ann", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="contact-results"
    )
    assert "<html" not in partial.content.decode() and "Ann" in partial.content.decode()


def test_it_pages_through_contacts_without_offsets(login, world) -> None:
    for i in range(55):
        Contact.objects.create(tenant=world.acme, email=f"p{i:02d}@example.com")
    client = login(world.alice)
    first = client.get("/t/acme/contacts/")
    page = first.context["page"]
    assert len(page.rows) == 50 and page.next_cursor
    second = client.get(f"/t/acme/contacts/?after={page.next_cursor}").context["page"]
    assert len(second.rows) == 5 and second.next_cursor is None
    assert {c.pk for c in page.rows}.isdisjoint({c.pk for c in second.rows})


def test_it_shows_a_profile_with_cart_and_a_timeline(login, world, ann) -> None:
    client = login(world.bob)
    page = client.get(f"/t/acme/contacts/{ann.public_id}/").content.decode()
    assert "ann@example.com" in page
    assert "Trail Tent 2P" in page  # cart and recently viewed show product names
    assert "Edit" not in page and "Erase contact" not in page  # viewer
    timeline = client.get(f"/t/acme/contacts/{ann.public_id}/timeline/").content.decode()
    assert timeline.index("Product Added") < timeline.index("Identify")  # newest first


def test_it_loads_the_timeline_a_page_at_a_time(login, world, ann) -> None:
    ingest(
        world.acme,
        *[
            {
                "type": "track",
                "userId": "ann",
                "event": f"Event {i}",
                "messageId": f"e{i}",
                "timestamp": f"2026-01-01T00:{i:02d}:00Z",
            }
            for i in range(30)
        ],
    )
    client = login(world.alice)
    first = client.get(f"/t/acme/contacts/{ann.public_id}/timeline/")
    assert len(first.context["page"].rows) == 25
    more = client.get(
        f"/t/acme/contacts/{ann.public_id}/timeline/?after={first.context['page'].next_cursor}"
    )
    assert len(more.context["page"].rows) == 33 - 25
    assert "Load older events" not in more.content.decode()


def test_it_edits_a_contact_and_records_the_consent_source(login, world, ann) -> None:
    client = login(world.dave)  # marketer
    response = client.post(
        f"/t/acme/contacts/{ann.public_id}/edit/",
        {
            "email": "ann@new.example",
            "first_name": "Annie",
            "lifecycle_stage": "advocacy",  # not a field of the form: computed, never typed
            "email_consent": "granted",
            "push_consent": "unknown",
            "timezone": "Europe/Madrid",
            "attributes": '{"tier": "gold"}',
            "birthday_month": "2",
            "birthday_day": "29",
        },
    )
    assert response.status_code == 302
    ann.refresh_from_db()
    assert (ann.email, ann.first_name, ann.timezone) == (
        "ann@new.example",
        "Annie",
        "Europe/Madrid",
    )
    assert ann.attributes == {"tier": "gold"}
    assert (ann.email_consent, ann.email_consent_source) == ("granted", "ui:dave@example.com")
    assert (ann.birthday_month, ann.birthday_day) == (2, 29)
    assert ann.lifecycle_stage == "acquisition"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"attributes": "[1, 2]"}, "attributes"),
        ({"attributes": "{oops"}, "attributes"),
        ({"email": "nope"}, "email"),
        ({"birthday_month": "4", "birthday_day": "31"}, "birthday_day"),
        ({"birthday_month": "4"}, "birthday_day"),
        ({"timezone": "Nowhere/Land"}, "timezone"),
    ],
)
def test_it_shows_edit_errors_and_saves_nothing(login, world, ann, change, field) -> None:
    data = {
        "email": "ann@example.com",
        "email_consent": "unknown",
        "push_consent": "unknown",
        **change,
    }
    response = login(world.alice).post(f"/t/acme/contacts/{ann.public_id}/edit/", data)
    assert response.status_code == 400
    assert field in response.context["form"].errors
    before = ann.email, ann.attributes, ann.birthday_month
    ann.refresh_from_db()
    assert (ann.email, ann.attributes, ann.birthday_month) == before


def test_it_lets_admins_erase_a_contact_for_good(login, world, ann) -> None:
    assert login(world.dave).post(f"/t/acme/contacts/{ann.public_id}/erase/").status_code == 403
    response = login(world.alice).post(f"/t/acme/contacts/{ann.public_id}/erase/", follow=True)
    assert "Erased ann@example.com with 3 event(s)." in response.content.decode()
    assert not Contact.objects.filter(pk=ann.pk).exists()
    assert not Event.objects.filter(tenant=world.acme).exists()
