"""Real client SDKs against the Segment-compatible /v1 endpoints.

segment-analytics-python and rudder-sdk-python are pointed at a live server (a real HTTP server on
127.0.0.1, in another thread, hence committed data) and upload the way they do in production:
their background thread posts batches to `<host>/v1/batch` with the write key as the HTTP Basic
user name (RudderStack gzips by default). The tests then read what was stored.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from unittest import mock

import pytest
import rudderstack.analytics.request
import segment.analytics.request
from rudderstack.analytics import Client as RudderStackClient
from segment.analytics import Client as SegmentClient

from audience.models import Contact, Event, LifecycleStage
from audience.stages import SOURCE, STAGE_CHANGED
from tenants import services
from tests.factories import basic

# Each SDK: its client class and the module whose `_session` does the HTTP posts.
SDKS = {
    "segment": (SegmentClient, segment.analytics.request),
    "rudderstack": (RudderStackClient, rudderstack.analytics.request),
}


@dataclass(frozen=True)
class Upload:
    """One HTTP request an SDK made, as it went over the wire."""

    url: str
    headers: dict[str, str]
    body: dict[str, Any]
    status: int

    @property
    def message_ids(self) -> list[str]:
        return [message["messageId"] for message in self.body["batch"]]


@pytest.fixture(params=list(SDKS))
def sdk(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def write_key(transactional_db: None, world: Any) -> str:
    return services.api_key_create(tenant=world.acme, kind="write", name="sdk")[1]


@pytest.fixture
def make_client(
    sdk: str, live_server: Any, write_key: str, ingest_inline: None
) -> Iterator[Callable[..., Any]]:
    """make_client(**options) builds the SDK's client aimed at the live server. A short
    upload_interval keeps flush() fast: the background thread sends a batch when it is full or
    when the interval has passed, and flush() waits for that."""
    clients = []

    def _make(**options: Any) -> Any:
        client_class, _ = SDKS[sdk]
        settings = {
            "write_key": write_key,
            "host": live_server.url,
            "timeout": 5,
            # Safe to retry: repeated messageIds are stored once.
            "max_retries": 2,
            "upload_interval": 0.05,
            **options,
        }
        client = client_class(**settings)
        clients.append(client)
        return client

    yield _make
    for client in clients:
        if client.consumers:  # sync_mode clients have no background thread
            client.join()


@pytest.fixture
def uploads(sdk: str) -> Iterator[list[Upload]]:
    """Every request the SDK sends, recorded from the prepared request that went out."""
    session = SDKS[sdk][1]._session
    real_post = session.post
    seen: list[Upload] = []

    def spy(url: str, **kwargs: Any) -> Any:
        response = real_post(url, **kwargs)
        sent = response.request
        body = sent.body if isinstance(sent.body, bytes) else sent.body.encode()
        if sent.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        seen.append(Upload(sent.url, dict(sent.headers), json.loads(body), response.status_code))
        return response

    with mock.patch.object(session, "post", side_effect=spy):
        yield seen


def names(contact: Contact) -> list[str]:
    """Names of the events the SDK sent, in the order they arrived. Not by occurred_at: each
    request's clock-skew correction includes its own transit time, so two requests of one
    flush may swap. Wayfarer's own stage changes, recorded after each request, are `moves`."""
    sent = contact.events.exclude(source=SOURCE).order_by("pk")
    return list(sent.values_list("name", flat=True))


def moves(contact: Contact) -> list[tuple[str, str]]:
    """The contact's lifecycle stage changes (audience/stages.py), in order."""
    changes = contact.events.filter(source=SOURCE).order_by("pk")
    assert set(changes.values_list("name", flat=True)) <= {STAGE_CHANGED}
    return [(p["from"], p["to"]) for p in changes.values_list("properties", flat=True)]


def identities(contact: Contact) -> set[tuple[str, str]]:
    return set(contact.identities.values_list("kind", "value"))


