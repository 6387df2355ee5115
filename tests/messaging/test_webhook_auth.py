"""The email providers' tracking webhooks are authenticated (issue 19, item 2): with nothing
configured they refuse every event and change nothing, a signed provider's events count only
with a valid signature, an event changes only its own message's recipient, and a payload the
provider would never send is a 400, not a 500."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest
from django.test import Client

from audience.models import Consent, Contact, Event
from messaging.esp_webhooks import ESPS
from messaging.models import Delivery, Suppression, Template
from tests.factories import sent_delivery
from tests.messaging.test_webhooks import bounce, complaint, subscription_change

pytestmark = pytest.mark.django_db

POSTMARK = "/anymail/postmark/tracking/"
MAILGUN = "/anymail/mailgun/tracking/"
SECRET = "esp-user:s3cret-pass"
SIGNING_KEY = "mailgun-signing-key-0123456789"


@pytest.fixture
def delivery(world: Any, email_template: Template) -> Delivery:
    return sent_delivery(world.acme, email_template, source="journey:7")


@pytest.fixture
def client() -> Client:
    # A provider sees the status code, never a traceback: let a 500 be a response here. It
    # sends no CSRF token either.
    return Client(raise_request_exception=False, enforce_csrf_checks=True)


def _metadata(delivery: Delivery) -> dict[str, str]:
    return {"delivery": str(delivery.public_id), "tenant": delivery.tenant.slug}


def _basic(secret: str = SECRET) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(secret.encode()).decode()}


def _post(client: Client, url: str, body: Any, **headers: str) -> Any:
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(url, data, content_type="application/json", **headers)


def _nothing_changed(delivery: Delivery) -> None:
    assert not Suppression.objects.exists()
    assert not Event.objects.exists()
    assert Contact.objects.get(pk=delivery.contact_id).email_consent == Consent.UNKNOWN


# --- Secure by default -------------------------------------------------------------------------


def test_it_refuses_every_event_while_no_secret_is_configured(
    client: Client, settings: Any, delivery: Delivery
) -> None:
    settings.ANYMAIL = {}

    for payload in (bounce(_metadata(delivery)), complaint(_metadata(delivery))):
        response = _post(client, POSTMARK, payload)
        assert response.status_code == 403
        assert "not configured" in response.content.decode()
    # Any basic auth at all is no better while nothing is configured to compare it with.
    assert _post(client, POSTMARK, bounce(_metadata(delivery)), **_basic()).status_code == 403

    _nothing_changed(delivery)


@pytest.mark.parametrize("esp", sorted(ESPS))
def test_it_refuses_every_provider_while_its_webhook_is_not_configured(
    client: Client, settings: Any, esp: str
) -> None:
    settings.ANYMAIL = {}

    response = _post(client, f"/anymail/{esp}/tracking/", {"event": "bounced"})

    assert response.status_code == 403


def test_it_has_no_inbound_mail_endpoint(client: Client, settings: Any) -> None:
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}

    assert _post(client, "/anymail/postmark/inbound/", {}, **_basic()).status_code == 404


def test_it_says_in_healthz_that_the_providers_webhook_is_not_configured(
    client: Client, settings: Any
) -> None:
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    settings.ANYMAIL = {"POSTMARK_SERVER_TOKEN": "token"}

    body = client.get("/healthz").json()

    assert body["email_webhook"]["esp"] == "postmark"
    assert body["email_webhook"]["configured"] is False
    assert any("postmark tracking webhook is not configured" in w for w in body["warnings"])

    settings.ANYMAIL = {"POSTMARK_SERVER_TOKEN": "token", "WEBHOOK_SECRET": SECRET}
    body = client.get("/healthz").json()
    assert body["email_webhook"]["configured"] is True
    assert not any("webhook" in w for w in body["warnings"])


def test_it_reports_no_provider_webhook_for_smtp(client: Client, settings: Any) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"

    assert client.get("/healthz").json()["email_webhook"] == {"esp": None, "configured": None}


# --- Signatures --------------------------------------------------------------------------------


def _mailgun_event(delivery: Delivery, *, key: str = SIGNING_KEY, recipient: str = "") -> dict:
    timestamp, token = "1764500000", "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0"
    signature = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    return {
        "signature": {"timestamp": timestamp, "token": token, "signature": signature},
        "event-data": {
            "event": "failed",
            "severity": "permanent",
            "recipient": recipient or delivery.contact.email,
            "timestamp": 1764500000.5,
            "user-variables": _metadata(delivery),
            "message": {"headers": {"message-id": f"{delivery.public_id}@wayfarer.test"}},
            "delivery-status": {"message": "550 5.1.1 No such user", "description": ""},
            "reason": "bounce",
        },
    }


def test_it_acts_on_an_event_signed_with_the_providers_key(
    client: Client, settings: Any, delivery: Delivery
) -> None:
    settings.ANYMAIL = {"MAILGUN_WEBHOOK_SIGNING_KEY": SIGNING_KEY}

    assert _post(client, MAILGUN, _mailgun_event(delivery)).status_code == 200

    assert list(Suppression.objects.values_list("address", flat=True)) == ["ann@example.com"]


def test_it_refuses_an_event_signed_with_another_key(
    client: Client, settings: Any, delivery: Delivery
) -> None:
    settings.ANYMAIL = {"MAILGUN_WEBHOOK_SIGNING_KEY": SIGNING_KEY}

    forged = _post(client, MAILGUN, _mailgun_event(delivery, key="guessed"))
    unsigned = _post(client, MAILGUN, {"event-data": _mailgun_event(delivery)["event-data"]})

    assert forged.status_code == 400
    assert unsigned.status_code == 400
    _nothing_changed(delivery)


def test_it_does_not_take_the_basic_secret_alone_for_a_signing_provider(
    client: Client, settings: Any, delivery: Delivery
) -> None:
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}  # but no Mailgun signing key

    response = _post(client, MAILGUN, _mailgun_event(delivery), **_basic())

    assert response.status_code == 403
    _nothing_changed(delivery)


# --- Only the delivery's own recipient ---------------------------------------------------------


@pytest.mark.parametrize("report", [bounce, complaint])
def test_it_never_suppresses_another_address_than_the_deliverys_recipient(
    client: Client, settings: Any, delivery: Delivery, world: Any, report: Any
) -> None:
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}
    victim = Contact.objects.create(tenant=world.acme, email="victim@example.com")
    payload = report(_metadata(delivery))
    payload["Email"] = "Victim@Example.com"

    assert _post(client, POSTMARK, payload, **_basic()).status_code == 200

    _nothing_changed(delivery)
    assert Contact.objects.get(pk=victim.pk).email_consent == Consent.UNKNOWN


def test_it_never_revokes_consent_for_an_unsubscribe_naming_another_address(
    client: Client, settings: Any, delivery: Delivery
) -> None:
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}
    payload = subscription_change(_metadata(delivery))
    payload["Recipient"] = "victim@example.com"

    assert _post(client, POSTMARK, payload, **_basic()).status_code == 200

    _nothing_changed(delivery)


def test_it_acts_for_its_recipient_whatever_the_case_of_the_address(
    client: Client, settings: Any, delivery: Delivery
) -> None:
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}
    payload = bounce(_metadata(delivery), email=" ANN@example.COM ")

    assert _post(client, POSTMARK, payload, **_basic()).status_code == 200

    assert list(Suppression.objects.values_list("address", flat=True)) == ["ann@example.com"]


# --- Malformed payloads ------------------------------------------------------------------------


def _postmark_cases(metadata: dict[str, str]) -> list[Any]:
    return [
        "{not json",
        b"\xff\xfe",
        "[]",
        "null",
        "42",
        {"RecordType": "Bounce"},  # no Type
        {**bounce(metadata), "Metadata": ["not", "an", "object"]},
        {**bounce(metadata), "Email": {"an": "object"}},
        {**bounce(metadata), "Type": ["HardBounce"]},
        {**bounce(metadata), "RecordType": 7},
    ]


def test_it_answers_400_not_500_for_payloads_no_provider_sends(
    client: Client, settings: Any, delivery: Delivery
) -> None:
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}

    statuses = [
        _post(client, POSTMARK, body, **_basic()).status_code
        for body in _postmark_cases(_metadata(delivery))
    ]

    assert all(status in (200, 400) for status in statuses), statuses
    _nothing_changed(delivery)


@pytest.mark.parametrize(
    "esp,body",
    [
        ("mailgun", {"signature": {"timestamp": "é", "token": "x", "signature": "y"}}),
        ("mailgun", {"signature": "not an object"}),
        ("brevo", {"items": []}),  # Brevo's inbound payload posted to the tracking URL
        ("brevo", "{not json"),
        ("sparkpost", {"msys": "nothing"}),
        ("mailjet", [{"event": "bounce", "time": "not a number"}]),
        ("sendgrid", [{"event": "bounce", "timestamp": "soon"}]),
    ],
)
def test_it_answers_400_not_500_for_any_providers_malformed_payload(
    client: Client, settings: Any, esp: str, body: Any
) -> None:
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET, "MAILGUN_WEBHOOK_SIGNING_KEY": SIGNING_KEY}

    response = _post(client, f"/anymail/{esp}/tracking/", body, **_basic())

    assert response.status_code in (200, 400)
