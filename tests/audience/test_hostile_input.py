"""Hostile and careless input at the tracking doors (/v1/*) and the REST API (/api/v1/*): what
the database cannot store or read back is refused with a 400 in the door's JSON shape, naming
the field, and nothing is stored. Values stored before the edge refused them no longer break
reads (the repair migration)."""

from __future__ import annotations

import importlib
import logging
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test import Client

from audience.inbox import inbox_drain
from audience.models import Contact, Event, InboxBatch
from tenants import services
from tests.factories import basic

pytestmark = pytest.mark.django_db

DEEP = b'{"a":' * 40 + b"1" + b"}" * 40  # 40 levels: the limit is 32


def call(fields: bytes, *, kind: bytes = b"track") -> bytes:
    base = b'"type":"%s","event":"X","anonymousId":"a-1"' % kind
    return b"{" + base + (b"," + fields if fields else b"") + b"}"


@pytest.fixture
def write_key(world) -> str:  # type: ignore[no-untyped-def]
    return services.api_key_create(tenant=world.acme, kind="write", name="site")[1]


@pytest.fixture
def secret_key(world) -> str:  # type: ignore[no-untyped-def]
    return services.api_key_create(tenant=world.acme, kind="secret", name="app")[1]


def nothing_stored() -> bool:
    return not (Event.objects.exists() or Contact.objects.exists() or InboxBatch.objects.exists())


# (name, path, raw body, the field named, a part of the message)
TRACKING = [
    (
        "far future with a negative offset",
        "track",
        call(b'"timestamp":"9999-12-31T23:59:59-12:00"'),
        "timestamp",
        "outside the years 1900 to 9998",
    ),
    (
        "year 1 with +14:00 (year 0 in UTC)",
        "track",
        call(b'"timestamp":"0001-01-01T00:00:00+14:00"'),
        "timestamp",
        "outside the years",
    ),
    ("six-digit year", "track", call(b'"timestamp":"+275760-09-13T00:00:00Z"'), "timestamp", ""),
    ("sentAt at year 1", "track", call(b'"sentAt":"0001-01-01T00:00:00Z"'), "sentAt", "outside"),
    (
        "originalTimestamp in 9999",
        "track",
        call(b'"originalTimestamp":"9999-12-31T23:59:59-12:00"'),
        "originalTimestamp",
        "outside",
    ),
    (
        "offset beyond +15:59",
        "track",
        call(b'"timestamp":"2026-03-01T12:00:00+16:00"'),
        "timestamp",
        "beyond ±15:59",
    ),
    (
        "offset of -23:59",
        "track",
        call(b'"timestamp":"2026-03-01T12:00:00-23:59"'),
        "timestamp",
        "beyond ±15:59",
    ),
    ("impossible date", "track", call(b'"timestamp":"2026-02-30T00:00:00Z"'), "timestamp", ""),
    ("deep nesting", "track", call(b'"properties":' + DEEP), "properties.a.a.a", "too deep"),
    (
        "deep arrays",
        "track",
        call(b'"properties":{"a":' + b"[" * 300 + b"]" * 300 + b"}"),
        "properties.a[0][0]",
        "too deep",
    ),
    ("NUL in a value", "track", call(b'"properties":{"note":"a\\u0000b"}'), "properties.note", ""),
    ("NUL in a key", "track", call(b'"properties":{"a\\u0000":1}'), "properties.a\\x00", "key"),
    ("NUL in an id", "track", b'{"event":"X","userId":"u\\u0000"}', "userId", "NUL"),
    (
        "NUL in context",
        "track",
        call(b'"context":{"page":{"url":"\\u0000"}}'),
        "context.page.url",
        "",
    ),
    ("raw NUL byte", "track", call(b'"properties":{"note":"a\x00b"}'), None, "not valid JSON"),
    ("lone surrogate", "track", call(b'"properties":{"n":"\\ud800"}'), None, "not valid JSON"),
    ("lone surrogate key", "track", call(b'"properties":{"\\udc00":1}'), None, "not valid JSON"),
    ("raw surrogate bytes", "track", call(b'"properties":{"n":"\xed\xa0\x80"}'), None, "JSON"),
    ("surrogate event name", "track", b'{"event":"X\\udfff","userId":"u"}', None, "JSON"),
    ("infinity", "track", call(b'"properties":{"n":1e999}'), None, "not valid JSON"),
    (
        "integer beyond 64 bits",
        "track",
        call(b'"properties":{"n":[1,123456789012345678901234567890]}'),
        "properties.n[1]",
        "64-bit",
    ),
    (
        "cart quantity beyond 64 bits",
        "track",
        b'{"event":"Product Added","userId":"u","properties":{"sku":"S","quantity":1e30}}',
        "properties.quantity",
        "beyond 1,000,000",
    ),
    (
        "birthday in year 1",
        "identify",
        b'{"userId":"u","traits":{"birthday":"0001-01-01T00:00:00+14:00"}}',
        "traits.birthday",
        "outside",
    ),
    (
        "one bad call in a batch",
        "batch",
        b'{"batch":[' + call(b"") + b"," + call(b'"properties":' + DEEP) + b"]}",
        "batch[1].properties.a",
        "too deep",
    ),
    (
        "a bad sentAt for the whole batch",
        "batch",
        b'{"sentAt":"9999-12-31T23:59:59-12:00","batch":[' + call(b"") + b"]}",
        "sentAt",
        "outside",
    ),
    (
        "push subscription nested too deep",
        "push/subscribe",
        b'{"anonymousId":"a","context":' + DEEP + b"}",
        "context.a.a",
        "too deep",
    ),
    (
        "push subscription with NUL",
        "push/subscribe",
        b'{"anonymousId":"a","subscription":{"endpoint":"\\u0000"}}',
        "subscription.endpoint",
        "NUL",
    ),
]