def test_it_updates_the_profile_from_identify_traits_in_sync_mode(
    make_client, uploads, live_server, world
) -> None:
    client = make_client(sync_mode=True)
    _, sent = client.identify(
        user_id="u-ann",
        traits={
            "email": "Ann@Example.com",
            "firstName": "Ann",
            "lastName": "Lee",
            "birthday": "1990-05-17",
            "timezone": "Europe/Paris",
            "plan": "gold",
        },
    )

    # sync_mode: the call returned after the server answered, so no flush is needed.
    ann = Contact.objects.get(tenant=world.acme)
    assert (ann.user_id, ann.email, ann.first_name, ann.last_name, ann.timezone) == (
        "u-ann",
        "ann@example.com",
        "Ann",
        "Lee",
        "Europe/Paris",
    )
    assert (ann.birthday_month, ann.birthday_day, ann.birth_year) == (5, 17, 1990)
    assert ann.attributes == {"plan": "gold"}
    assert ann.lifecycle_stage == LifecycleStage.ACQUISITION  # known now
    assert moves(ann) == [("awareness", "acquisition")]
    event = Event.objects.get(message_id=sent["messageId"])
    assert (event.contact, event.type, event.name) == (ann, "identify", "Identify")
    assert event.properties["plan"] == "gold"
    assert event.context["library"]["name"] == "analytics-python"
    assert [upload.url for upload in uploads] == [f"{live_server.url}/v1/batch"]


def test_it_follows_an_e_commerce_journey_tracked_by_the_sdk(make_client) -> None:
    client = make_client()
    tent = {"product_id": "TENT-2", "sku": "TENT-2", "name": "Trail Tent", "category": "Tents"}
    client.track(user_id="u-1", event="Product Viewed", properties={**tent, "price": 199.0})
    client.track(
        user_id="u-1",
        event="Product Added",
        properties={**tent, "price": Decimal("199.00"), "quantity": 2},  # the SDKs send floats
    )
    client.flush()

    contact = Contact.objects.get()
    assert contact.recently_viewed == ["TENT-2"]
    assert [(i["sku"], i["quantity"], i["price"]) for i in contact.cart] == [("TENT-2", 2, "199.0")]

    order = {
        "order_id": "o-1001",
        "total": 398.0,
        "currency": "EUR",
        "products": [{"product_id": "TENT-2", "sku": "TENT-2", "price": 199.0, "quantity": 2}],
    }
    _, sent = client.track(user_id="u-1", event="Order Completed", properties=order)
    client.flush()

    contact.refresh_from_db()
    assert names(contact) == ["Product Viewed", "Product Added", "Order Completed"]
    assert Event.objects.get(message_id=sent["messageId"]).properties == order
    assert contact.cart == []
    assert contact.lifecycle_stage == LifecycleStage.ONBOARDING  # a first order, just now
    assert moves(contact) == [("awareness", "acquisition"), ("acquisition", "onboarding")]


def test_it_stores_page_and_screen_views(make_client) -> None:
    client = make_client()
    pricing = {"url": "https://shop.example/pricing", "title": "Pricing", "path": "/pricing"}
    client.page(anonymous_id="anon-1", category="Docs", name="Pricing", properties=pricing)
    client.page(anonymous_id="anon-1")
    client.screen(anonymous_id="anon-1", name="Home", properties={"variant": "b"})
    client.flush()

    visitor = Contact.objects.get()
    stored = list(visitor.events.order_by("pk"))
    assert [(e.type, e.name) for e in stored] == [
        ("page", "Viewed Pricing Page"),
        ("page", "Page Viewed"),
        ("screen", "Viewed Home Screen"),
    ]
    assert pricing.items() <= stored[0].properties.items()
    assert stored[2].properties["variant"] == "b"
    assert identities(visitor) == {("anonymous_id", "anon-1")}
    assert visitor.lifecycle_stage == LifecycleStage.AWARENESS
    assert moves(visitor) == []  # an anonymous visitor starts in awareness and stays


def test_it_joins_two_ids_with_alias(make_client) -> None:
    client = make_client()
    client.track(anonymous_id="old-device", event="Product Viewed", properties={"sku": "A"})
    client.track(user_id="u-9", event="Product Viewed", properties={"sku": "B"})
    client.flush()
    assert Contact.objects.count() == 2

    client.alias(previous_id="old-device", user_id="u-9")
    client.flush()

    contact = Contact.objects.get()
    assert contact.user_id == "u-9"
    assert names(contact) == ["Product Viewed", "Product Viewed", "Alias"]
    assert identities(contact) == {("anonymous_id", "old-device"), ("user_id", "u-9")}
    assert contact.recently_viewed == ["B", "A"]


