"""The one fact API: every producer records facts about a contact through
`audience.services.events_record` (or ingestion), with one message-id scheme and one after-commit
`events_recorded` announcement that names the events."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.db import transaction

from audience.catalog import PRICE_DROPPED, products_upsert
from audience.models import Contact, Event
from audience.segment_spec import parse_call
from audience.selectors import STAGE_CHANGED
from audience.services import Fact, calls_record, events_record
from audience.signals import RecordedEvent, events_recorded
from messaging import outcomes, tracking
from messaging.models import Channel, Template
from segments.services import ENTERED, segment_create
from tests.factories import sent_delivery

pytestmark = pytest.mark.django_db


@pytest.fixture
def heard() -> Iterator[list[dict[str, Any]]]:
    """What `events_recorded` announced, one dict of keyword arguments per announcement."""
    announcements: list[dict[str, Any]] = []

    def listener(**kwargs: Any) -> None:
        announcements.append(kwargs)

    events_recorded.connect(listener, dispatch_uid="tests.audience.test_facts")
    yield announcements
    events_recorded.disconnect(dispatch_uid="tests.audience.test_facts")


@pytest.fixture
def ann(world: Any) -> Contact:
    return Contact.objects.create(tenant=world.acme, email="ann@example.com")


def names(announcements: list[dict[str, Any]]) -> list[str]:
    return [event.name for a in announcements for event in a["events"]]


def visit(contact: Contact, key: str = "visit-1", **fields: Any) -> Fact:
    return Fact(contact_id=contact.pk, name="Store Visited", key=key, source="stores", **fields)


def test_it_stores_a_fact_as_a_track_event_with_a_message_id_derived_from_it(world, ann) -> None:
    fact = visit(ann, properties={"store": "Lyon"})

    [pk] = events_record(tenant=world.acme, facts=[fact])

    event = Event.objects.get(pk=pk)
    assert (event.contact_id, event.type, event.name) == (ann.pk, "track", "Store Visited")
    assert (event.properties, event.source) == ({"store": "Lyon"}, "stores")
    assert event.message_id == fact.message_id
    assert event.message_id.startswith("wf:stores:") and event.message_id.endswith(f":{ann.pk}")
    assert len(event.message_id) <= 100


def test_it_stores_a_replayed_fact_once_and_announces_it_once(
    world, ann, heard, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        first = events_record(tenant=world.acme, facts=[visit(ann), visit(ann)])
    with django_capture_on_commit_callbacks(execute=True):
        again = events_record(tenant=world.acme, facts=[visit(ann)])
    with django_capture_on_commit_callbacks(execute=True):
        fresh = events_record(tenant=world.acme, facts=[visit(ann)], fresh=True)

    assert len(first) == 1 and again == [] and fresh == []
    assert Event.objects.filter(name="Store Visited").count() == 1
    assert len(heard) == 1


def test_it_stores_only_the_new_facts_when_a_fresh_batch_holds_a_repeat(world, ann) -> None:
    events_record(tenant=world.acme, facts=[visit(ann, "v1")])

    ids = events_record(tenant=world.acme, facts=[visit(ann, "v1"), visit(ann, "v2")], fresh=True)

    assert Event.objects.get(pk__in=ids).message_id == visit(ann, "v2").message_id
    assert Event.objects.filter(name="Store Visited").count() == 2


def test_it_keeps_the_same_fact_of_two_tenants_or_two_contacts_apart(world, ann) -> None:
    gus = Contact.objects.create(tenant=world.globex, email="gus@example.com")
    bob = Contact.objects.create(tenant=world.acme, email="bob@example.com")

    events_record(tenant=world.acme, facts=[visit(ann), visit(bob)])
    events_record(tenant=world.globex, facts=[visit(gus)])

    assert Event.objects.filter(name="Store Visited").count() == 3


def test_it_stores_the_same_fact_recorded_by_two_producers_once(
    world, ann, django_capture_on_commit_callbacks
) -> None:
    template = Template.objects.create(
        tenant=world.acme, name="Hi", channel=Channel.EMAIL, subject="Hi", html="<p>Hi</p>"
    )
    delivery = sent_delivery(world.acme, template, "zoe@example.com", source="campaign:1")
    # An open the ESP's webhook reported, recorded by whoever calls the fact API directly...
    opened = Fact(
        contact_id=delivery.contact_id,
        name=outcomes.EMAIL_OPENED,
        key=f"{delivery.public_id}:{outcomes.EMAIL_OPENED}",
        source=outcomes.SOURCE,
    )
    assert events_record(tenant=world.acme, facts=[opened])

    # ... and then seen again by the open pixel, through messaging's outcomes.
    assert tracking.open_record(delivery=delivery) is False

    assert Event.objects.filter(name=outcomes.EMAIL_OPENED).count() == 1


def test_it_announces_recorded_events_once_after_commit_with_their_names(
    world, ann, heard, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        ids = events_record(
            tenant=world.acme,
            facts=[visit(ann, "v1"), Fact(ann.pk, "Store Left", "left-1", "stores")],
        )
        assert heard == []  # not before the transaction commits

    [announced] = heard
    assert announced["tenant"] == world.acme
    assert announced["event_ids"] == ids
    assert announced["contact_ids"] == [ann.pk]
    # Each with its time, so a receiver can read the events from their months only.
    times = dict(Event.objects.filter(pk__in=ids).values_list("pk", "occurred_at"))
    assert announced["events"] == [
        RecordedEvent(ids[0], ann.pk, "Store Visited", times[ids[0]]),
        RecordedEvent(ids[1], ann.pk, "Store Left", times[ids[1]]),
    ]


def test_it_announces_nothing_when_the_transaction_rolls_back(
    world, ann, heard, django_capture_on_commit_callbacks
) -> None:
    class Abandon(Exception):
        pass

    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(Abandon),
        transaction.atomic(),
    ):
        events_record(tenant=world.acme, facts=[visit(ann)])
        raise Abandon

    assert heard == []
    assert not Event.objects.filter(name="Store Visited").exists()


def test_it_announces_what_every_producer_records_with_the_event_names(
    world, ann, heard, eager_tasks, django_capture_on_commit_callbacks
) -> None:
    template = Template.objects.create(
        tenant=world.acme, name="Hi", channel=Channel.EMAIL, subject="Hi", html="<p>Hi</p>"
    )
    delivery = sent_delivery(world.acme, template, "zoe@example.com", source="campaign:1")
    rules = {
        "type": "group",
        "match": "all",
        "children": [{"type": "event", "event": "Product Added to Wishlist"}],
    }
    with django_capture_on_commit_callbacks(execute=True):  # ingestion
        wish = {"type": "track", "event": "Product Added to Wishlist", "messageId": "w1"}
        calls_record(
            tenant=world.acme,
            calls=[parse_call({**wish, "userId": "u1", "properties": {"sku": "S1"}})],
        )
    # …and the identified visitor's new lifecycle stage, which the committed ingestion's task
    # records (audience/stages.py): one more producer.
    assert names(heard) == ["Product Added to Wishlist", STAGE_CHANGED]
    with django_capture_on_commit_callbacks(execute=True):  # segment entry
        segment_create(tenant=world.acme, name="Wishers", rules=rules)
    assert names(heard)[2:] == [ENTERED]
    with django_capture_on_commit_callbacks(execute=True):  # the catalog
        products_upsert(tenant=world.acme, items=[{"sku": "S1", "name": "Scarf", "price": 30}])
        products_upsert(
            tenant=world.acme, items=[{"sku": "S1", "name": "Scarf", "price": Decimal(20)}]
        )
    assert names(heard)[3:] == [PRICE_DROPPED]
    with django_capture_on_commit_callbacks(execute=True):  # message outcomes
        tracking.open_record(delivery=delivery)
    # Her first event since the delivery made her profile: the task gives her a stage too.
    assert names(heard)[4:] == [outcomes.EMAIL_OPENED, STAGE_CHANGED]
    with django_capture_on_commit_callbacks(execute=True):  # an unsubscribe
        tracking.unsubscribe(delivery=delivery)
    assert names(heard)[6:] == [outcomes.UNSUBSCRIBED]
    # Every announced event is stored, and every stored event was announced.
    announced = {event.id for a in heard for event in a["events"]}
    assert announced == set(Event.objects.values_list("pk", flat=True))
    assert all(a["event_ids"] == [e.id for e in a["events"]] for a in heard)
