"""The editor's "Send test" is not a way to mail anyone (issue 19): it goes only to the team's
members at confirmed addresses, never to a suppressed one, only from a person who confirmed
their own address, and only so often. Sent to a real SMTP server (tests/mail_sink.py)."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape
from typing import Any

import pytest
import time_machine
from django.utils.timezone import now

from audience.models import Contact
from messaging import previews
from messaging.models import Channel, Suppression, Template
from messaging.services import suppression_add
from tests.mail_sink import MailSink

pytestmark = pytest.mark.django_db

SEND_TEST = "/t/acme/messages/templates/send-test/"
EDITOR = "/t/acme/messages/templates/new/"
HTMX = {"HTTP_HX_REQUEST": "true"}
EMAIL = {
    "channel": "email",
    "name": "Spring sale",
    "subject": "{{ contact.first_name | default: 'Hi' }}, spring is here",
    "preheader": "",
    "html": "<p>Dear {{ contact.first_name }},</p>",
}


def send_test(client: Any, to: str, **extra: str) -> str:
    response = client.post(SEND_TEST, {**EMAIL, "test_to": to, **extra}, **HTMX)
    assert response.status_code == 200
    return unescape(response.content.decode())


def test_it_offers_only_the_teams_members_with_confirmed_addresses(login: Any, world: Any) -> None:
    world.bob.email_verified_at = None
    world.bob.save()

    page = login(world.dave).get(EDITOR).content.decode()

    offered = re.findall(
        r'<option value="([^"]+)"', page.split('name="test_to"')[1].split("</select>")[0]
    )
    assert offered == ["olivia@example.com", "alice@example.com", "dave@example.com"]


@pytest.mark.parametrize(
    "to",
    [
        "victim@anywhere.example",  # any address at all
        "charlie@example.com",  # another team's member
        "bob@example.com",  # a member whose address is not confirmed
    ],
)
def test_it_sends_no_test_to_an_address_that_is_not_a_confirmed_member(
    login: Any, world: Any, mail_sink: MailSink, to: str
) -> None:
    world.bob.email_verified_at = None
    world.bob.save()

    answer = send_test(login(world.dave), to)

    assert "Nothing was sent: choose a member of your team to send the test to." in answer
    # The service refuses it too, whatever calls it.
    direct = previews.template_send_test(
        tenant=world.acme,
        template=Template(
            tenant=world.acme,
            channel=Channel.EMAIL,
            **{k: v for k, v in EMAIL.items() if k not in ("channel",)},
        ),
        contact=None,
        actor=world.dave,
        to=to,
    )
    assert not direct.ok and "tests go only to your team's members" in direct.text
    assert mail_sink.received() == []


def test_it_sends_no_test_to_a_suppressed_member_and_says_why(
    login: Any, world: Any, mail_sink: MailSink
) -> None:
    suppression_add(
        tenant=world.acme, address="Alice@example.com", reason=Suppression.Reason.BOUNCED
    )

    answer = send_test(login(world.dave), "alice@example.com")

    assert (
        "Nothing was sent: alice@example.com is on your suppression list (bounced), so no "
        "message goes there, tests included." in answer
    )
    assert mail_sink.received() == []
    assert "Sent a test" in send_test(login(world.dave), "dave@example.com")  # others still go


def test_a_person_who_has_not_confirmed_their_address_cannot_send_tests(
    login: Any, world: Any, mail_sink: MailSink
) -> None:
    world.dave.email_verified_at = None
    world.dave.save()
    client = login(world.dave)
    ann = Contact.objects.create(tenant=world.acme, email="ann@example.com", first_name="Ann")

    page = client.get(EDITOR).content.decode()
    email = send_test(client, "alice@example.com")
    push = unescape(
        client.post(
            SEND_TEST,
            {
                "channel": "push",
                "name": "P",
                "title": "Hi",
                "body": "B",
                "contact": str(ann.public_id),
            },
            **HTMX,
        ).content.decode()
    )

    assert "Tests need a confirmed address: follow the link we sent to dave@example.com." in page
    assert "Confirm your email address." in page  # the banner, with its resend button
    for answer in (email, push):
        assert "Nothing was sent: confirm your email address first" in answer
    assert mail_sink.received() == []


def test_a_person_may_send_ten_tests_an_hour(login: Any, world: Any, mail_sink: MailSink) -> None:
    client = login(world.dave)
    start = now().replace(minute=5, second=0, microsecond=0)
    with time_machine.travel(start, tick=False):
        answers = [send_test(client, "dave@example.com") for _ in range(11)]
        alice_may = send_test(login(world.alice), "alice@example.com")
    with time_machine.travel(start + timedelta(hours=1), tick=False):
        next_hour = send_test(login(world.dave), "dave@example.com")

    assert all("Sent a test" in a for a in answers[:10])
    assert (
        f"Nothing was sent: you sent 10 tests this hour, the most one person may. The next can "
        f"go at {start + timedelta(minutes=55):%H:%M} UTC." in answers[10]
    )
    assert "Sent a test" in alice_may and "Sent a test" in next_hour
    assert len(mail_sink.wait_for(12)) == 12


def test_a_team_may_send_fifty_tests_a_day(
    login: Any, world: Any, mail_sink: MailSink, settings: Any
) -> None:
    settings.MESSAGING_SEND_TESTS_PER_USER_HOUR = 100
    start = now().replace(hour=9, minute=0, second=0, microsecond=0)
    with time_machine.travel(start, tick=False):
        for _ in range(50):
            send_test(login(world.dave), "dave@example.com")
        refused = send_test(login(world.alice), "alice@example.com")
        other_team = send_test_globex(login(world.charlie))
    with time_machine.travel(start + timedelta(days=1), tick=False):
        tomorrow = send_test(login(world.alice), "alice@example.com")

    assert "Nothing was sent: your team sent 50 tests today, the most a team may." in refused
    assert "Sent a test" in other_team and "Sent a test" in tomorrow
    assert len(mail_sink.wait_for(52)) == 52


def send_test_globex(client: Any) -> str:
    response = client.post(
        "/t/globex/messages/templates/send-test/",
        {**EMAIL, "test_to": "charlie@example.com"},
        **HTMX,
    )
    return unescape(response.content.decode())
