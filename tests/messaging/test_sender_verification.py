"""A team's From address is used only once someone at that address agreed (issue 19: anyone
could sign up, set a bank's address as the sender and send from it).

A new address stays pending and gets a signed link; messages keep their confirmed From (the
site's address if none) until the link is followed and confirmed.
"""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape
from typing import Any
from urllib.parse import urlsplit

import pytest
import time_machine
from django.core import mail, signing
from django.utils.timezone import now

from audience.models import Contact
from messaging import outbox, sender_verification
from messaging.models import Template
from messaging.selectors import sender_identity_get
from messaging.services import Decision, deliveries_create, sender_identity_update
from ops.demo import seed_demo
from tests.mail_sink import MailSink

pytestmark = pytest.mark.django_db

SETTINGS = "/t/acme/messages/settings/"
LINK = re.compile(r"https?://\S+/m/s/\S+")


def link_to(message: Any) -> str:
    [url] = LINK.findall(message if isinstance(message, str) else message.body)
    return urlsplit(url).path


def set_sender(client: Any, address: str, name: str = "Acme", slug: str = "acme") -> Any:
    return client.post(
        f"/t/{slug}/messages/settings/sender/",
        {"sender_name": name, "sender_email": address, "reply_to_email": ""},
        follow=True,
    )


def send_one(world: Any, template: Template, key: str) -> None:
    """One message of `template` decided for a new acme contact."""
    contact = Contact.objects.create(tenant=world.acme, email=f"{key}@customer.example")
    deliveries_create(
        tenant=world.acme, template=template, source="test", decisions=[Decision(contact, key)]
    )


def test_a_from_address_typed_in_is_not_used_until_someone_there_confirms_it(
    login: Any, world: Any, email_template: Template, mail_sink: MailSink, settings: Any
) -> None:
    settings.DEFAULT_FROM_EMAIL = "Wayfarer <noreply@wayfarer.example>"
    page = unescape(set_sender(login(world.alice), "alerts@bigbank.example").content.decode())

    assert "We emailed a link to alerts@bigbank.example" in page
    assert "waiting for confirmation" in page
    assert "Send the link again" in page
    identity = sender_identity_get(tenant=world.acme)
    assert (identity.sender_email, identity.pending_sender_email) == ("", "alerts@bigbank.example")

    send_one(world, email_template, "k1")
    assert outbox.deliveries_send(channel="email").sent == 1
    link_mail, message = mail_sink.wait_for(2)
    # The link goes to the address, from the site; the message still from the site's address.
    assert link_mail.rcpt_tos == ["alerts@bigbank.example"]
    assert link_mail.mail_from == "noreply@wayfarer.example"
    assert "Acme" in link_mail.message["Subject"]
    assert message.mail_from == "noreply@wayfarer.example"
    assert "bigbank" not in str(message.message["From"])


def test_following_the_link_and_confirming_makes_it_the_from(
    client: Any, login: Any, world: Any, email_template: Template, mail_sink: MailSink
) -> None:
    set_sender(login(world.alice), "news@acme.example")
    [link_mail] = mail_sink.wait_for(1)
    url = link_to(link_mail.message.get_content())
    client.logout()  # whoever reads that mailbox: no account needed

    asked = client.get(url)
    assert asked.status_code == 200
    assert "Let Acme send from your address?" in unescape(asked.content.decode())
    assert sender_identity_get(tenant=world.acme).sender_email == ""  # a scanner's GET: nothing

    confirmed = client.post(url)
    assert confirmed.status_code == 200
    assert "emails now come from <strong>news@acme.example</strong>" in unescape(
        confirmed.content.decode()
    )
    identity = sender_identity_get(tenant=world.acme)
    assert (identity.sender_email, identity.pending_sender_email) == ("news@acme.example", "")

    send_one(world, email_template, "k1")
    assert outbox.deliveries_send(channel="email").sent == 1
    message = mail_sink.wait_for(2)[1]
    assert message.mail_from == "news@acme.example"
    assert str(message.message["From"]) == "Acme <news@acme.example>"

    page = unescape(login(world.bob).get(SETTINGS).content.decode())
    assert '<strong>Acme <news@acme.example></strong> <span class="badge ok">confirmed' in page
    assert client.post(url).status_code == 400  # used


