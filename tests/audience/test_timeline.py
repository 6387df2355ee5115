"""The timeline speaks to marketers (issue 18, item 4): each event kind in one human line —
product names, amounts, segment names, a message's subject and outcome — its properties as a
key/value table, and times in the team's zone."""

from __future__ import annotations

import re
from html import unescape

import pytest

from audience.models import Contact, Product
from audience.segment_spec import parse_call
from audience.services import Fact, calls_record, events_record
from audience.timeline import money, property_rows
from messaging import outcomes
from messaging.models import Delivery, Template


def ingest(tenant, *raw: dict) -> None:  # type: ignore[no-untyped-def]
    calls_record(tenant=tenant, calls=[parse_call(m) for m in raw])


def lines(client, contact: Contact) -> list[str]:  # type: ignore[no-untyped-def]
    html = client.get(f"/t/{contact.tenant.slug}/contacts/{contact.public_id}/timeline/")
    assert html.status_code == 200
    found = re.findall(r'<p class="event-line">(.*?)</p>', html.content.decode(), re.S)
    return [unescape(line) for line in found]


@pytest.fixture
def ann(world) -> Contact:  # type: ignore[no-untyped-def]
    Product.objects.create(tenant=world.acme, sku="TENT", name="Trail Tent 2P", price="199.00")
    ingest(
        world.acme,
        {
            "type": "identify",
            "userId": "ann",
            "messageId": "i",
            "traits": {"email": "a@x.example"},
            "timestamp": "2026-10-01T08:00:00Z",
        },
    )
    return Contact.objects.get(tenant=world.acme, user_id="ann")


def test_shop_events_read_as_sentences_with_names_and_amounts(login, world, ann) -> None:
    track = {"type": "track", "userId": "ann"}
    ingest(
        world.acme,
        # No name in the event: the catalog's name is shown.
        {
            **track,
            "event": "Product Viewed",
            "messageId": "v",
            "properties": {"sku": "TENT", "price": 199, "currency": "EUR"},
            "timestamp": "2026-11-01T10:00:00Z",
        },
        {
            **track,
            "event": "Products Searched",
            "messageId": "s",
            "properties": {"query": "sneekers", "result_count": 0},
            "timestamp": "2026-11-01T10:01:00Z",
        },
        {
            **track,
            "event": "Order Completed",
            "messageId": "o",
            "timestamp": "2026-11-01T10:02:00Z",
            "properties": {
                "order_id": "A-17",
                "revenue": 1234.5,
                "currency": "EUR",
                "products": [
                    {"sku": "TENT", "quantity": 2, "price": 199},
                    {"sku": "MUG", "name": "Camp Mug", "quantity": 1, "price": 836.5},
                ],
            },
        },
    )
    shown = lines(login(world.bob), ann)
    assert shown[0] == "Ordered Trail Tent 2P and 1 more · 3 items · €1,234.50 · order A-17"
    assert shown[1] == "Searched for “sneekers” · no results"
    assert shown[2] == "Viewed Trail Tent 2P · €199.00"


def test_segment_stage_and_message_events_name_what_they_are_about(login, world, ann) -> None:
    template = Template.objects.create(
        tenant=world.acme, name="Welcome", subject="Welcome aboard, Ann", html="<p>Hi</p>"
    )
    delivery = Delivery.objects.create(
        tenant=world.acme,
        contact=ann,
        channel=template.channel,
        template=template,
        content=template.snapshot(),
        source="test",
        idempotency_key="t-1",
    )
    base = {"delivery_id": str(delivery.public_id), "channel": "email", "template": "Welcome"}
    facts = [
        Fact(ann.pk, "Segment Entered", "seg", "segments", {"segment": "Cart abandoners"}),
        Fact(
            ann.pk,
            "Lifecycle Stage Changed",
            "st",
            "lifecycle",
            {"from": "onboarding", "to": "engagement", "reason": "active"},
        ),
        Fact(ann.pk, outcomes.EMAIL_SENT, "sent", "messaging", base),
        Fact(
            ann.pk,
            outcomes.EMAIL_CLICKED,
            "click",
            "messaging",
            {**base, "url": "https://shop.example/tents?utm=x"},
        ),
    ]
    for n, fact in enumerate(facts):
        events_record(
            tenant=world.acme,
            facts=[
                fact._replace(
                    occurred_at=ann.created_at.replace(year=2026, month=11, day=2, hour=9, minute=n)
                )
            ],
        )
    shown = lines(login(world.alice), ann)
    assert shown[:4] == [
        "Email “Welcome aboard, Ann” clicked: shop.example/tents",
        "Email “Welcome aboard, Ann” sent",
        "Lifecycle stage: Onboarding → Engagement (active)",
        "Entered segment “Cart abandoners”",
    ]


def test_properties_open_as_a_key_value_table_not_a_python_dict(login, world, ann) -> None:
    ingest(
        world.acme,
        {
            "type": "track",
            "userId": "ann",
            "event": "Checkout Started",
            "messageId": "c",
            "properties": {"products": [{"sku": "TENT"}], "coupon": None, "gift": True},
        },
    )
    html = login(world.bob).get(f"/t/acme/contacts/{ann.public_id}/timeline/").content.decode()
    assert "{'" not in html and "&#x27;products&#x27;" not in html
    assert re.search(r"<th scope=\"row\"><code>products\.1\.sku</code></th><td>TENT</td>", html)
    assert re.search(r"<code>gift</code></th><td>yes</td>", html)
    assert property_rows({"a": {"b": [1, {"c": "d"}]}}) == [("a.b.1", "1"), ("a.b.2.c", "d")]


def test_times_show_in_the_teams_zone_named_on_hover(login, world, ann) -> None:
    world.acme.timezone = "Europe/Berlin"
    world.acme.save(update_fields=["timezone"])
    ingest(
        world.acme,
        {
            "type": "track",
            "userId": "ann",
            "event": "Signed Up",
            "messageId": "z",
            "timestamp": "2026-12-07T12:00:00Z",
        },
    )
    html = login(world.bob).get(f"/t/acme/contacts/{ann.public_id}/timeline/").content.decode()
    # 12:00 UTC is 13:00 in Berlin in December.
    assert (
        '<time datetime="2026-12-07T13:00:00+01:00" title="Europe/Berlin">7 Dec 2026, 13:00' in html
    )


def test_money_has_its_currency_and_thousands_separators() -> None:
    assert money(40001, "EUR") == "€40,001.00"
    assert money("12.5", "sek") == "SEK 12.50"
    assert money("n/a", "EUR") == ""
    assert money(-3, "USD") == "-$3.00"


def test_another_teams_contact_timeline_is_not_found(login, world, ann) -> None:
    assert (
        login(world.charlie).get(f"/t/globex/contacts/{ann.public_id}/timeline/").status_code == 404
    )
