"""Web push end to end: browsers subscribe through /v1/push/* with a write key, and the outbox
sends to a real push service on loopback (tests/messaging/push_receiver.py) that checks the
VAPID signature and decrypts each message with the fake browser's keys, as a browser would."""

from __future__ import annotations

import ipaddress
import json
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils.timezone import now

from audience.models import Consent, Contact, Event, Identity
from messaging import outbox
from messaging.models import Channel, Delivery, PushSubscription, SenderIdentity, Template
from messaging.outbox import SendReport
from messaging.push import push_send_test, push_subscription_save
from messaging.push_http import Answer, Post, Poster
from messaging.selectors import sender_identity_get
from messaging.services import delivery_create, sender_identity_update
from tests.factories import api_key, basic
from tests.messaging.push_receiver import DROP, BrowserSubscription, PushReceiver, b64url

pytestmark = pytest.mark.django_db

TARGET = "https://shop.example/tents/trail-2p?utm_source=push"
BUY = "https://shop.example/cart/add/TEN-01"


@pytest.fixture(autouse=True)
def loopback_allowed(settings: Any) -> None:
    # The push receiver listens on loopback, which the outbound guard refuses by default.
    settings.WAYFARER_OUTBOUND_ALLOW_PRIVATE = True


@pytest.fixture
def receiver() -> Iterator[PushReceiver]:
    with PushReceiver() as running:
        yield running


@pytest.fixture
def push_template(world: Any) -> Template:
    return Template.objects.create(
        tenant=world.acme,
        name="Back in stock",
        channel=Channel.PUSH,
        title="{{ contact.first_name }}, it's back",
        body="The Trail Tent 2P is in stock again.",
        icon_url="https://shop.example/icon.png",
        image_url="https://shop.example/tent.jpg",
        target_url=TARGET,
        actions=[{"action": "buy", "title": "Buy now", "url": BUY}],
    )


@pytest.fixture
def mara(world: Any) -> Contact:
    return Contact.objects.create(tenant=world.acme, first_name="Mara", email="mara@example.com")


def subscribe(receiver: PushReceiver, contact: Contact) -> BrowserSubscription:
    """A browser of the contact subscribed with its tenant's VAPID key."""
    public_key = sender_identity_get(tenant=contact.tenant).vapid_public_key
    browser = receiver.subscribe(application_server_key=public_key)
    push_subscription_save(
        tenant=contact.tenant,
        contact=contact,
        endpoint=browser.endpoint,
        p256dh=browser.p256dh,
        auth=browser.auth,
        user_agent="Mozilla/5.0 (test)",
    )
    return browser


def decide(contact: Contact, template: Template, key: str = "k1") -> Delivery:
    delivery, _ = delivery_create(
        tenant=contact.tenant,
        contact=contact,
        template=template,
        source="test",
        idempotency_key=key,
    )
    return delivery


def send() -> SendReport:
    return outbox.deliveries_send(channel=Channel.PUSH)


@pytest.fixture
def write_keys(world: Any) -> dict[str, str]:
    return {
        "acme": api_key(world.acme, kind="write")[1],
        "globex": api_key(world.globex, kind="write")[1],
    }


def post(client: Any, path: str, body: object, key: str) -> Any:
    return client.post(
        f"/v1/push/{path}",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=basic(key),
    )


# --- Sending ---------------------------------------------------------------------------------