@pytest.mark.parametrize(
    ("path", "raw", "field", "message"),
    [case[1:] for case in TRACKING],
    ids=[case[0] for case in TRACKING],
)
def test_the_tracking_doors_refuse_what_cannot_be_stored_naming_the_field(
    client, write_key, path, raw, field, message
) -> None:
    response = client.post(
        f"/v1/{path}",
        data=raw,
        content_type="application/json",
        HTTP_AUTHORIZATION=basic(write_key),
    )
    inbox_drain()
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["success"] is False and body["code"] == "invalid"
    assert message in body["message"]
    if field is None:
        assert "field" not in body
    else:
        assert body["field"].startswith(field)
    if path == "batch":  # the first bad call (the batch's own sentAt applies to each)
        assert body["index"] == (1 if field.startswith("batch[") else 0)
    assert response["Access-Control-Allow-Origin"] == "*"
    assert nothing_stored()


@pytest.mark.parametrize(
    "timestamp",
    [
        "2026-03-01T12:00:00+15:59",
        "2026-03-01T12:00:00-15:59",
        "1900-01-01T00:00:00Z",
        "9998-12-31T23:59:59Z",
    ],
)
def test_a_time_at_the_edge_of_what_is_allowed_is_stored_and_read_back(
    client, write_key, secret_key, timestamp
) -> None:
    response = client.post(
        "/v1/track",
        data=call(b'"messageId":"m1","timestamp":"%s"' % timestamp.encode()),
        content_type="application/json",
        HTTP_AUTHORIZATION=basic(write_key),
    )
    assert response.status_code == 200
    drained = inbox_drain()
    assert drained.failed == 0  # 200 means stored: never set aside by the worker
    event = Event.objects.get(message_id="m1")
    assert event.occurred_at == datetime.fromisoformat(timestamp)
    events = client.get("/api/v1/events/", HTTP_AUTHORIZATION=f"Bearer {secret_key}")
    assert events.status_code == 200 and len(events.json()["results"]) == 1