def test_a_link_expires_and_cannot_be_forged(login: Any, world: Any) -> None:
    set_sender(login(world.alice), "news@acme.example")
    url = link_to(mail.outbox[0])
    token = url.removeprefix("/m/s/")
    identity = sender_identity_get(tenant=world.acme)
    other_address = signing.dumps(
        {**sender_verification._payload(identity, world.acme), "a": "ceo@bank.example"},
        salt="another salt",
        compress=True,
    )

    with time_machine.travel(now() + timedelta(days=3, minutes=1)):
        assert login(world.alice).post(url).status_code == 400
    assert login(world.alice).post(f"/m/s/{token[:-2]}xx").status_code == 400
    assert login(world.alice).post(f"/m/s/{other_address}").status_code == 400
    assert sender_identity_get(tenant=world.acme).sender_email == ""


def test_a_newer_address_or_a_cancel_makes_an_older_link_useless(login: Any, world: Any) -> None:
    client = login(world.alice)
    set_sender(client, "first@acme.example")
    set_sender(client, "first@acme.example")  # saved again unchanged: no second email
    set_sender(client, "second@acme.example")
    first, second = mail.outbox

    assert client.post(link_to(first)).status_code == 400
    cancelled = client.post("/t/acme/messages/settings/sender/cancel/", follow=True)
    assert "Cancelled: messages keep coming from" in cancelled.content.decode()
    assert client.post(link_to(second)).status_code == 400
    identity = sender_identity_get(tenant=world.acme)
    assert (identity.sender_email, identity.pending_sender_email) == ("", "")


def test_a_link_for_one_team_never_confirms_another_teams_address(login: Any, world: Any) -> None:
    # Both teams ask for the same address; globex's link is for globex alone.
    set_sender(login(world.alice), "shared@partner.example")
    set_sender(login(world.charlie), "shared@partner.example", name="Globex", slug="globex")
    acme_link, globex_link = mail.outbox
    globex = sender_identity_get(tenant=world.globex)
    acme = sender_identity_get(tenant=world.acme)
    # globex's signed payload with acme's tenant id is not a token of ours.
    swapped = signing.dumps(
        {**sender_verification._payload(globex, world.globex), "t": str(world.acme.public_id)},
        salt="messaging.sender_verification.forged",
    )

    assert login(world.charlie).post(link_to(globex_link)).status_code == 200
    assert login(world.charlie).post(f"/m/s/{swapped}").status_code == 400
    assert sender_identity_get(tenant=world.globex).sender_email == "shared@partner.example"
    acme.refresh_from_db()
    assert (acme.sender_email, acme.pending_sender_email) == ("", "shared@partner.example")
    assert "acme" not in link_to(globex_link) and "globex" not in link_to(acme_link)


def test_it_sends_the_link_again_once_a_minute_and_only_for_admins(login: Any, world: Any) -> None:
    resend = "/t/acme/messages/settings/sender/resend/"
    set_sender(login(world.alice), "news@acme.example")

    assert login(world.dave).post(resend).status_code == 403
    first = login(world.alice).post(resend, follow=True).content.decode()
    second = login(world.alice).post(resend, follow=True).content.decode()

    assert "We sent a new link to news@acme.example" in first
    assert "less than a minute ago" in second
    assert [m.to for m in mail.outbox] == [["news@acme.example"]] * 2
    assert login(world.alice).post(link_to(mail.outbox[0])).status_code == 200


def test_the_demo_teams_from_address_is_confirmed() -> None:
    tenant = seed_demo()
    identity = sender_identity_get(tenant=tenant)
    assert (identity.sender_email, identity.pending_sender_email) == (
        "hello@demo-shop.example",
        "",
    )
    assert mail.outbox == []


def test_clearing_the_from_address_applies_at_once(world: Any) -> None:
    sender_identity_update(tenant=world.acme, sender_email="news@acme.example", verified=True)
    sender_identity_update(tenant=world.acme, sender_email="")
    assert sender_identity_get(tenant=world.acme).sender_email == ""
    assert mail.outbox == []
