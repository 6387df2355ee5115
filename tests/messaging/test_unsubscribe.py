"""Unsubscribing (/m/u/<token>, RFC 8058 one-click) and the preference centre (/m/p/<token>):
what a recipient sees, what a mail provider's one-click POST does, and that the very next
marketing message is skipped — proved end to end through a real SMTP server."""

from __future__ import annotations

import re
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.test import Client

from audience.models import Consent, Contact, Event
from messaging import links, outbox, outcomes
from messaging.models import (
    Category,
    Channel,
    Delivery,
    PushSubscription,
    SendingPolicy,
    Suppression,
    Template,
)
from messaging.services import delivery_create, suppression_add
from tests.factories import sent_delivery
from tests.mail_sink import MailSink

pytestmark = pytest.mark.django_db

ONE_CLICK = "List-Unsubscribe=One-Click"


_delivery = partial(sent_delivery, source="campaign:1")


@pytest.fixture
def delivery(world: Any, email_template: Template) -> Delivery:
    return _delivery(world.acme, email_template)


@pytest.fixture
def provider() -> Client:
    """A mail provider's one-click POST: no cookies, no CSRF token, CSRF checks on."""
    return Client(enforce_csrf_checks=True)


def _path(absolute: str) -> str:
    return urlsplit(absolute).path


def _one_click(provider: Client, url: str) -> Any:
    return provider.post(_path(url), ONE_CLICK, content_type="application/x-www-form-urlencoded")


def _contact(delivery: Delivery) -> Contact:
    return Contact.objects.get(pk=delivery.contact_id)


def _events(name: str) -> list[Event]:
    return list(Event.objects.filter(name=name).order_by("pk"))


def _tamper(token: str) -> str:
    value, signature = token.rsplit(":", 1)
    return f"{value}:{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"


# --- the unsubscribe page and one-click -----------------------------------------------------------


def test_it_asks_before_unsubscribing_when_the_link_is_opened(
    client: Client, delivery: Delivery
) -> None:
    response = client.get(_path(links.unsubscribe_url(delivery)))

    assert response.status_code == 200
    page = response.content.decode()
    assert "ann@example.com" in page
    assert 'method="post"' in page
    assert _path(links.preferences_url(delivery)) in page
    assert response["X-Robots-Tag"].startswith("noindex")
    assert "no-store" in response["Cache-Control"]
    # Link scanners open every link in a message: a GET must change nothing.
    assert _contact(delivery).email_consent == Consent.UNKNOWN
    assert not Event.objects.exists()


def test_it_unsubscribes_at_once_on_a_one_click_post_without_cookies_or_csrf_token(
    provider: Client, delivery: Delivery
) -> None:
    response = _one_click(provider, links.unsubscribe_url(delivery))

    assert response.status_code == 200
    assert b"You are unsubscribed" in response.content
    contact = _contact(delivery)
    assert contact.email_consent == Consent.REVOKED
    assert contact.email_consent_source == "one-click unsubscribe"
    [event] = _events(outcomes.UNSUBSCRIBED)
    assert event.contact_id == contact.pk
    assert event.properties["channel"] == "email"


def test_it_unsubscribes_from_the_confirmation_pages_button(
    client: Client, delivery: Delivery
) -> None:
    page = client.get(_path(links.unsubscribe_url(delivery))).content.decode()
    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]+)"', page))

    response = client.post(_path(links.unsubscribe_url(delivery)), hidden)

    assert response.status_code == 200
    assert _contact(delivery).email_consent == Consent.REVOKED


def test_it_unsubscribes_once_however_often_the_post_comes(
    provider: Client, delivery: Delivery
) -> None:
    for _ in range(3):
        assert _one_click(provider, links.unsubscribe_url(delivery)).status_code == 200

    assert len(_events(outcomes.UNSUBSCRIBED)) == 1


def test_it_answers_a_forged_or_unknown_unsubscribe_link_with_404_and_changes_nothing(
    client: Client, provider: Client, world: Any, email_template: Template, delivery: Delivery
) -> None:
    token = _path(links.unsubscribe_url(delivery)).split("/")[-1]
    gone = _delivery(world.acme, email_template, "gone@example.com")
    gone_path = _path(links.unsubscribe_url(gone))
    gone.delete()

    for path in (f"/m/u/{_tamper(token)}", "/m/u/nonsense", gone_path):
        assert client.get(path).status_code == 404, path
        response = provider.post(path, ONE_CLICK, content_type="application/x-www-form-urlencoded")
        assert response.status_code == 404, path
        assert b"This link is not valid" in response.content
    assert _contact(delivery).email_consent == Consent.UNKNOWN
    assert not Event.objects.exists()


