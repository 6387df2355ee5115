"""Accounts prove their address, and sign-up and password reset never say which addresses have
accounts (issue 19, "Sign-up cannot be used to spoof or spam")."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core import mail
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils.timezone import now

from accounts.services import user_email_verified
from ops.demo import DEMO_EMAIL, seed_demo
from tenants.models import Membership, Tenant
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

SIGNUP = {
    "email": "zoe@example.com",
    "password1": "a-long-unusual-passphrase",
    "password2": "a-long-unusual-passphrase",
    "name": "Zoe's Bikes",
    "slug": "",
    "timezone": "Europe/Paris",
}
LINK = re.compile(r"https?://\S+/accounts/verify/[0-9a-f-]+/\S+/")


def link_in(message: Any) -> str:
    """The path of the one verification link in an email."""
    [url] = LINK.findall(message.body)
    return urlsplit(url).path


def sign_up(client: Any, **change: str) -> Any:
    return client.post("/signup/", {**SIGNUP, **change}, follow=True)


def answer(response: Any, email: str) -> tuple[Any, ...]:
    """What a visitor can see of a sign-up's answer, with the address they typed taken out."""
    cookies = sorted(response.client.cookies.keys())
    body = response.content.decode().replace(email, "EMAIL")
    body = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", body)
    body = re.sub(r'"X-CSRFToken": "[^"]+"', "", body)
    body = re.sub(r'nonce="[^"]+"', "", body)  # the CSP nonce is new in every response
    return response.status_code, response.redirect_chain, cookies, body


# --- Sign-up -------------------------------------------------------------------------------------


def test_it_answers_a_sign_up_with_a_taken_address_exactly_as_a_new_one(client, world) -> None:
    from django.test import Client

    new = sign_up(Client(), email="zoe@example.com", slug="zoe")
    taken = sign_up(Client(), email="alice@example.com", slug="alice-bikes")

    assert answer(new, "zoe@example.com") == answer(taken, "alice@example.com")
    assert "Check your inbox" in taken.content.decode()
    # No second account and no team for the taken address; its owner is told by email.
    assert get_user_model().objects.filter(email="alice@example.com").count() == 1
    assert not Tenant.objects.filter(slug="alice-bikes").exists()
    to_zoe, to_alice = mail.outbox
    assert to_zoe.to == ["zoe@example.com"] and LINK.search(to_zoe.body)
    assert to_alice.to == ["alice@example.com"]
    assert to_alice.subject == "Someone tried to create a Wayfarer account with your address"
    assert "/accounts/password-reset/" in to_alice.body and not LINK.search(to_alice.body)


def test_it_still_names_a_taken_team_url_whatever_the_address(client, world) -> None:
    for email in ("zoe@example.com", "alice@example.com"):
        response = client.post("/signup/", {**SIGNUP, "email": email, "slug": "acme"})
        assert response.status_code == 200
        assert response.context["form"].errors == {
            "slug": ["A team with this URL name already exists."]
        }
    assert mail.outbox == []


def test_a_new_account_is_unconfirmed_can_look_around_and_confirms_with_the_link(client) -> None:
    sign_up(client)
    user = get_user_model().objects.get(email="zoe@example.com")
    assert user.email_verified_at is None and not user_email_verified(user)
    assert "_auth_user_id" not in client.session  # signed in by the link or the password

    client.post(
        "/accounts/login/", {"username": "zoe@example.com", "password": SIGNUP["password1"]}
    )
    dashboard = client.get("/t/zoes-bikes/").content.decode()
    assert "Confirm your email address." in dashboard
    assert "Send the link again" in dashboard
    client.post("/accounts/logout/")

    [message] = mail.outbox
    url = link_in(message)
    asked = client.get(url)
    assert asked.status_code == 200 and "Confirm my address" in asked.content.decode()
    user.refresh_from_db()
    assert user.email_verified_at is None  # opening the link (a mail scanner may) is not enough

    confirmed = client.post(url, follow=True)
    assert confirmed.redirect_chain[-1][0] == "/t/zoes-bikes/"
    page = confirmed.content.decode()
    assert "zoe@example.com is confirmed" in page and "Confirm your email address." not in page
    assert client.session["_auth_user_id"] == str(user.pk)
    user.refresh_from_db()
    assert user_email_verified(user)
    assert Membership.objects.get(user=user).tenant.slug == "zoes-bikes"