def test_a_clock_skew_that_would_leave_the_calendar_keeps_the_timestamp(client, write_key) -> None:
    # Each time is within the window; correcting one by the other would not be.
    raw = call(
        b'"messageId":"m1","timestamp":"9998-12-31T00:00:00Z","sentAt":"1900-01-01T00:00:00Z"'
    )
    response = client.post(
        "/v1/track", data=raw, content_type="application/json", HTTP_AUTHORIZATION=basic(write_key)
    )
    assert response.status_code == 200
    assert inbox_drain().failed == 0
    assert Event.objects.get().occurred_at == datetime(9998, 12, 31, tzinfo=UTC)


def test_a_huge_quantity_stored_before_does_not_break_later_cart_events(
    client, write_key, world
) -> None:
    contact = Contact.objects.create(
        tenant=world.acme, user_id="u", cart=[{"sku": "S", "quantity": 10**30}]
    )
    contact.identities.create(tenant=world.acme, kind="user_id", value="u")
    for n, event in enumerate(["Product Added", "Product Added", "Product Removed"]):
        raw = b'{"event":"%s","userId":"u","messageId":"m%d","properties":{"sku":"S"}}' % (
            event.encode(),
            n,
        )
        response = client.post(
            "/v1/track",
            data=raw,
            content_type="application/json",
            HTTP_AUTHORIZATION=basic(write_key),
        )
        assert response.status_code == 200
        assert inbox_drain().failed == 0
    contact.refresh_from_db()
    assert contact.cart[0]["quantity"] == 999_999  # clamped to 1,000,000, plus one, less one
    assert Event.objects.count() == 3


# --- REST ------------------------------------------------------------------------------------

REST_BODIES = [
    ("deep attributes", b'{"user_id":"u","attributes":' + DEEP + b"}", "attributes.a.a", "deep"),
    ("NUL in an attribute", b'{"user_id":"u","attributes":{"n":"\\u0000"}}', "attributes.n", ""),
    ("NUL in a key", b'{"user_id":"u","attributes":{"\\u0000":1}}', "attributes.\\x00", "key"),
    ("NUL in a name", b'{"user_id":"u","first_name":"A\\u0000"}', "first_name", "NUL"),
    ("lone surrogate", b'{"user_id":"u","first_name":"\\ud800"}', None, "not valid JSON"),
    ("surrogate key", b'{"user_id":"u","attributes":{"\\udfff":1}}', None, "not valid JSON"),
    ("infinity", b'{"user_id":"u","attributes":{"n":1e999}}', None, "not valid JSON"),
    (
        "huge integer",
        b'{"user_id":"u","birth_year":123456789012345678901234567890}',
        "birth_year",
        "",
    ),
    ("raw NUL byte", b'{"user_id":"u\x00"}', None, "not valid JSON"),
]


@pytest.mark.parametrize(
    ("raw", "field", "message"),
    [case[1:] for case in REST_BODIES],
    ids=[case[0] for case in REST_BODIES],
)
def test_the_rest_api_refuses_bodies_that_cannot_be_stored_naming_the_field(
    client, secret_key, raw, field, message
) -> None:
    response = client.post(
        "/api/v1/contacts/",
        data=raw,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {secret_key}",
    )
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert message in str(error)
    if field is not None:
        assert any(name.startswith(field) for name in error["fields"]), error
    assert not Contact.objects.exists()


REST_QUERIES = [
    ("events/?since=2026-02-30T00:00:00Z", "since"),
    ("events/?since=2026-02-30", "since"),
    ("events/?until=99999-01-01T00:00:00Z", "until"),
    ("events/?since=0001-01-01T00:00:00%2B14:00", "since"),
    ("events/?since=2026-03-01T00:00:00%2B23:00", "since"),
    ("events/?since=%00", "since"),
    ("events/?name=a%00b", "name"),
    ("contacts/?search=%00", "search"),
    ("contacts/?email=x%00", "email"),
    ("products/?category=%00", "category"),
    ("messages/?status=%00", "status"),
]


@pytest.mark.parametrize(("query", "field"), REST_QUERIES)
def test_the_rest_api_refuses_impossible_filters_naming_the_parameter(
    client, secret_key, query, field
) -> None:
    response = client.get(f"/api/v1/{query}", HTTP_AUTHORIZATION=f"Bearer {secret_key}")
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]


