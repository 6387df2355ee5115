"""The Segment-compatible ingestion endpoints, through HTTP as SDKs call them."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from audience.inbox import inbox_drain
from audience.models import Contact, Event, Identity, LifecycleStage
from audience.signals import events_recorded
from audience.stages import STAGE_CHANGED
from tenants import services
from tests.factories import basic

pytestmark = pytest.mark.django_db(transaction=False)


@pytest.fixture
def write_key(world) -> str:  # type: ignore[no-untyped-def]
    return services.api_key_create(tenant=world.acme, kind="write", name="site")[1]


@pytest.fixture
def send(client, write_key):  # type: ignore[no-untyped-def]
    def _send(
        path: str, body: object, *, key: str | None = None, raw: bytes | None = None, **headers
    ):  # type: ignore[no-untyped-def]
        data = raw if raw is not None else json.dumps(body)
        response = client.post(
            f"/v1/{path}",
            data=data,
            content_type="application/json",
            HTTP_AUTHORIZATION=basic(key or write_key),
            **headers,
        )
        inbox_drain()  # what the ingest worker does once the request is accepted
        return response

    return _send


@pytest.fixture
def settle(eager_tasks, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    """`with settle():` runs what commits queue (the ingest worker's drain, the stages'
    recomputation…) in-process when the block ends, as the workers would after commit."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def track(event: str, message_id: str, **fields: object) -> dict[str, object]:
    return {"type": "track", "event": event, "messageId": message_id, **fields}


def test_it_stores_a_track_call_on_a_new_anonymous_contact(send, settle, world) -> None:
    with settle():
        response = send(
            "track",
            track("Product Viewed", "m1", anonymousId="anon-1", properties={"sku": "TENT-2"}),
        )
    assert response.status_code == 200
    assert response.json() == {"success": True}
    event = Event.objects.get(message_id="m1")
    assert (event.tenant, event.name, event.properties) == (
        world.acme,
        "Product Viewed",
        {"sku": "TENT-2"},
    )
    assert event.contact.recently_viewed == ["TENT-2"]
    assert event.contact.lifecycle_stage == LifecycleStage.AWARENESS
    assert not Event.objects.filter(name=STAGE_CHANGED).exists()  # it starts there


def test_it_stores_a_repeated_message_id_once(send) -> None:
    for _ in range(3):
        assert send("track", track("Product Viewed", "same", anonymousId="a")).status_code == 200
    batch = {
        "batch": [
            track("Product Viewed", "same", anonymousId="a"),
            track("Cart Viewed", "new", anonymousId="a"),
        ]
    }
    assert send("batch", batch).status_code == 200
    assert Event.objects.filter(message_id="same").count() == 1
    assert Event.objects.count() == 2


def test_it_joins_anonymous_browsing_to_the_known_customer(send, settle) -> None:
    def send_and_settle(*args, **kwargs):  # type: ignore[no-untyped-def]
        with settle():  # each request committed and followed up on its own
            return send(*args, **kwargs)

    _join_browsing_to_the_known_customer(send_and_settle)

    assert Contact.objects.count() == 1
    ann = Contact.objects.get()
    assert (ann.user_id, ann.email, ann.first_name) == ("u-42", "ann@example.com", "Ann")
    sent = ann.events.exclude(name=STAGE_CHANGED).values_list("message_id", flat=True)
    assert set(sent) == {"p1", "t1", "i0", "t0", "i1"}
    assert set(Identity.objects.values_list("kind", "value")) == {
        ("user_id", "u-42"),
        ("anonymous_id", "browser-1"),
    }
    assert [item["sku"] for item in ann.cart] == ["BOOT"]
    assert ann.lifecycle_stage == LifecycleStage.ONBOARDING  # a first order, just now
    stage_events = ann.events.filter(name=STAGE_CHANGED).order_by("pk")
    assert [(p["from"], p["to"]) for p in stage_events.values_list("properties", flat=True)] == [
        ("awareness", "acquisition"),
        ("acquisition", "onboarding"),
    ]


def _join_browsing_to_the_known_customer(send) -> None:  # type: ignore[no-untyped-def]
    send("page", {"anonymousId": "browser-1", "messageId": "p1", "name": "Home"})
    send(
        "track",
        track(
            "Product Added",
            "t1",
            anonymousId="browser-1",
            properties={"sku": "BOOT", "price": 99.5},
        ),
    )
    # The customer was known before, from another device.
    send("identify", {"userId": "u-42", "messageId": "i0", "traits": {"email": "Ann@Example.com"}})
    send("track", track("Order Completed", "t0", userId="u-42", properties={"total": 10}))
    # Now the browser signs in.
    send(
        "identify",
        {
            "userId": "u-42",
            "anonymousId": "browser-1",
            "messageId": "i1",
            "traits": {"firstName": "Ann"},
        },
    )


