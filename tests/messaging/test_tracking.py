"""The open pixel and the click redirects inside messages (/m/o/, /m/c/, /m/pc/): what a reader's
mail client or browser gets, and the events recorded on the contact."""

from __future__ import annotations

import threading
from functools import partial
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.urls import reverse, set_script_prefix

from audience.models import Event
from messaging import links, outcomes
from messaging.models import Channel, Delivery, Template
from tests.factories import sent_delivery

pytestmark = pytest.mark.django_db

UA = "Mozilla/5.0 (Macintosh) MailClient/1.0"
SHOP = "https://shop.example/sale?utm_source=email&item=42"


_delivery = partial(sent_delivery, source="campaign:1")


@pytest.fixture
def delivery(world: Any, email_template: Template) -> Delivery:
    return _delivery(world.acme, email_template)


@pytest.fixture
def push_template(world: Any) -> Template:
    return Template.objects.create(
        tenant=world.acme,
        name="Back in stock",
        channel=Channel.PUSH,
        title="It's back",
        body="The blue mug is back in stock.",
        target_url="https://shop.example/mug",
    )


def _path(absolute: str) -> str:
    """The part of a link the test client requests (links are absolute, for mail)."""
    parts = urlsplit(absolute)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def _events(name: str, **where: Any) -> list[Event]:
    return list(Event.objects.filter(name=name, **where).order_by("pk"))


def _tamper(token: str) -> str:
    value, signature = token.rsplit(":", 1)
    return f"{value}:{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"


# --- the open pixel -------------------------------------------------------------------------------


def test_it_answers_the_pixel_with_a_transparent_gif_that_is_never_cached(
    client: Client, delivery: Delivery
) -> None:
    response = client.get(_path(links.open_url(delivery)), HTTP_USER_AGENT=UA)

    assert response.status_code == 200
    assert response["Content-Type"] == "image/gif"
    assert response.content.startswith(b"GIF89a\x01\x00\x01\x00")  # one pixel wide and high
    assert "no-store" in response["Cache-Control"]
    [opened] = _events(outcomes.EMAIL_OPENED)
    assert opened.contact_id == delivery.contact_id
    assert opened.tenant_id == delivery.tenant_id
    assert opened.properties["delivery_id"] == str(delivery.public_id)
    assert opened.properties["user_agent"] == UA
    assert opened.properties["source"] == "campaign:1"


def test_it_records_one_open_however_often_the_message_is_opened(
    client: Client, delivery: Delivery
) -> None:
    for _ in range(3):
        assert client.get(_path(links.open_url(delivery))).status_code == 200

    assert len(_events(outcomes.EMAIL_OPENED)) == 1


def test_it_answers_a_forged_or_unknown_pixel_exactly_like_a_good_one_and_records_nothing(
    client: Client, world: Any, email_template: Template, delivery: Delivery
) -> None:
    good = client.get(_path(links.open_url(delivery)))
    Event.objects.all().delete()
    erased = _delivery(world.acme, email_template, "gone@example.com")
    erased_url = _path(links.open_url(erased))
    erased.delete()
    token = urlsplit(links.open_url(delivery)).path.split("/")[-1].removesuffix(".gif")

    for path in (f"/m/o/{_tamper(token)}.gif", "/m/o/garbage.gif", "/m/o/a:b:c.gif", erased_url):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.content == good.content
        assert response["Content-Type"] == good["Content-Type"]
        assert response["Cache-Control"] == good["Cache-Control"]
    assert not Event.objects.exists()