def test_it_unsubscribes_only_the_contact_of_the_tenant_that_sent_the_message(
    provider: Client, world: Any, delivery: Delivery
) -> None:
    globex_template = Template.objects.create(
        tenant=world.globex, name="Hi", channel=Channel.EMAIL, subject="Hi", html="<p>Hi</p>"
    )
    globex = _delivery(world.globex, globex_template, delivery.contact.email)

    _one_click(provider, links.unsubscribe_url(delivery))

    assert _contact(delivery).email_consent == Consent.REVOKED
    assert _contact(globex).email_consent == Consent.UNKNOWN
    assert {e.tenant_id for e in Event.objects.all()} == {world.acme.pk}


def test_it_unsubscribes_a_push_link_from_notifications_only(
    provider: Client, world: Any, delivery: Delivery
) -> None:
    push_template = Template.objects.create(
        tenant=world.acme, name="Back", channel=Channel.PUSH, title="Back", body="In stock"
    )
    push = Delivery.objects.create(
        tenant=world.acme,
        contact=delivery.contact,
        channel=Channel.PUSH,
        template=push_template,
        content=push_template.snapshot(),
        source="campaign:2",
        idempotency_key="push-1",
    )

    response = _one_click(provider, links.unsubscribe_url(push))

    assert b"no more marketing notifications" in response.content
    contact = _contact(delivery)
    assert (contact.email_consent, contact.push_consent) == (Consent.UNKNOWN, Consent.REVOKED)


def test_it_refuses_other_methods_on_the_unsubscribe_link(
    client: Client, delivery: Delivery
) -> None:
    assert client.put(_path(links.unsubscribe_url(delivery))).status_code == 405
    assert _contact(delivery).email_consent == Consent.UNKNOWN


# --- end to end: the List-Unsubscribe header of a real message ------------------------------------


def _unsubscribe_link(message: Any) -> str:
    header = str(message["List-Unsubscribe"])
    return re.search(r"<(https?://[^>]+)>", header).group(1)  # type: ignore[union-attr]


def test_it_skips_the_very_next_marketing_message_from_any_source_after_a_one_click(
    provider: Client, world: Any, email_template: Template, mail_sink: MailSink
) -> None:
    ann = Contact.objects.create(tenant=world.acme, email="ann@example.com", first_name="Ann")

    def decide(source: str) -> Delivery:
        return delivery_create(
            tenant=world.acme,
            contact=ann,
            template=email_template,
            source=source,
            idempotency_key=f"{source}:{ann.pk}",
        )[0]

    decide("journey:1")
    assert outbox.deliveries_send(channel=Channel.EMAIL).sent == 1
    [message] = mail_sink.messages()
    assert message["List-Unsubscribe-Post"] == ONE_CLICK
    # Decided while Ann was still subscribed: consent is read when sending, not when deciding.
    campaign, api = decide("campaign:1"), decide("api")

    response = _one_click(provider, _unsubscribe_link(message))
    report = outbox.deliveries_send(channel=Channel.EMAIL)

    assert response.status_code == 200
    assert (report.sent, report.skipped, report.reasons) == (0, 2, {"unsubscribed": 2})
    assert len(mail_sink.messages()) == 1
    for delivery in (campaign, api):
        delivery.refresh_from_db()
        assert (delivery.status, delivery.reason) == ("skipped", "unsubscribed")
    skipped = _events(outcomes.SKIPPED)
    assert sorted(e.properties["source"] for e in skipped) == ["api", "campaign:1"]
    assert {e.properties["reason"] for e in skipped} == {"unsubscribed"}


def test_it_still_sends_a_transactional_message_after_an_unsubscribe(
    provider: Client, world: Any, email_template: Template, mail_sink: MailSink
) -> None:
    ann = Contact.objects.create(tenant=world.acme, email="ann@example.com", first_name="Ann")
    delivery_create(
        tenant=world.acme,
        contact=ann,
        template=email_template,
        source="journey:1",
        idempotency_key="welcome",
    )
    outbox.deliveries_send(channel=Channel.EMAIL)
    _one_click(provider, _unsubscribe_link(mail_sink.messages()[0]))

    receipt, _ = delivery_create(
        tenant=world.acme,
        contact=ann,
        template=email_template,
        source="api",
        idempotency_key="receipt-1001",
        category=Category.TRANSACTIONAL,
    )
    report = outbox.deliveries_send(channel=Channel.EMAIL)

    assert report.sent == 1
    assert len(mail_sink.messages()) == 2
    receipt.refresh_from_db()
    assert receipt.status == "sent"