def test_it_sends_a_personalised_push_that_arrives_decrypted_with_tracked_links(
    world: Any, receiver: PushReceiver, push_template: Template, mara: Contact, client: Any
) -> None:
    browser = subscribe(receiver, mara)
    delivery = decide(mara, push_template)

    report = send()

    assert (report.sent, report.failed, report.deferred) == (1, 0, 0)
    [message] = receiver.messages(browser)
    assert message["title"] == "Mara, it's back"
    assert message["body"] == "The Trail Tent 2P is in stock again."
    assert message["icon"] == "https://shop.example/icon.png"
    assert message["image"] == "https://shop.example/tent.jpg"
    assert message["delivery"] == str(delivery.public_id)
    assert message["tag"] == f"wayfarer-{delivery.public_id}"
    assert [(a["action"], a["title"]) for a in message["actions"]] == [("buy", "Buy now")]
    # Clicks go through Wayfarer, which records them and redirects to the shop.
    for url, destination in ((message["url"], TARGET), (message["actions"][0]["url"], BUY)):
        assert url.startswith(f"{settings.SITE_URL}/m/pc/")
        assert parse_qs(urlsplit(url).query)["u"] == [destination]
        response = client.get(url.removeprefix(settings.SITE_URL))
        assert (response.status_code, response["Location"]) == (302, destination)
    assert Event.objects.filter(tenant=world.acme, contact=mara, name="Push Clicked").count() == 2

    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.SENT
    assert delivery.handed_over_at is not None
    assert delivery.provider_id.startswith(f"{receiver.origin}/message/")  # the Location
    assert Event.objects.filter(tenant=world.acme, contact=mara, name="Push Sent").count() == 1


