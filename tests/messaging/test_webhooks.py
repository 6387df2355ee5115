"""What an email service provider reports after a message left, POSTed the way Postmark does to
anymail's real webhook URL (/anymail/postmark/tracking/, basic auth): bounces and complaints
suppress the address, and every report becomes an event on the contact."""

from __future__ import annotations

import base64
import json
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.test import Client

from audience.models import Consent, Contact, Event
from messaging import links, outcomes
from messaging.models import Delivery, Suppression, Template
from tests.factories import sent_delivery

pytestmark = pytest.mark.django_db

URL = "/anymail/postmark/tracking/"
SECRET = "esp-user:s3cret-pass"
AT = "2026-11-23T10:15:30.1234567Z"


@pytest.fixture(autouse=True)
def webhook_secret(settings: Any) -> None:
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}


@pytest.fixture
def delivery(world: Any, email_template: Template) -> Delivery:
    return _delivery(world.acme, email_template)


_delivery = partial(
    sent_delivery, source="journey:7", provider_id="883953f4-6105-42a2-a16a-77a8eac79483"
)


def _metadata(delivery: Delivery) -> dict[str, str]:
    # What messaging/mail.py attaches to every email it builds.
    return {"delivery": str(delivery.public_id), "tenant": delivery.tenant.slug}


def _post(client: Client, payload: dict[str, Any], secret: str = SECRET) -> Any:
    auth = base64.b64encode(secret.encode()).decode()
    return client.post(
        URL,
        json.dumps(payload),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Basic {auth}",
    )


# Postmark's webhook payloads (https://postmarkapp.com/developer/webhooks), trimmed to the fields
# anymail reads.


def bounce(
    metadata: dict[str, str], kind: str = "HardBounce", email: str = "ann@example.com"
) -> dict[str, Any]:
    return {
        "RecordType": "Bounce",
        "MessageStream": "outbound",
        "ID": 4323372036854775807,
        "Type": kind,
        "TypeCode": 1,
        "Name": "Hard bounce",
        "Tag": "welcome",
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "Metadata": metadata,
        "ServerID": 23,
        "Description": "The server was unable to deliver your message (ex: unknown user).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": email,
        "From": "shop@acme.example",
        "BouncedAt": AT,
        "Inactive": True,
        "CanActivate": True,
        "Subject": "Hello Ann",
    }


def complaint(metadata: dict[str, str]) -> dict[str, Any]:
    return {
        **bounce(metadata),
        "RecordType": "SpamComplaint",
        "Type": "SpamComplaint",
        "TypeCode": 512,
        "Name": "Spam complaint",
        "Description": "The subscriber explicitly marked this message as spam.",
        "Details": "",
    }


def delivered(metadata: dict[str, str]) -> dict[str, Any]:
    return {
        "RecordType": "Delivery",
        "ServerID": 23,
        "MessageStream": "outbound",
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "Recipient": "ann@example.com",
        "Tag": "welcome",
        "DeliveredAt": AT,
        "Details": "smtp;250 2.0.0 OK",
        "Metadata": metadata,
    }


def opened(metadata: dict[str, str]) -> dict[str, Any]:
    return {
        "RecordType": "Open",
        "MessageStream": "outbound",
        "FirstOpen": True,
        "Platform": "WebMail",
        "UserAgent": "Mozilla/5.0 (Windows NT 10.0) Chrome/120.0",
        "ReadSeconds": 5,
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "Metadata": metadata,
        "ReceivedAt": AT,
        "Tag": "welcome",
        "Recipient": "ann@example.com",
    }


def clicked(metadata: dict[str, str], link: str = "https://shop.example/welcome") -> dict[str, Any]:
    return {
        **opened(metadata),
        "RecordType": "Click",
        "ClickLocation": "HTML",
        "Platform": "Desktop",
        "OriginalLink": link,
    }


def subscription_change(metadata: dict[str, str]) -> dict[str, Any]:
    return {
        "RecordType": "SubscriptionChange",
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "ServerID": 23,
        "MessageStream": "outbound",
        "ChangedAt": AT,
        "Recipient": "ann@example.com",
        "Origin": "Recipient",
        "SuppressSending": True,
        "SuppressionReason": "ManualSuppression",
        "Tag": "welcome",
        "Metadata": metadata,
    }


def _events(name: str) -> list[Event]:
    return list(Event.objects.filter(name=name).order_by("pk"))


def test_it_suppresses_a_hard_bounced_address_and_records_the_bounce(
    client: Client, world: Any, delivery: Delivery
) -> None:
    response = _post(client, bounce(_metadata(delivery)))

    assert response.status_code == 200
    suppression = Suppression.objects.get(tenant=world.acme)
    assert (suppression.address, suppression.reason) == ("ann@example.com", "bounced")
    assert "does not exist" in suppression.detail
    [bounced] = _events(outcomes.EMAIL_BOUNCED)
    assert bounced.contact_id == delivery.contact_id
    assert bounced.properties["delivery_id"] == str(delivery.public_id)
    assert bounced.properties["esp"] == "Postmark"
    assert bounced.properties["reason"] == "bounced"


def test_it_records_a_bounce_reported_twice_once(client: Client, delivery: Delivery) -> None:
    _post(client, bounce(_metadata(delivery)))
    _post(client, bounce(_metadata(delivery)))

    assert Suppression.objects.count() == 1
    assert len(_events(outcomes.EMAIL_BOUNCED)) == 1