def test_it_gives_a_visitor_who_signs_in_one_contact_with_the_whole_history(make_client) -> None:
    client = make_client()
    # Known from the app on another device first.
    sent = [client.identify(user_id="u-ann", traits={"email": "ann@example.com"})[1]]
    client.flush()
    # Then browses the shop anonymously.
    browser = "browser-7f3a"
    sent += [
        client.page(anonymous_id=browser, name="Home")[1],
        client.track(anonymous_id=browser, event="Product Viewed", properties={"sku": "BOOT"})[1],
        client.track(
            anonymous_id=browser, event="Product Added", properties={"sku": "BOOT", "price": 89.5}
        )[1],
    ]
    client.flush()
    assert Contact.objects.count() == 2
    # Signs in on the shop and buys.
    sent += [
        client.identify(user_id="u-ann", anonymous_id=browser, traits={"firstName": "Ann"})[1],
        client.track(user_id="u-ann", event="Order Completed", properties={"order_id": "o-7"})[1],
    ]
    client.flush()

    ann = Contact.objects.get()
    stored = ann.events.exclude(source=SOURCE).values_list("message_id", flat=True)
    assert set(stored) == {m["messageId"] for m in sent}
    assert names(ann) == [
        "Identify",
        "Viewed Home Page",
        "Product Viewed",
        "Product Added",
        "Identify",
        "Order Completed",
    ]
    assert identities(ann) == {("user_id", "u-ann"), ("anonymous_id", browser)}
    assert (ann.user_id, ann.email, ann.first_name) == ("u-ann", "ann@example.com", "Ann")
    assert ann.recently_viewed == ["BOOT"]
    assert ann.cart == []
    assert ann.lifecycle_stage == LifecycleStage.ONBOARDING
    # The anonymous browser's contact was merged into ann's and had no stage of its own to keep.
    assert moves(ann) == [("awareness", "acquisition"), ("acquisition", "onboarding")]


def test_it_receives_one_batch_on_flush_and_the_rest_on_shutdown(
    make_client, uploads, live_server, write_key
) -> None:
    # The background thread sends when 3 messages are queued or 1 s has passed, gzipped.
    client = make_client(upload_size=3, upload_interval=1, gzip=True)
    sent = [client.track(user_id="u-1", event=f"Step {n}")[1] for n in range(2)]
    assert not Event.objects.exists()  # queued in the SDK, not sent yet
    sent.append(client.track(user_id="u-1", event="Step 2")[1])
    client.flush()

    stored = Event.objects.exclude(source=SOURCE).values_list("message_id", flat=True)
    assert sorted(stored) == sorted(m["messageId"] for m in sent)
    # And, once, Wayfarer's own note that u-1 became known.
    assert moves(Contact.objects.get()) == [("awareness", "acquisition")]
    [upload] = uploads
    assert upload.url == f"{live_server.url}/v1/batch"
    assert upload.headers["Authorization"] == basic(write_key)
    assert upload.headers["Content-Encoding"] == "gzip"
    assert upload.message_ids == [m["messageId"] for m in sent]
    assert upload.status == 200

    _, last = client.track(user_id="u-1", event="Signed Out")
    client.shutdown()  # flushes what is queued, then stops the thread

    assert Event.objects.filter(message_id=last["messageId"], name="Signed Out").exists()
    assert [u.message_ids for u in uploads[1:]] == [[last["messageId"]]]
    assert not any(consumer.is_alive() for consumer in client.consumers)


def test_it_refuses_a_wrong_write_key_to_the_sdk_and_stores_nothing(
    make_client, uploads, write_key
) -> None:
    failures: list[tuple[Exception, list[dict[str, Any]]]] = []
    client = make_client(
        write_key=write_key[:-4] + "oops",  # a typo in the secret part
        on_error=lambda error, batch: failures.append((error, batch)),
        max_retries=1,
    )
    _, sent = client.track(user_id="u-1", event="Product Viewed", properties={"sku": "A"})
    client.flush()

    assert not Event.objects.exists()
    assert not Contact.objects.exists()
    assert uploads[0].status == 401
    [(error, batch)] = failures
    assert [message["messageId"] for message in batch] == [sent["messageId"]]
    # The SDK's own APIError carries Wayfarer's code and message, and a 401 is final.
    assert (error.status, error.code, error.message) == (401, "unauthorized", "Unknown API key.")
    assert len(uploads) == 1


def test_it_reports_a_message_it_refuses_to_the_sdk(make_client, uploads) -> None:
    failures: list[tuple[Exception, list[dict[str, Any]]]] = []
    client = make_client(
        on_error=lambda error, batch: failures.append((error, batch)), max_retries=1
    )
    client.identify(user_id="u-1", traits={"email": "not-an-address"})
    client.flush()

    assert not Contact.objects.exists()
    assert uploads[0].status == 400
    [(error, _batch)] = failures
    assert (error.status, error.code) == (400, "invalid")
    assert error.message.startswith("traits.email “not-an-address” is not an email address")
    assert len(uploads) == 1  # final: the SDK does not retry a 400