def _self_signed(tmp_path: Path) -> tuple[str, str]:
    """A certificate for 127.0.0.1 and its key, as files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "push.test")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now() - timedelta(days=1))
        .not_valid_after(now() + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "push.pem", tmp_path / "push.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_file), str(key_file)


def test_it_posts_over_https_and_checks_the_push_services_certificate(
    world: Any, push_template: Template, mara: Contact, tmp_path: Path, monkeypatch: Any
) -> None:
    cert_file, key_file = _self_signed(tmp_path)
    with PushReceiver(tls=(cert_file, key_file)) as service:
        browser = subscribe(service, mara)
        delivery = decide(mara, push_template)

        # A certificate no trusted authority signed: refused, and tried again later.
        monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
        monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
        assert send().deferred == 1
        assert service.attempts == []
        delivery.refresh_from_db()
        assert "SSL" in delivery.reason

        # Trusted the way requests is told to trust one.
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", cert_file)
        with time_machine.travel(delivery.not_before + timedelta(seconds=1)):
            assert send().sent == 1
        assert service.origin.startswith("https://")
        assert [m["title"] for m in service.messages(browser)] == ["Mara, it's back"]


def test_it_signs_with_the_tenants_vapid_key_and_says_how_to_reach_the_sender(
    world: Any, receiver: PushReceiver, push_template: Template, mara: Contact
) -> None:
    sender_identity_update(tenant=world.acme, sender_email="news@acme.example", verified=True)
    browser = subscribe(receiver, mara)
    delivery = decide(mara, push_template)

    send()

    [attempt] = receiver.attempts_for(browser)
    assert attempt.status == 201  # the receiver verified the signature with this key
    assert attempt.sender_key == sender_identity_get(tenant=world.acme).vapid_public_key
    assert attempt.claims["sub"] == "mailto:news@acme.example"
    assert attempt.claims["aud"] == receiver.origin
    assert int(attempt.headers["ttl"]) == 24 * 3600
    # A retry after an unanswered POST replaces the copy the service still holds.
    assert attempt.headers["topic"] == delivery.public_id.hex


def test_it_falls_back_to_the_site_sender_address_for_the_vapid_subject(
    receiver: PushReceiver, push_template: Template, mara: Contact
) -> None:
    browser = subscribe(receiver, mara)
    decide(mara, push_template)

    send()

    [attempt] = receiver.attempts_for(browser)
    assert attempt.claims["sub"] == "mailto:" + settings.DEFAULT_FROM_EMAIL.split("<")[-1].strip(
        ">"
    )


def test_it_sends_to_every_active_subscription_of_the_contact_and_no_other(
    world: Any, receiver: PushReceiver, push_template: Template, mara: Contact
) -> None:
    laptop, phone, old = (subscribe(receiver, mara) for _ in range(3))
    PushSubscription.objects.filter(endpoint=old.endpoint).update(active=False)
    other = subscribe(receiver, Contact.objects.create(tenant=world.acme, first_name="Ola"))
    decide(mara, push_template)

    send()

    assert [len(receiver.messages(b)) for b in (laptop, phone, old, other)] == [1, 1, 0, 0]


def test_it_deactivates_a_subscription_the_push_service_says_is_gone(
    world: Any, receiver: PushReceiver, push_template: Template, mara: Contact
) -> None:
    browser = subscribe(receiver, mara)
    receiver.script(browser, 410)
    delivery = decide(mara, push_template)

    report = send()

    assert (report.sent, report.failed, report.deferred) == (0, 1, 0)
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.FAILED
    assert "expired" in delivery.reason
    subscription = PushSubscription.objects.get(endpoint=browser.endpoint)
    assert not subscription.active
    assert "410" in subscription.deactivated_reason
    assert Event.objects.filter(contact=mara, name="Push Failed").count() == 1
    # The next message to her is not even tried.
    later = decide(mara, push_template, key="k2")
    send()
    later.refresh_from_db()
    assert (later.status, later.reason) == ("skipped", "no active push subscription")
    assert len(receiver.attempts_for(browser)) == 1


def test_it_counts_a_message_sent_when_one_subscription_took_it_and_another_was_gone(
    receiver: PushReceiver, push_template: Template, mara: Contact
) -> None:
    gone, alive = subscribe(receiver, mara), subscribe(receiver, mara)
    receiver.forget(gone)  # the browser unsubscribed: its service answers 404 from now on
    delivery = decide(mara, push_template)

    report = send()

    assert report.sent == 1
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.SENT
    assert len(receiver.messages(alive)) == 1
    assert not PushSubscription.objects.get(endpoint=gone.endpoint).active
    assert PushSubscription.objects.get(endpoint=alive.endpoint).active


@pytest.mark.parametrize("answer", [429, 500, 503, DROP])
def test_it_retries_later_when_the_push_service_is_busy_or_down(
    receiver: PushReceiver, push_template: Template, mara: Contact, answer: int | str
) -> None:
    browser = subscribe(receiver, mara)
    receiver.script(browser, answer, retry_after="120")
    delivery = decide(mara, push_template)

    first = send()

    assert (first.sent, first.failed, first.deferred) == (0, 0, 1)
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.QUEUED
    assert delivery.not_before > now() + timedelta(seconds=25)  # the outbox's backoff
    assert delivery.handed_over_at is None
    assert delivery.reason.startswith("retrying: push service unavailable")
    if answer == 429:
        assert "Retry-After 120" in delivery.reason
    assert PushSubscription.objects.get(endpoint=browser.endpoint).active
    assert send().claimed == 0  # not due yet

    with time_machine.travel(now() + timedelta(seconds=31)):
        again = send()

    assert again.sent == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (Delivery.Status.SENT, 2)
    assert len(receiver.messages(browser)) == 1


def test_it_does_not_retry_when_the_push_service_refuses_the_message_itself(
    receiver: PushReceiver, push_template: Template, mara: Contact
) -> None:
    browser = subscribe(receiver, mara)
    receiver.script(browser, 413)  # payload too large for this service: the same every time
    delivery = decide(mara, push_template)

    send()

    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.FAILED
    assert "413" in delivery.reason
    assert PushSubscription.objects.get(endpoint=browser.endpoint).active


def test_it_skips_a_contact_without_an_active_subscription(
    receiver: PushReceiver, push_template: Template, mara: Contact
) -> None:
    browser = subscribe(receiver, mara)
    PushSubscription.objects.update(active=False)
    delivery = decide(mara, push_template)

    report = send()

    assert report.reasons == {"no active push subscription": 1}
    delivery.refresh_from_db()
    assert (delivery.status, delivery.reason) == ("skipped", "no active push subscription")
    assert receiver.attempts_for(browser) == []


def test_it_loads_a_batchs_subscriptions_once_and_posts_over_kept_alive_connections(
    world: Any, receiver: PushReceiver, push_template: Template, settings: Any
) -> None:
    settings.MESSAGING_PUSH_CONNECTIONS = 2  # two messages at once, each on its connection
    contacts = [Contact.objects.create(tenant=world.acme, first_name=f"C{i}") for i in range(6)]
    browsers = [subscribe(receiver, c) for c in contacts]
    for c in contacts:
        decide(c, push_template, key=f"k-{c.pk}")

    with CaptureQueriesContext(connection) as queries:
        report = send()

    assert report.sent == 6
    assert [m["title"] for b in browsers for m in receiver.messages(b)] == [
        f"C{i}, it's back" for i in range(6)
    ]
    table = PushSubscription._meta.db_table
    reads = [q["sql"] for q in queries if q["sql"].startswith("SELECT") and table in q["sql"]]
    assert len(reads) == 2  # the policy's check, and the sender's load for the batch
    # Two connections, each kept alive for three requests.
    assert sorted(Counter(a.peer for a in receiver.attempts).values()) == [3, 3]
    assert len({a.headers["authorization"] for a in receiver.attempts}) == 1  # signed once


def test_it_refuses_a_message_too_large_for_push_services(
    receiver: PushReceiver, push_template: Template, mara: Contact
) -> None:
    subscribe(receiver, mara)
    push_template.body = "x" * 5000
    push_template.save()
    delivery = decide(mara, push_template)

    send()

    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.FAILED
    assert "push services take at most" in delivery.reason
    assert receiver.attempts == []


def test_it_sends_a_test_push_without_an_outbox_row(
    world: Any, receiver: PushReceiver, push_template: Template, mara: Contact
) -> None:
    from messaging.rendering import render_push

    phone, gone = subscribe(receiver, mara), subscribe(receiver, mara)
    receiver.script(gone, 410)
    rendered = render_push(push_template.snapshot(), {"contact": {"first_name": "Mara"}})

    took = push_send_test(tenant=world.acme, contact=mara, rendered=rendered)

    assert took == 1
    [message] = receiver.messages(phone)
    assert (message["title"], message["url"]) == ("Mara, it's back", TARGET)  # not tracked
    assert not PushSubscription.objects.get(endpoint=gone.endpoint).active
    assert not Delivery.objects.exists()
    assert push_send_test(tenant=world.globex, contact=mara, rendered=rendered) == 0


# --- Subscribing through /v1/push/* ----------------------------------------------------------


def a_browser(receiver: PushReceiver, tenant: Any) -> BrowserSubscription:
    return receiver.subscribe(
        application_server_key=sender_identity_get(tenant=tenant).vapid_public_key
    )


def test_it_gives_a_write_key_its_tenants_vapid_public_key(
    client: Any, world: Any, write_keys: dict[str, str]
) -> None:
    response = client.get("/v1/push/key", HTTP_AUTHORIZATION=basic(write_keys["globex"]))

    assert response.status_code == 200
    assert response.json() == {
        "publicKey": sender_identity_get(tenant=world.globex).vapid_public_key
    }
    assert response["Access-Control-Allow-Origin"] == "*"


@pytest.mark.parametrize(
    "path,method", [("key", "get"), ("subscribe", "post"), ("unsubscribe", "post")]
)
def test_it_refuses_the_push_endpoints_without_a_write_key(
    client: Any, world: Any, path: str, method: str
) -> None:
    secret = api_key(world.acme, kind="secret")[1]
    for headers in ({}, {"HTTP_AUTHORIZATION": basic(secret)}, {"HTTP_AUTHORIZATION": "Basic !"}):
        response = getattr(client, method)(f"/v1/push/{path}", **headers)
        assert response.status_code == 401, headers
        assert response.json()["code"] == "unauthorized"
        assert response["WWW-Authenticate"] == 'Basic realm="ingest"'


@pytest.mark.parametrize("path", ["key", "subscribe", "unsubscribe"])
def test_it_answers_the_cors_preflight_of_a_shops_page(client: Any, path: str) -> None:
    response = client.options(f"/v1/push/{path}", HTTP_ORIGIN="https://shop.example")

    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == "*"
    assert "Authorization" in response["Access-Control-Allow-Headers"]


def test_it_subscribes_a_visitor_records_the_event_and_grants_push_consent(
    client: Any, world: Any, write_keys: dict[str, str], receiver: PushReceiver
) -> None:
    browser = a_browser(receiver, world.acme)

    response = post(
        client,
        "subscribe",
        {"anonymousId": "anon-1", "subscription": browser.to_json()},
        write_keys["acme"],
    )

    assert response.status_code == 200, response.content
    assert response.json()["success"] is True
    contact = Identity.objects.get(tenant=world.acme, value="anon-1").contact
    subscription = PushSubscription.objects.get(tenant=world.acme)
    assert str(subscription.public_id) == response.json()["subscription"]
    assert (subscription.contact, subscription.endpoint, subscription.active) == (
        contact,
        browser.endpoint,
        True,
    )
    assert (subscription.p256dh, subscription.auth) == (browser.p256dh, browser.auth)
    assert Event.objects.filter(contact=contact, name="Push Subscribed").count() == 1
    assert (contact.push_consent, contact.push_consent_source) == (
        Consent.GRANTED,
        "browser permission",
    )


def test_it_moves_a_browser_that_subscribes_again_to_the_signed_in_customer(
    client: Any, world: Any, write_keys: dict[str, str], receiver: PushReceiver
) -> None:
    browser = a_browser(receiver, world.acme)
    body = {"anonymousId": "anon-1", "subscription": browser.to_json()}
    assert post(client, "subscribe", body, write_keys["acme"]).status_code == 200
    PushSubscription.objects.update(active=False, deactivated_reason="gone")
    customer = Contact.objects.create(tenant=world.acme, user_id="cust-9")
    Identity.objects.create(tenant=world.acme, contact=customer, kind="user_id", value="cust-9")

    again = {"userId": "cust-9", "subscription": browser.to_json()}
    assert post(client, "subscribe", again, write_keys["acme"]).status_code == 200

    subscription = PushSubscription.objects.get(tenant=world.acme)  # still one row
    assert (subscription.contact_id, subscription.active, subscription.deactivated_reason) == (
        customer.pk,
        True,
        "",
    )


def test_it_sends_to_a_browser_subscribed_through_the_endpoint(
    client: Any,
    world: Any,
    write_keys: dict[str, str],
    receiver: PushReceiver,
    push_template: Template,
) -> None:
    browser = a_browser(receiver, world.acme)
    body = {"anonymousId": "anon-1", "subscription": browser.to_json()}
    post(client, "subscribe", body, write_keys["acme"])
    contact = Identity.objects.get(tenant=world.acme, value="anon-1").contact
    decide(contact, push_template)

    send()

    assert [m["body"] for m in receiver.messages(browser)] == [push_template.body]


def _bad(browser: BrowserSubscription, change: str) -> dict[str, Any]:
    body: dict[str, Any] = {"anonymousId": "anon-1", "subscription": browser.to_json()}
    keys = body["subscription"]["keys"]
    off_curve = b"\x04" + b"\x01" * 64
    match change:
        case "no ids":
            del body["anonymousId"]
        case "no subscription":
            del body["subscription"]
        case "no keys":
            del body["subscription"]["keys"]
        case "p256dh not base64":
            keys["p256dh"] = "not base64 at all!"
        case "p256dh too short":
            keys["p256dh"] = b64url(b"\x04" + b"\x01" * 32)
        case "p256dh off the curve":
            keys["p256dh"] = b64url(off_curve)
        case "auth too long":
            keys["auth"] = b64url(b"\x00" * 32)
        case "auth missing":
            del keys["auth"]
        case "plain http endpoint":
            body["subscription"]["endpoint"] = "http://push.example/push/1"
        case "endpoint not a url":
            body["subscription"]["endpoint"] = "push-service"
    return body


@pytest.mark.parametrize(
    "change,field",
    [
        ("no ids", "anonymousId"),
        ("no subscription", "subscription"),
        ("no keys", "subscription.keys"),
        ("p256dh not base64", "subscription.keys.p256dh"),
        ("p256dh too short", "subscription.keys.p256dh"),
        ("p256dh off the curve", "subscription.keys.p256dh"),
        ("auth too long", "subscription.keys.auth"),
        ("auth missing", "subscription.keys.auth"),
        ("plain http endpoint", "subscription.endpoint"),
        ("endpoint not a url", "subscription.endpoint"),
    ],
)
def test_it_refuses_a_bad_subscription_naming_the_field_and_writes_nothing(
    client: Any,
    world: Any,
    write_keys: dict[str, str],
    receiver: PushReceiver,
    change: str,
    field: str,
) -> None:
    body = _bad(a_browser(receiver, world.acme), change)

    response = post(client, "subscribe", body, write_keys["acme"])

    assert response.status_code == 400
    assert response.json()["success"] is False
    assert response.json()["field"] == field
    assert response.json()["message"]
    assert not PushSubscription.objects.exists()
    assert not Contact.objects.exists()
    assert not Event.objects.exists()


def test_it_refuses_a_body_that_is_not_json(client: Any, write_keys: dict[str, str]) -> None:
    response = client.post(
        "/v1/push/subscribe",
        data="{nope",
        content_type="application/json",
        HTTP_AUTHORIZATION=basic(write_keys["acme"]),
    )

    assert response.status_code == 400
    assert "not valid JSON" in response.json()["message"]


def test_it_keeps_tenants_apart_when_subscribing(
    client: Any, world: Any, write_keys: dict[str, str], receiver: PushReceiver
) -> None:
    acme_browser = a_browser(receiver, world.acme)
    body = {"anonymousId": "anon-1", "subscription": acme_browser.to_json()}
    post(client, "subscribe", body, write_keys["acme"])
    acme_contact = Identity.objects.get(tenant=world.acme, value="anon-1").contact

    # Globex's key with the same visitor id and the same endpoint touches only globex's data.
    assert post(client, "subscribe", body, write_keys["globex"]).status_code == 200

    globex_contact = Identity.objects.get(tenant=world.globex, value="anon-1").contact
    assert globex_contact.pk != acme_contact.pk
    acme_sub = PushSubscription.objects.get(tenant=world.acme)
    globex_sub = PushSubscription.objects.get(tenant=world.globex)
    assert (acme_sub.contact_id, globex_sub.contact_id) == (acme_contact.pk, globex_contact.pk)
    assert Event.objects.filter(tenant=world.acme, name="Push Subscribed").count() == 1


def test_it_deactivates_on_unsubscribe_and_hides_other_tenants_endpoints(
    client: Any, world: Any, write_keys: dict[str, str], receiver: PushReceiver
) -> None:
    browser = a_browser(receiver, world.acme)
    body = {"anonymousId": "anon-1", "subscription": browser.to_json()}
    post(client, "subscribe", body, write_keys["acme"])

    foreign = post(client, "unsubscribe", {"endpoint": browser.endpoint}, write_keys["globex"])

    assert foreign.status_code == 404
    assert PushSubscription.objects.get().active

    response = post(client, "unsubscribe", {"endpoint": browser.endpoint}, write_keys["acme"])

    assert response.status_code == 200
    subscription = PushSubscription.objects.get()
    assert (subscription.active, subscription.deactivated_reason) == (
        False,
        "unsubscribed in the browser",
    )
    missing = post(client, "unsubscribe", {}, write_keys["acme"])
    assert (missing.status_code, missing.json()["field"]) == (400, "endpoint")


def test_a_push_that_cannot_be_signed_fails_before_its_handover_and_posts_nothing(
    world: Any, receiver: PushReceiver, push_template: Template, mara: Contact
) -> None:
    subscribe(receiver, mara)
    delivery = decide(mara, push_template)
    # zero: no P-256 private key
    SenderIdentity.objects.filter(tenant=world.acme).update(vapid_private_key="AAAA")

    report = send()

    assert (report.sent, report.failed) == (0, 1)
    delivery.refresh_from_db()
    assert "could not sign" in delivery.reason, delivery.reason
    assert (delivery.status, delivery.handed_over_at) == ("failed", None)
    assert receiver.attempts == []


def test_it_reconnects_when_a_push_service_closed_an_idle_kept_alive_connection() -> None:
    with PushReceiver(idle_timeout=0.2) as service:
        browser = service.subscribe()
        poster = Poster(per_origin=1, timeout=5)
        post = Post(browser.endpoint, b"x", {"TTL": "60"})
        try:
            [first] = poster.post_all([post])
            time.sleep(0.5)  # the service closes the idle connection
            [second] = poster.post_all([post])
        finally:
            poster.close()

    assert isinstance(first, Answer) and isinstance(second, Answer)
    assert len({a.peer for a in service.attempts}) == 2  # a new connection, no failed attempt