def test_it_suppresses_an_address_the_provider_refused_to_send_to(
    client: Client, delivery: Delivery
) -> None:
    _post(client, bounce(_metadata(delivery), kind="BadEmailAddress"))  # anymail: "rejected"

    assert Suppression.objects.get().reason == "bounced"
    assert _events(outcomes.EMAIL_BOUNCED)[0].properties["reason"] == "invalid"


def test_it_does_not_suppress_an_address_for_a_soft_bounce(
    client: Client, delivery: Delivery
) -> None:
    response = _post(client, bounce(_metadata(delivery), kind="SoftBounce"))

    assert response.status_code == 200
    assert not Suppression.objects.exists()
    assert not Event.objects.exists()


def test_it_suppresses_unsubscribes_and_records_a_spam_complaint(
    client: Client, world: Any, delivery: Delivery
) -> None:
    _post(client, complaint(_metadata(delivery)))

    assert Suppression.objects.get(tenant=world.acme).reason == "complained"
    [spam] = _events(outcomes.EMAIL_COMPLAINED)
    assert spam.contact_id == delivery.contact_id
    contact = Contact.objects.get(pk=delivery.contact_id)
    assert contact.email_consent == Consent.REVOKED
    assert contact.email_consent_source == "spam complaint (Postmark)"
    assert len(_events(outcomes.UNSUBSCRIBED)) == 1


def test_it_records_a_delivery_once(client: Client, delivery: Delivery) -> None:
    _post(client, delivered(_metadata(delivery)))
    _post(client, delivered(_metadata(delivery)))

    [event] = _events(outcomes.EMAIL_DELIVERED)
    assert event.contact_id == delivery.contact_id
    assert not Suppression.objects.exists()


def test_it_records_the_providers_opens_and_clicks_as_our_own_links_do(
    client: Client, delivery: Delivery
) -> None:
    client.get(urlsplit(links.open_url(delivery)).path)  # our pixel
    _post(client, opened(_metadata(delivery)))  # the provider's: the same open
    _post(client, clicked(_metadata(delivery)))
    _post(client, clicked(_metadata(delivery), "https://shop.example/cart"))

    assert len(_events(outcomes.EMAIL_OPENED)) == 1
    clicks = _events(outcomes.EMAIL_CLICKED)
    assert [c.properties["url"] for c in clicks] == [
        "https://shop.example/welcome",
        "https://shop.example/cart",
    ]
    assert clicks[0].properties["via"] == "Postmark"
    assert clicks[0].properties["user_agent"].startswith("Mozilla/5.0")


def test_it_leaves_a_click_on_our_own_redirect_to_the_redirect(
    client: Client, delivery: Delivery
) -> None:
    # With the ESP's click tracking on too, it reports clicks on links we already rewrote.
    ours = links.click_url(delivery, "https://shop.example/welcome")
    _post(client, clicked(_metadata(delivery), ours))
    client.get(f"{urlsplit(ours).path}?{urlsplit(ours).query}")

    [click] = _events(outcomes.EMAIL_CLICKED)
    assert click.properties["url"] == "https://shop.example/welcome"
    assert click.properties["via"] == "redirect"


def test_it_revokes_consent_when_the_recipient_unsubscribed_at_the_provider(
    client: Client, delivery: Delivery
) -> None:
    _post(client, subscription_change(_metadata(delivery)))

    contact = Contact.objects.get(pk=delivery.contact_id)
    assert contact.email_consent == Consent.REVOKED
    assert len(_events(outcomes.UNSUBSCRIBED)) == 1


def test_it_ignores_reports_about_messages_it_does_not_know(
    client: Client, world: Any, delivery: Delivery
) -> None:
    for metadata in (
        {},  # sent by something else through the same account
        {"delivery": "not-a-uuid", "tenant": "acme"},
        {"delivery": "6f1c1d7e-3c1a-4c55-9d5e-0b7f7b0c2a11", "tenant": "acme"},  # unknown
        {"delivery": str(delivery.public_id), "tenant": "globex"},  # another tenant's id
        {"delivery": str(delivery.public_id), "tenant": "no-such-team"},
    ):
        assert _post(client, bounce(metadata)).status_code == 200
        assert _post(client, complaint(metadata)).status_code == 200

    assert not Suppression.objects.exists()
    assert not Event.objects.exists()
    assert Contact.objects.get(pk=delivery.contact_id).email_consent == Consent.UNKNOWN


def test_it_acts_only_within_the_tenant_that_sent_the_message(
    client: Client, world: Any, email_template: Template, delivery: Delivery
) -> None:
    globex_template = Template.objects.create(
        tenant=world.globex, name="Hi", channel="email", subject="Hi", html="<p>Hi</p>"
    )
    globex_delivery = _delivery(world.globex, globex_template, "ann@example.com")

    _post(client, complaint(_metadata(delivery)))

    assert list(Suppression.objects.values_list("tenant__slug", flat=True)) == ["acme"]
    assert Contact.objects.get(pk=globex_delivery.contact_id).email_consent == Consent.UNKNOWN
    assert {e.tenant_id for e in Event.objects.all()} == {world.acme.pk}


def test_it_refuses_a_report_without_the_webhook_secret(client: Client, delivery: Delivery) -> None:
    wrong = _post(client, bounce(_metadata(delivery)), secret="esp-user:guess")
    missing = client.post(
        URL, json.dumps(bounce(_metadata(delivery))), content_type="application/json"
    )

    assert wrong.status_code == 400
    assert missing.status_code == 400
    assert not Suppression.objects.exists()
    assert not Event.objects.exists()