def test_it_lets_alias_join_two_ids(send) -> None:
    send("track", track("Product Viewed", "a1", anonymousId="old-id"))
    send("track", track("Product Viewed", "a2", userId="new-user"))
    assert (
        send("alias", {"previousId": "old-id", "userId": "new-user", "messageId": "al"}).status_code
        == 200
    )
    assert Contact.objects.count() == 1
    assert Event.objects.filter(contact=Contact.objects.get()).count() == 3


def test_it_keeps_a_shared_browser_apart(send) -> None:
    send("identify", {"userId": "ann", "anonymousId": "family-pc", "messageId": "1"})
    send("identify", {"userId": "bob", "anonymousId": "family-pc", "messageId": "2"})
    assert set(Contact.objects.values_list("user_id", flat=True)) == {"ann", "bob"}


def test_it_stores_a_batch_whole_and_follows_the_cart(send) -> None:
    sku = {"sku": "TENT", "price": "199.00"}
    batch = {
        "batch": [
            track("Product Added", "b1", anonymousId="x", properties=sku),
            track("Product Added", "b2", anonymousId="x", properties={**sku, "quantity": 2}),
            track("Product Added to Wishlist", "b3", anonymousId="x", properties={"sku": "STOVE"}),
            track("Product Removed", "b4", anonymousId="x", properties=sku),
        ]
    }
    assert send("batch", batch).status_code == 200
    contact = Contact.objects.get()
    assert [(i["sku"], i["quantity"], i["price"]) for i in contact.cart] == [("TENT", 2, "199.00")]
    assert contact.wishlist == ["STOVE"]
    send("track", track("Order Completed", "b5", anonymousId="x"))
    contact.refresh_from_db()
    assert contact.cart == []


def test_it_updates_the_profile_from_identify_traits(send, settle) -> None:
    with settle():
        _identify_zoe(send)
    zoe = Contact.objects.get()
    assert (zoe.first_name, zoe.last_name, zoe.timezone) == ("Zoe", "Kim", "Asia/Seoul")
    assert (zoe.birthday_month, zoe.birthday_day, zoe.birth_year) == (2, 28, 1990)
    assert zoe.attributes == {"plan": "gold"}
    assert zoe.lifecycle_stage == LifecycleStage.ACQUISITION


def _identify_zoe(send) -> None:  # type: ignore[no-untyped-def]
    send(
        "identify",
        {
            "userId": "u1",
            "messageId": "i",
            "traits": {
                "name": "Zoe Kim",
                "email": "zoe@example.com",
                "birthday": "1990-02-28",
                "timezone": "Asia/Seoul",
                "plan": "gold",
            },
        },
    )


def test_it_corrects_the_client_clock_by_sent_at(send) -> None:
    server_now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    with time_machine.travel(server_now, tick=False):
        # The client's clock runs 1 hour behind: it sent at 11:00 its time.
        send(
            "track",
            track(
                "Product Viewed",
                "skew",
                anonymousId="a",
                timestamp="2026-11-23T10:59:00Z",
                sentAt="2026-11-23T11:00:00Z",
            ),
        )
    event = Event.objects.get(message_id="skew")
    assert event.received_at == server_now
    assert event.occurred_at == server_now - timedelta(minutes=1)


def test_it_announces_recorded_events_after_commit(
    send, world, django_capture_on_commit_callbacks, monkeypatch
) -> None:
    # The callbacks run for real below: the worker's wake-up would reach the real broker.
    monkeypatch.setattr("audience.inbox.inbox_wake", lambda: None)
    heard: list[dict[str, object]] = []

    def listener(**kwargs: object) -> None:
        heard.append(kwargs)

    events_recorded.connect(listener)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            batch = [track("A", "s1", anonymousId="a"), track("B", "s2", anonymousId="a")]
            send("batch", {"batch": batch})
            assert heard == []  # not before the transaction commits
        with django_capture_on_commit_callbacks(execute=True):
            send("track", track("A", "s1", anonymousId="a"))  # nothing new to announce
    finally:
        events_recorded.disconnect(listener)
    assert len(heard) == 1  # the duplicate announced nothing
    assert heard[0]["tenant"] == world.acme
    stored = Event.objects.filter(message_id__in=["s1", "s2"])
    assert sorted(heard[0]["event_ids"]) == sorted(stored.values_list("pk", flat=True))
    assert heard[0]["contact_ids"] == [Contact.objects.get().pk]