def test_it_refuses_anything_but_get_on_the_pixel(client: Client, delivery: Delivery) -> None:
    assert client.post(_path(links.open_url(delivery))).status_code == 405
    assert not Event.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_it_records_one_open_when_many_load_the_pixel_at_the_same_moment(
    world: Any, email_template: Template
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises writers; the race needs PostgreSQL")
    delivery = _delivery(world.acme, email_template)
    path = _path(links.open_url(delivery))
    start = threading.Barrier(6)
    statuses: list[int] = []
    errors: list[BaseException] = []

    def load() -> None:
        try:
            start.wait()
            statuses.append(Client().get(path).status_code)
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)
        finally:
            connection.close()  # each thread has its own connection

    threads = [threading.Thread(target=load) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert not errors
    assert statuses == [200] * 6
    assert len(_events(outcomes.EMAIL_OPENED)) == 1


# --- click redirects ------------------------------------------------------------------------------


def test_it_redirects_a_click_to_the_link_in_the_message_and_records_every_click(
    client: Client, delivery: Delivery
) -> None:
    path = _path(links.click_url(delivery, SHOP))

    first = client.get(path, HTTP_USER_AGENT=UA)
    second = client.get(path)

    assert first.status_code == 302
    assert first["Location"] == SHOP
    assert "no-store" in first["Cache-Control"]
    assert second.status_code == 302
    clicks = _events(outcomes.EMAIL_CLICKED, contact=delivery.contact)
    assert [c.properties["url"] for c in clicks] == [SHOP, SHOP]
    assert clicks[0].properties["user_agent"] == UA


def test_it_counts_a_click_as_an_open_when_the_images_were_blocked(
    client: Client, delivery: Delivery
) -> None:
    client.get(_path(links.click_url(delivery, SHOP)))
    client.get(_path(links.open_url(delivery)))  # images shown later: no second open
    client.get(_path(links.click_url(delivery, "https://shop.example/other")))

    assert len(_events(outcomes.EMAIL_OPENED, contact=delivery.contact)) == 1
    assert len(_events(outcomes.EMAIL_CLICKED, contact=delivery.contact)) == 2


def test_it_refuses_a_tampered_click_link_with_a_page_never_a_redirect(
    client: Client, world: Any, email_template: Template, delivery: Delivery
) -> None:
    other = _delivery(world.acme, email_template, "bob@example.com")
    path = urlsplit(links.click_url(delivery, SHOP)).path
    token = path.split("/")[-1]
    query = parse_qs(urlsplit(links.click_url(delivery, SHOP)).query)
    signature = query["s"][0]
    other_path = urlsplit(links.click_url(other, SHOP)).path
    evil = "https://evil.example/login"
    script = "javascript:alert(1)"

    attempts = [
        f"{path}?{urlencode({'u': evil, 's': signature})}",  # another URL, same signature
        f"{path}?{urlencode({'u': SHOP, 's': signature[:-1] + 'x'})}",  # forged signature
        f"{path}?{urlencode({'u': SHOP})}",  # no signature
        f"{path}?{urlencode({'s': signature})}",  # no URL
        f"{other_path}?{urlencode({'u': SHOP, 's': signature})}",  # another delivery's token
        f"/m/c/{_tamper(token)}?{urlencode({'u': SHOP, 's': signature})}",  # forged token
        # Signed with our key but not a web address: still no redirect there.
        f"{path}?{urlencode({'u': script, 's': links.url_signature(token, script)})}",
    ]
    for attempt in attempts:
        response = client.get(attempt)
        assert response.status_code == 400, attempt
        assert "Location" not in response
        assert b"This link is not valid" in response.content
        assert response["X-Robots-Tag"].startswith("noindex")
    assert not Event.objects.exists()


def test_it_still_leads_to_the_page_when_the_message_is_gone_but_records_nothing(
    client: Client, delivery: Delivery
) -> None:
    path = _path(links.click_url(delivery, SHOP))
    delivery.contact.delete()  # erased: the delivery goes with the contact

    response = client.get(path)

    assert response.status_code == 302
    assert response["Location"] == SHOP
    assert not Event.objects.exists()


def test_links_follow_the_path_the_app_is_mounted_under(delivery: Delivery) -> None:
    token = links._token(delivery)
    try:
        for prefix in ("/", "/TOKEN-svc/"):  # a prefix may even hold the path's placeholder
            set_script_prefix(prefix)
            expected = reverse("unsubscribe", args=[token])
            assert expected.startswith(prefix)
            assert links.unsubscribe_url(delivery) == f"{settings.SITE_URL}{expected}"
    finally:
        set_script_prefix("/")


def test_a_click_link_sent_before_a_secret_key_rotation_still_redirects(
    client: Client, delivery: Delivery, settings: Any
) -> None:
    path = _path(links.click_url(delivery, SHOP))
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-new-key-" + "x" * 50

    response = client.get(path)

    assert (response.status_code, response["Location"]) == (302, SHOP)
    assert _path(links.click_url(delivery, SHOP)) != path  # new mail is signed with the new key
    settings.SECRET_KEY_FALLBACKS = []
    assert client.get(path).status_code == 400  # a key dropped from the fallbacks: refused


def test_it_records_a_click_only_on_the_contact_of_the_tenant_that_sent_it(
    client: Client, world: Any, email_template: Template, delivery: Delivery
) -> None:
    globex_template = Template.objects.create(
        tenant=world.globex, name="Hi", channel=Channel.EMAIL, subject="Hi", html="<p>Hi</p>"
    )
    # The same person is a contact of both tenants.
    globex_delivery = _delivery(world.globex, globex_template, delivery.contact.email)

    client.get(_path(links.click_url(delivery, SHOP)))
    client.get(_path(links.open_url(delivery)))

    assert {e.tenant_id for e in Event.objects.all()} == {world.acme.pk}
    assert {e.contact_id for e in Event.objects.all()} == {delivery.contact_id}
    assert not Event.objects.filter(contact=globex_delivery.contact).exists()


# --- push clicks ----------------------------------------------------------------------------------


def test_it_redirects_a_push_click_and_records_it(
    client: Client, world: Any, push_template: Template
) -> None:
    push = _delivery(world.acme, push_template)
    target = "https://shop.example/mug"

    response = client.get(_path(links.push_click_url(push, target)), HTTP_USER_AGENT=UA)

    assert response.status_code == 302
    assert response["Location"] == target
    assert "no-store" in response["Cache-Control"]
    [clicked] = _events(outcomes.PUSH_CLICKED)
    assert clicked.contact_id == push.contact_id
    assert clicked.properties["url"] == target
    assert clicked.properties["channel"] == "push"
    assert not _events(outcomes.EMAIL_OPENED)


def test_it_keeps_push_and_email_links_apart(
    client: Client, world: Any, push_template: Template, delivery: Delivery
) -> None:
    push = _delivery(world.acme, push_template, "pat@example.com")
    push_link = urlsplit(links.push_click_url(push, SHOP))
    email_link = urlsplit(links.click_url(delivery, SHOP))

    # A correctly signed pair, sent to the other channel's path.
    assert (
        client.get(f"{push_link.path.replace('/pc/', '/c/')}?{push_link.query}").status_code == 400
    )
    assert (
        client.get(f"{email_link.path.replace('/c/', '/pc/')}?{email_link.query}").status_code
        == 400
    )
    assert not Event.objects.exists()
