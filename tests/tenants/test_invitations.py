"""Invite colleagues by email (issue 18, item 5): an address without an account gets a link
that creates the account and the membership — expiring, single use, revocable, listed as
pending."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from accounts.models import User
from tenants.models import Invitation, Membership, Role, invitation_secret_hash

PASSWORD = "a long and unusual passphrase 42"


def invite(client, email: str = "new.colleague@example.com", role: str = "marketer"):  # type: ignore[no-untyped-def]
    mail.outbox.clear()
    response = client.post("/t/acme/settings/members/add/", {"email": email, "role": role})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert len(mail.outbox) == 1
    link = re.search(r"https?://\S+/invite/\S+/", mail.outbox[0].body)
    assert link, mail.outbox[0].body
    return mail.outbox[0], link.group(0).split("://", 1)[1].split("/", 1)[1]


def test_an_address_without_an_account_gets_an_invitation_listed_as_pending(login, world) -> None:
    client = login(world.alice)
    message, path = invite(client)

    assert message.to == ["new.colleague@example.com"]
    assert message.subject == "Alice invited you to Acme on Wayfarer"
    assert "as marketer" in message.body
    page = client.get("/t/acme/settings/members/").content.decode()
    assert "Invitation sent to new.colleague@example.com" in page
    assert "new.colleague@example.com" in page and "pending" in page
    # The link is the only copy of its secret: the database keeps a hash.
    secret = path.rstrip("/").rsplit("/", 1)[1]
    invitation = Invitation.objects.get(tenant=world.acme)
    assert invitation.secret_hash == invitation_secret_hash(secret) != secret
    assert not User.objects.filter(email="new.colleague@example.com").exists()


def test_the_link_creates_the_account_and_the_membership_once(client, login, world) -> None:
    _, path = invite(login(world.alice), role="viewer")
    client.logout()

    page = client.get(f"/{path}")
    assert page.status_code == 200
    assert "Join Acme" in page.content.decode()
    joined = client.post(
        f"/{path}",
        {"first_name": "Nia", "last_name": "Okafor", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert joined.status_code == 302 and joined["Location"] == "/t/acme/"
    user = User.objects.get(email="new.colleague@example.com")
    assert user.first_name == "Nia" and user.check_password(PASSWORD)
    assert user.email_verified_at is not None  # the link proved the address
    assert Membership.objects.get(tenant=world.acme, user=user).role == Role.VIEWER
    assert client.get("/t/acme/").status_code == 200  # signed in

    client.logout()
    again = client.get(f"/{path}")
    assert again.status_code == 410 and "Invitation used" in again.content.decode()
    replay = client.post(f"/{path}", {"password1": PASSWORD, "password2": PASSWORD})
    assert replay.status_code == 410
    assert User.objects.filter(email="new.colleague@example.com").count() == 1


def test_a_failed_accept_keeps_what_was_typed_and_says_why(client, login, world) -> None:
    _, path = invite(login(world.alice))
    client.logout()
    response = client.post(
        f"/{path}", {"first_name": "Nia", "password1": PASSWORD, "password2": "different"}
    )
    assert response.status_code == 400
    assert "The two passwords differ." in response.content.decode()
    assert 'value="Nia"' in response.content.decode()
    assert not User.objects.filter(email="new.colleague@example.com").exists()


def test_an_invitation_expires(client, login, world) -> None:
    _, path = invite(login(world.alice))
    client.logout()
    with time_machine.travel(timezone.now() + timedelta(days=8)):
        page = client.get(f"/{path}")
        assert page.status_code == 410 and "Invitation expired" in page.content.decode()
        assert (
            client.post(f"/{path}", {"password1": PASSWORD, "password2": PASSWORD}).status_code
            == 410
        )
    assert not User.objects.filter(email="new.colleague@example.com").exists()


def test_a_withdrawn_or_replaced_invitation_stops_working(client, login, world) -> None:
    admin = login(world.alice)
    _, first = invite(admin)
    _, second = invite(admin)  # inviting again replaces the first link
    assert admin.get(f"/{first}").status_code == 410

    invitation = Invitation.objects.get(tenant=world.acme, revoked_at=None)
    admin.post(f"/t/acme/settings/members/invitations/{invitation.public_id}/revoke/")
    page = client.get(f"/{second}")
    assert page.status_code == 410 and "Invitation withdrawn" in page.content.decode()
    assert "pending" not in admin.get("/t/acme/settings/members/").content.decode()


def test_someone_with_an_account_joins_at_once_without_an_invitation(login, world) -> None:
    mail.outbox.clear()
    login(world.alice).post(
        "/t/acme/settings/members/add/", {"email": "charlie@example.com", "role": "viewer"}
    )
    assert Membership.objects.get(tenant=world.acme, user=world.charlie).role == Role.VIEWER
    assert not Invitation.objects.exists() and not mail.outbox


def test_an_account_made_meanwhile_signs_in_to_accept(client, login, world) -> None:
    _, path = invite(login(world.alice))
    client.logout()
    late = User.objects.create_user(email="new.colleague@example.com", password=PASSWORD)
    page = client.get(f"/{path}").content.decode()
    assert "Sign in</a> to accept" in page

    client.force_login(world.bob)  # someone else: told, not joined
    assert "you are signed in as bob@example.com" in client.get(f"/{path}").content.decode()
    client.post(f"/{path}")
    assert not Membership.objects.filter(tenant=world.acme, user=late).exists()

    client.force_login(late)
    assert client.post(f"/{path}")["Location"] == "/t/acme/"
    assert Membership.objects.filter(tenant=world.acme, user=late).exists()


@pytest.mark.parametrize("who", ["dave", "bob"])  # marketer, viewer
def test_only_admins_invite(login, world, who) -> None:
    response = login(getattr(world, who)).post(
        "/t/acme/settings/members/add/", {"email": "x@example.com", "role": "viewer"}
    )
    assert response.status_code == 403 and not Invitation.objects.exists()


def test_only_an_owner_invites_an_owner(login, world) -> None:
    response = login(world.alice).post(
        "/t/acme/settings/members/add/", {"email": "boss@example.com", "role": "owner"}
    )
    assert response.status_code == 400
    assert "Only an owner can make someone an owner." in response.content.decode()
    assert not Invitation.objects.exists()


def test_another_team_cannot_see_or_withdraw_the_invitation(login, world) -> None:
    invite(login(world.alice))
    invitation = Invitation.objects.get(tenant=world.acme)
    charlie = login(world.charlie)
    assert (
        charlie.post(
            f"/t/globex/settings/members/invitations/{invitation.public_id}/revoke/"
        ).status_code
        == 404
    )
    assert "new.colleague" not in charlie.get("/t/globex/settings/members/").content.decode()
    invitation.refresh_from_db()
    assert invitation.revoked_at is None


def test_an_unknown_link_is_not_found(client, world) -> None:
    assert client.get("/invite/acme/not-a-secret/").status_code == 404
    assert client.get("/invite/nope/x/").status_code == 404