def test_it_accepts_gzip_bodies_like_the_sdks_send(send) -> None:
    body = gzip.compress(json.dumps(track("Zipped", "z", anonymousId="a")).encode())
    response = send("track", None, raw=body, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 200
    assert Event.objects.filter(name="Zipped").exists()


def test_it_keeps_tenants_apart(send, world) -> None:
    globex_key = services.api_key_create(tenant=world.globex, kind="write", name="g")[1]
    send("identify", {"userId": "same-id", "messageId": "x", "traits": {"email": "a@acme.example"}})
    send(
        "identify",
        {"userId": "same-id", "messageId": "x", "traits": {"email": "g@globex.example"}},
        key=globex_key,
    )
    assert Event.objects.filter(message_id="x").count() == 2  # message ids are per tenant
    acme = Contact.objects.get(tenant=world.acme)
    globex = Contact.objects.get(tenant=world.globex)
    assert (acme.email, globex.email) == ("a@acme.example", "g@globex.example")


OVERSIZED = {
    "type": "track",
    "event": "Big",
    "anonymousId": "a",
    "properties": {"blob": "x" * 33_000},
}


@pytest.mark.parametrize(
    ("path", "body", "status", "expected"),
    [
        ("track", "not json", 400, {"message": "The body is not valid JSON"}),
        ("track", "[]", 400, {"message": "A message must be a JSON object."}),
        (
            "track",
            {"anonymousId": "a"},
            400,
            {"field": "event", "message": "track needs an event name."},
        ),
        (
            "track",
            {"event": "X"},
            400,
            {"field": "userId", "message": "Every message needs a userId or an anonymousId."},
        ),
        (
            "track",
            {"event": "X", "userId": ["a"]},
            400,
            {"field": "userId", "message": "userId must be a string."},
        ),
        ("track", {"event": "X", "userId": "u", "properties": [1]}, 400, {"field": "properties"}),
        (
            "track",
            {"event": "X", "userId": "u", "timestamp": "yesterday"},
            400,
            {"field": "timestamp"},
        ),
        (
            "track",
            {"event": "X", "userId": "u", "timestamp": "2026-11-23T10:00:00"},
            400,
            {"message": "timestamp needs a time zone offset (e.g. Z or +02:00)."},
        ),
        ("track", {"event": "X", "userId": "u", "messageId": 7}, 400, {"field": "messageId"}),
        ("track", OVERSIZED, 400, {"message": "The body is larger than 32768 bytes."}),
        ("identify", {"userId": "u", "traits": {"email": "nope"}}, 400, {"field": "traits.email"}),
        (
            "identify",
            {"userId": "u", "traits": {"birthday": "1990-02-30"}},
            400,
            {"field": "traits.birthday"},
        ),
        (
            "identify",
            {"userId": "u", "traits": {"timezone": "Moon/Base"}},
            400,
            {"field": "traits.timezone"},
        ),
        (
            "identify",
            {"userId": "u", "traits": {"phone": "+1 " + "5" * 60}},
            400,
            {"field": "traits.phone", "message": "traits.phone is longer than 40 characters."},
        ),
        (
            "identify",
            {"userId": "u", "traits": {"email": "a" * 60 + "@" + "b" * 60 + ".b" * 70 + ".com"}},
            400,
            {"field": "traits.email", "message": "traits.email is longer than 254 characters."},
        ),
        (
            "track",
            {"event": "X", "userId": "u", "properties": {"note": "a\u0000b"}},
            400,
            {"field": "properties.note", "message": "properties.note contains the NUL character"},
        ),
        ("alias", {"userId": "u"}, 400, {"field": "previousId"}),
        ("batch", {"batch": []}, 400, {"message": "batch is empty."}),
        ("batch", {"batch": "x"}, 400, {"field": "batch"}),
        (
            "batch",
            {"batch": [track("Fine", "f1", anonymousId="a"), {"type": "purchase", "userId": "u"}]},
            400,
            {"index": 1, "field": "type"},
        ),
        (
            "batch",
            {"batch": [track("Fine", "f3", anonymousId="a"), {"type": "group", "userId": "u"}]},
            400,
            {"index": 1, "field": "groupId"},
        ),
        (
            "batch",
            {"batch": [track("Fine", "f2", anonymousId="a"), {"type": "track", "userId": "u"}]},
            400,
            {"index": 1, "field": "event"},
        ),
        ("batch", {"batch": [OVERSIZED]}, 400, {"index": 0, "message": "The message is"}),
    ],
)
def test_it_refuses_bad_input_specifically_and_stores_nothing(
    send, path, body, status, expected
) -> None:
    response = send(path, None, raw=body.encode()) if isinstance(body, str) else send(path, body)
    assert response.status_code == status
    error = response.json()
    assert error["success"] is False
    for key, value in expected.items():
        if key == "message":
            assert error["message"].startswith(value), error
        else:
            assert error[key] == value, error
    assert not Event.objects.exists()
    assert not Contact.objects.exists()


def test_it_refuses_a_batch_over_500_kb(send) -> None:
    messages = [
        track("E", f"m{i}", anonymousId="a", properties={"pad": "x" * 20_000}) for i in range(30)
    ]
    response = send("batch", {"batch": messages})
    assert response.status_code == 400
    assert response.json()["message"] == "The body is larger than 512000 bytes."
    assert not Event.objects.exists()


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "Send the write key as the user name of HTTP Basic auth."),
        ("secret", "This endpoint needs a write (wf_wk_…) key."),
        ("revoked", "This API key has been revoked."),
        ("garbage", "Malformed API key."),
    ],
)
def test_it_refuses_bad_write_keys(client, world, header, message) -> None:
    keys = {
        "secret": services.api_key_create(tenant=world.acme, kind="secret", name="s")[1],
        "garbage": "wf_wk_nothing",
    }
    revoked, keys["revoked"] = services.api_key_create(tenant=world.acme, kind="write", name="r")
    services.api_key_revoke(tenant=world.acme, api_key=revoked)
    extra = {"HTTP_AUTHORIZATION": basic(keys[header])} if header else {}
    response = client.post(
        "/v1/track",
        data=json.dumps(track("X", "m", userId="u")),
        content_type="application/json",
        **extra,
    )
    assert response.status_code == 401
    assert response.json()["message"] == message
    assert not Event.objects.exists()