def test_bad_utf8_in_a_query_string_is_read_as_a_replacement_character(client, secret_key) -> None:
    response = client.get(
        "/api/v1/contacts/?search=%ED%A0%80", HTTP_AUTHORIZATION=f"Bearer {secret_key}"
    )
    assert response.status_code == 200


def test_a_nul_in_a_query_string_of_a_page_is_a_400_not_a_500(login, world) -> None:
    response = login(world.alice).get("/t/acme/contacts/?q=%00")
    assert response.status_code == 400


# --- Unexpected errors ------------------------------------------------------------------------


def test_an_unexpected_api_error_is_the_documented_json_and_is_logged(
    world, secret_key, monkeypatch, caplog
) -> None:
    def broken(**kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("audience.selectors.contact_list", broken)
    client = Client(raise_request_exception=False)
    with caplog.at_level(logging.ERROR, logger="django.request"):
        response = client.get("/api/v1/contacts/", HTTP_AUTHORIZATION=f"Bearer {secret_key}")
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "error": {"code": "server_error", "message": "Something went wrong on our side."}
    }
    assert any("boom" in str(r.exc_info) for r in caplog.records if r.exc_info)


def test_an_unexpected_tracking_error_is_segment_shaped(world, write_key, monkeypatch) -> None:
    def broken(**kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("audience.ingest_views.inbox_accept", broken)
    client = Client(raise_request_exception=False)
    response = client.post(
        "/v1/track",
        data=call(b""),
        content_type="application/json",
        HTTP_AUTHORIZATION=basic(write_key),
    )
    assert response.status_code == 500
    assert response.json() == {
        "success": False,
        "code": "server_error",
        "message": "Something went wrong on our side.",
    }
    assert response["Access-Control-Allow-Origin"] == "*"


def test_an_unknown_tracking_path_is_a_segment_shaped_404(client) -> None:
    response = client.post("/v1/nowhere", data=b"{}", content_type="application/json")
    assert response.status_code == 404
    assert response.json()["success"] is False


# --- Values stored before the edge refused them -------------------------------------------------


def test_a_time_stored_before_the_fix_no_longer_breaks_reads(
    world, login, secret_key, client, write_key
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("only PostgreSQL could store such a time (Django's UTC conversion failed)")
    contact = Contact.objects.create(tenant=world.acme, user_id="u", email="u@example.com")
    contact.identities.create(tenant=world.acme, kind="user_id", value="u")
    with connection.cursor() as cursor:  # what the old edge let through: year 10000 in UTC
        cursor.execute(
            "INSERT INTO audience_event (tenant_id, contact_id, type, name, properties, context,"
            " occurred_at, received_at, message_id, source) VALUES"
            " (%s, %s, 'track', 'X', '{}', '{}', '10000-01-01 11:59:59+00', now(), 'bad', 'http')",
            [world.acme.pk, contact.pk],
        )
        cursor.execute(
            "UPDATE audience_contact SET last_seen_at = '10000-01-01 11:59:59+00' WHERE id = %s",
            [contact.pk],
        )
    repair = importlib.import_module("audience.migrations.0010_repair_unreadable_times").repair
    repair(connection)

    auth = {"HTTP_AUTHORIZATION": f"Bearer {secret_key}"}
    assert client.get("/api/v1/contacts/", **auth).status_code == 200
    assert client.get("/api/v1/events/", **auth).status_code == 200
    ui = login(world.alice)
    assert ui.get("/t/acme/contacts/").status_code == 200
    export = ui.get("/t/acme/contacts/export.csv")
    assert b"u@example.com" in b"".join(export.streaming_content)
    # And the contact's next call is recorded, not set aside.
    response = client.post(
        "/v1/track",
        data=b'{"event":"Y","userId":"u"}',
        content_type="application/json",
        HTTP_AUTHORIZATION=basic(write_key),
    )
    assert response.status_code == 200
    assert inbox_drain().failed == 0
    assert Event.objects.filter(contact=contact).count() == 2