# --- the preference centre ------------------------------------------------------------------------


def _csrf(page: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]


def _checked(page: str, name: str) -> bool:
    tag = re.search(rf'<input[^>]*name="{name}"[^>]*>', page).group(0)  # type: ignore[union-attr]
    return "checked" in tag


def test_it_shows_the_contacts_consent_per_channel(client: Client, delivery: Delivery) -> None:
    Contact.objects.filter(pk=delivery.contact_id).update(push_consent=Consent.REVOKED)

    response = client.get(_path(links.preferences_url(delivery)))

    page = response.content.decode()
    assert response.status_code == 200
    assert "ann@example.com" in page
    assert _checked(page, "email")  # unknown, and the tenant does not require an opt-in
    assert not _checked(page, "push")
    assert response["X-Robots-Tag"].startswith("noindex")


def test_it_shows_unknown_consent_as_off_when_the_tenant_requires_an_opt_in(
    client: Client, world: Any, delivery: Delivery
) -> None:
    SendingPolicy.objects.create(tenant=world.acme, require_opt_in=True)

    page = client.get(_path(links.preferences_url(delivery))).content.decode()

    assert not _checked(page, "email")
    assert not _checked(page, "push")


def test_it_saves_the_choices_of_the_preference_centre(delivery: Delivery) -> None:
    browser = Client(enforce_csrf_checks=True)
    path = _path(links.preferences_url(delivery))
    token = _csrf(browser.get(path).content.decode())

    response = browser.post(path, {"csrfmiddlewaretoken": token, "push": "on"})

    page = response.content.decode()
    assert response.status_code == 200
    assert "Your preferences are saved." in page
    assert not _checked(page, "email")
    assert _checked(page, "push")
    contact = _contact(delivery)
    assert (contact.email_consent, contact.push_consent) == (Consent.REVOKED, Consent.GRANTED)
    assert contact.email_consent_source == "preference centre"
    [event] = _events(outcomes.UNSUBSCRIBED)
    assert event.properties == {"channel": "email", "source": "preference centre"}


def test_it_resubscribes_from_the_preference_centre_after_an_unsubscribe(
    provider: Client, delivery: Delivery
) -> None:
    _one_click(provider, links.unsubscribe_url(delivery))
    browser = Client(enforce_csrf_checks=True)
    path = _path(links.preferences_url(delivery))
    token = _csrf(browser.get(path).content.decode())

    browser.post(path, {"csrfmiddlewaretoken": token, "email": "on", "push": "on"})

    assert _contact(delivery).email_consent == Consent.GRANTED


def test_it_refuses_a_preference_change_without_the_csrf_token(delivery: Delivery) -> None:
    response = Client(enforce_csrf_checks=True).post(
        _path(links.preferences_url(delivery)), {"push": "on"}
    )

    assert response.status_code == 403
    contact = _contact(delivery)
    assert (contact.email_consent, contact.push_consent) == (Consent.UNKNOWN, Consent.UNKNOWN)


def test_it_answers_a_forged_or_unknown_preference_link_with_404(
    client: Client, world: Any, email_template: Template, delivery: Delivery
) -> None:
    token = _path(links.preferences_url(delivery)).split("/")[-1]
    gone = _delivery(world.acme, email_template, "gone@example.com")
    gone_path = _path(links.preferences_url(gone))
    gone.delete()

    for path in (f"/m/p/{_tamper(token)}", "/m/p/nonsense", gone_path):
        assert client.get(path).status_code == 404, path
        assert client.post(path, {"email": "on"}).status_code == 404, path
    assert _contact(delivery).email_consent == Consent.UNKNOWN


def test_it_says_when_something_besides_consent_keeps_a_channel_from_the_contact(
    client: Client, delivery: Delivery
) -> None:
    path = _path(links.preferences_url(delivery))
    suppression_add(tenant=delivery.tenant, address="ANN@example.com", reason="bounced")

    page = client.get(path).content.decode()

    # The boxes still say what the contact chose; the notes say why nothing arrives anyway.
    assert _checked(page, "email") and _checked(page, "push")
    assert re.search(r'<p class="help" id="email-note">Emails to your address bounced', page)
    assert re.search(r'<p class="help" id="push-note">No browser of yours', page)
    assert 'aria-describedby="push-note"' in page
    PushSubscription.objects.create(
        tenant=delivery.tenant,
        contact=delivery.contact,
        endpoint="https://push.example/1",
        p256dh="k",
        auth="a",
    )
    Suppression.objects.filter(tenant=delivery.tenant).delete()

    page = client.get(path).content.decode()

    assert 'id="email-note"' not in page and 'id="push-note"' not in page