def test_it_only_accepts_post(client) -> None:
    assert client.get("/v1/track").status_code == 405


def test_it_takes_the_write_key_from_the_body_for_send_beacon(client, write_key) -> None:
    # navigator.sendBeacon cannot set headers: text/plain body with writeKey inside.
    body = {"writeKey": write_key, **track("Beaconed", "bk", anonymousId="a")}
    response = client.post("/v1/track", data=json.dumps(body), content_type="text/plain")
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "*"
    inbox_drain()
    assert Event.objects.filter(name="Beaconed").exists()


def test_it_answers_cors_preflight_for_browsers(client) -> None:
    response = client.options("/v1/batch", HTTP_ORIGIN="https://shop.example")
    assert response.status_code == 204
    assert "Authorization" in response["Access-Control-Allow-Headers"]
    assert "POST" in response["Access-Control-Allow-Methods"]


def test_it_keeps_a_pages_category(send) -> None:
    send("page", {"anonymousId": "a", "messageId": "pc", "name": "Boots", "category": "Shop"})
    assert Event.objects.get(message_id="pc").properties == {"category": "Shop"}


def test_it_merges_within_one_batch_and_keeps_every_event(send, settle) -> None:
    send("identify", {"userId": "u-7", "messageId": "known", "traits": {"email": "k@example.com"}})
    batch = [
        track("Product Viewed", "b1", anonymousId="fresh", properties={"sku": "A"}),
        track("Product Added", "b2", anonymousId="fresh", properties={"sku": "A"}),
        {"type": "identify", "userId": "u-7", "anonymousId": "fresh", "messageId": "b3"},
        track("Order Completed", "b4", userId="u-7"),
    ]
    with settle():
        assert send("batch", {"batch": batch}).status_code == 200
    contact = Contact.objects.get()
    sent = contact.events.exclude(name=STAGE_CHANGED).values_list("message_id", flat=True)
    assert set(sent) == {
        "known",
        "b1",
        "b2",
        "b3",
        "b4",
    }
    assert contact.recently_viewed == ["A"] and contact.cart == []
    assert contact.lifecycle_stage == LifecycleStage.ONBOARDING