def test_a_link_works_once(client) -> None:
    sign_up(client)
    url = link_in(mail.outbox[0])
    assert client.post(url).status_code == 302
    client.post("/accounts/logout/")

    again = client.post(url)
    assert again.status_code == 400
    assert "This link does not work" in again.content.decode()
    assert "_auth_user_id" not in client.session


def test_a_link_expires_after_three_days(client) -> None:
    sign_up(client)
    url = link_in(mail.outbox[0])
    with time_machine.travel(now() + timedelta(days=3, minutes=1)):
        response = client.post(url)
    assert response.status_code == 400
    assert get_user_model().objects.get(email="zoe@example.com").email_verified_at is None


def test_a_link_cannot_be_forged_nor_used_for_another_user_or_address(client, world) -> None:
    sign_up(client)
    zoe = get_user_model().objects.get(email="zoe@example.com")
    url = link_in(mail.outbox[0])
    _, _, _, public_id, token, _ = url.split("/")
    world.bob.email_verified_at = None
    world.bob.save()

    forged = f"/accounts/verify/{public_id}/{token[:-1]}{'a' if token[-1] != 'a' else 'b'}/"
    someone_else = f"/accounts/verify/{world.bob.public_id}/{token}/"
    assert client.post(forged).status_code == 400
    assert client.post(someone_else).status_code == 400
    assert client.get("/accounts/verify/not-a-uuid/x/").status_code == 404

    zoe.email = "zoe@elsewhere.example"  # the address changed: the link proved the old one
    zoe.save()
    assert client.post(url).status_code == 400
    zoe.refresh_from_db()
    world.bob.refresh_from_db()
    assert zoe.email_verified_at is None and world.bob.email_verified_at is None


def test_it_sends_the_link_again_at_most_once_a_minute(client) -> None:
    sign_up(client)
    client.post(
        "/accounts/login/", {"username": "zoe@example.com", "password": SIGNUP["password1"]}
    )

    first = client.post("/accounts/verify/resend/", {"next": "/t/zoes-bikes/"}, follow=True)
    second = client.post("/accounts/verify/resend/", {"next": "https://evil.example/"}, follow=True)

    assert first.redirect_chain[-1][0] == "/t/zoes-bikes/"
    assert "We sent a new link to zoe@example.com" in first.content.decode()
    assert "less than a minute ago" in second.content.decode()
    assert second.redirect_chain[-1][0] == "/t/zoes-bikes/"  # home, never another site
    assert len(mail.outbox) == 2  # the sign-up's and one more
    with time_machine.travel(now() + timedelta(minutes=2)):
        client.post("/accounts/verify/resend/")
    assert len(mail.outbox) == 3
    # Every link is good until one is used.
    assert client.post(link_in(mail.outbox[1])).status_code == 302


def test_a_confirmed_account_sees_no_banner(login, world) -> None:
    page = login(world.alice).get("/t/acme/").content.decode()
    assert "Confirm your email address." not in page


# --- Password reset ------------------------------------------------------------------------------


def test_password_reset_answers_the_same_for_any_address(world) -> None:
    from django.test import Client

    known = Client().post("/accounts/password-reset/", {"email": "alice@example.com"}, follow=True)
    unknown = Client().post(
        "/accounts/password-reset/", {"email": "nobody@example.com"}, follow=True
    )

    assert answer(known, "alice@example.com") == answer(unknown, "nobody@example.com")
    assert [m.to for m in mail.outbox] == [["alice@example.com"]]


# --- Who is confirmed already --------------------------------------------------------------------


def test_the_demo_user_is_confirmed() -> None:
    seed_demo()
    assert user_email_verified(get_user_model().objects.get(email=DEMO_EMAIL))


def test_the_migration_confirms_the_accounts_made_before_it(transactional_db: None) -> None:
    executor = MigrationExecutor(connection)
    before = [("accounts", "0001_initial")]
    try:
        executor.migrate(before)
        apps = MigrationExecutor(connection).loader.project_state(before).apps
        OldUser = apps.get_model("accounts", "User")
        OldUser.objects.create(email="early@example.com", password="x")
        executor = MigrationExecutor(connection)
        executor.migrate([("accounts", "0002_user_email_verified_at")])
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    early = get_user_model().objects.get(email="early@example.com")
    assert early.email_verified_at == early.date_joined
    assert UserFactory(email_verified_at=None).email_verified_at is None  # new ones are not
