from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail

from tenants.models import ApiKey, Membership, Role, Tenant, hash_api_key
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

SIGNUP = {
    "email": "zoe@example.com",
    "password1": "a-long-unusual-passphrase",
    "password2": "a-long-unusual-passphrase",
    "name": "Zoe's Bikes",
    "slug": "",
    "timezone": "Europe/Paris",
}


def test_it_signs_up_a_new_team_and_its_owner(client) -> None:
    response = client.post("/signup/", SIGNUP, follow=True)
    # The same answer as for an address that has an account (tests/accounts): check your inbox.
    assert response.redirect_chain[-1][0] == "/signup/done/"
    assert "We sent a message to <strong>zoe@example.com</strong>" in response.content.decode()
    tenant = Tenant.objects.get(slug="zoes-bikes")
    assert tenant.timezone == "Europe/Paris"
    assert Membership.objects.get(tenant=tenant).role == Role.OWNER


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"slug": "acme"}, "slug", "A team with this URL name already exists"),
        ({"slug": "new"}, "slug", "is reserved"),
        ({"password2": "something-else"}, "password2", "The two passwords differ."),
        ({"password1": "short", "password2": "short"}, "password1", "too short"),
        ({"timezone": "Nowhere/Land"}, "timezone", "Select a valid choice"),
        ({"email": "not-an-email"}, "email", "valid email"),
    ],
)
def test_it_shows_sign_up_errors_and_creates_nothing(client, world, change, field, message) -> None:
    users, tenants = get_user_model().objects.count(), Tenant.objects.count()
    response = client.post("/signup/", {**SIGNUP, **change})
    assert response.status_code == 200
    assert message in " ".join(str(e) for e in response.context["form"].errors[field])
    assert (get_user_model().objects.count(), Tenant.objects.count()) == (users, tenants)
    assert "_auth_user_id" not in client.session


def test_it_signs_in_with_the_email_in_any_case(client, world) -> None:
    response = client.post(
        "/accounts/login/", {"username": "Alice@Example.com", "password": PASSWORD}, follow=True
    )
    assert response.redirect_chain[-1][0] == "/t/acme/"
    assert client.session["_auth_user_id"] == str(world.alice.pk)


def test_it_says_why_a_sign_in_failed(client, world) -> None:
    response = client.post("/accounts/login/", {"username": "alice@example.com", "password": "x"})
    assert response.status_code == 200
    assert "Please enter a correct email address and password" in response.content.decode()


def test_it_resets_a_forgotten_password_by_email(client, world) -> None:
    client.post("/accounts/password-reset/", {"email": "alice@example.com"})
    assert len(mail.outbox) == 1
    link = re.search(r"https?://[^/]+(/accounts/reset/\S+)", mail.outbox[0].body).group(1)
    form_page = client.get(link, follow=True)
    new = "another-long-passphrase"
    response = client.post(
        form_page.redirect_chain[-1][0], {"new_password1": new, "new_password2": new}, follow=True
    )
    assert "Password saved" in response.content.decode()
    world.alice.refresh_from_db()
    assert world.alice.check_password(new)


def test_it_sends_a_person_without_a_team_to_create_one(login, db) -> None:
    from tests.factories import UserFactory

    client = login(UserFactory())
    assert client.get("/", follow=True).redirect_chain[-1][0] == "/t/new/"
    response = client.post("/t/new/", {"name": "Side Project", "slug": "", "timezone": "UTC"})
    assert response["Location"] == "/t/side-project/"


def test_it_switches_between_the_users_teams(login, world) -> None:
    from tests.factories import MembershipFactory

    MembershipFactory(tenant=world.globex, user=world.alice, role=Role.VIEWER)
    client = login(world.alice)
    page = client.get("/t/acme/").content.decode()
    assert 'href="/t/acme/"' in page and 'href="/t/globex/"' in page
    client.get("/t/globex/")
    assert client.get("/")["Location"] == "/t/globex/"  # back to the last team used


def test_it_lets_an_admin_change_team_settings(login, world) -> None:
    response = login(world.alice).post(
        "/t/acme/settings/",
        {"name": "Acme Corp", "timezone": "America/New_York"},
        follow=True,
    )
    assert "Settings saved." in response.content.decode()
    world.acme.refresh_from_db()
    assert (world.acme.name, world.acme.timezone) == ("Acme Corp", "America/New_York")


def test_it_shows_settings_errors_and_keeps_the_old_values(login, world) -> None:
    response = login(world.alice).post(
        "/t/acme/settings/",
        {"name": "", "timezone": "Mars/Olympus"},
    )
    assert response.status_code == 200
    assert set(response.context["form"].errors) == {"name", "timezone"}
    world.acme.refresh_from_db()
    assert world.acme.name == "Acme"


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/t/acme/settings/", {"name": "Marketer's Acme", "timezone": "UTC"}),
        ("/t/acme/settings/members/add/", {"email": "charlie@example.com", "role": "viewer"}),
        ("/t/acme/settings/api-keys/new/", {"name": "k", "kind": "secret"}),
    ],
)
def test_it_keeps_admin_work_from_marketers(login, world, path, data) -> None:
    keys, members = ApiKey.objects.count(), Membership.objects.count()
    response = login(world.dave).post(path, data)
    assert response.status_code == 403
    assert "role" in response.content.decode()
    assert (ApiKey.objects.count(), Membership.objects.count()) == (keys, members)
    world.acme.refresh_from_db()
    assert world.acme.name == "Acme"


def test_it_adds_members_and_explains_a_bad_address(login, world) -> None:
    # (An address without an account gets an invitation: tests/tenants/test_invitations.py.)
    client = login(world.alice)
    bad = client.post(
        "/t/acme/settings/members/add/",
        {"email": "ghost@", "role": "viewer"},
        HTTP_HX_REQUEST="true",
    )
    assert bad.status_code == 400
    assert "Enter a valid email address." in bad.content.decode()
    assert 'value="ghost@"' in bad.content.decode()  # what was typed stays
    assert "<html" not in bad.content.decode()  # htmx gets the panel only

    good = client.post(
        "/t/acme/settings/members/add/",
        {"email": "charlie@example.com", "role": "viewer"},
        HTTP_HX_REQUEST="true",
    )
    assert good.status_code == 200
    assert "charlie@example.com joined as viewer." in good.content.decode()
    assert Membership.objects.get(tenant=world.acme, user=world.charlie).role == Role.VIEWER


def test_it_changes_roles_and_removes_members(login, world) -> None:
    client = login(world.alice)
    bob = Membership.objects.get(tenant=world.acme, user=world.bob)
    response = client.post(f"/t/acme/settings/members/{bob.public_id}/role/", {"role": "marketer"})
    assert response["Location"] == "/t/acme/settings/members/"
    bob.refresh_from_db()
    assert bob.role == Role.MARKETER

    client.post(f"/t/acme/settings/members/{bob.public_id}/remove/")
    assert not Membership.objects.filter(pk=bob.pk).exists()
    assert login(world.bob).get("/t/acme/").status_code == 404  # gone means gone


def test_it_shows_a_new_key_once_and_never_again(login, world) -> None:
    client = login(world.alice)
    response = client.post(
        "/t/acme/settings/api-keys/new/", {"name": "Shop backend", "kind": "secret"}
    )
    assert response["Cache-Control"] == "no-store"
    raw = re.search(r'id="new-api-key">(wf_sk_[^<]+)<', response.content.decode()).group(1)
    key = ApiKey.objects.get(tenant=world.acme, name="Shop backend")
    assert key.key_hash == hash_api_key(raw)
    assert raw not in client.get("/t/acme/settings/api-keys/").content.decode()
    assert client.get("/api/v1/tenant/", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 200


def test_it_revokes_a_key_at_once(login, world) -> None:
    client = login(world.alice)
    response = client.post(
        "/t/acme/settings/api-keys/new/", {"name": "Old", "kind": "secret"}
    ).content.decode()
    raw = re.search(r'id="new-api-key">(wf_sk_[^<]+)<', response).group(1)
    key = ApiKey.objects.get(name="Old")
    revoked = client.post(
        f"/t/acme/settings/api-keys/{key.public_id}/revoke/", HTTP_HX_REQUEST="true"
    )
    assert "revoked" in revoked.content.decode()
    api = client.get("/api/v1/tenant/", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert api.status_code == 401


def test_it_explains_a_bad_key_form(login, world) -> None:
    response = login(world.alice).post(
        "/t/acme/settings/api-keys/new/", {"name": "", "kind": "root"}
    )
    assert response.status_code == 400
    assert set(response.context["form"].errors) == {"name", "kind"}
    assert not ApiKey.objects.exists()


def test_it_hides_admin_controls_from_viewers(login, world) -> None:
    page = login(world.bob).get("/t/acme/settings/members/").content.decode()
    assert "Add a member" not in page and "Remove" not in page
    assert "Only admins and owners" in login(world.bob).get("/t/acme/settings/").content.decode()


def test_it_shows_friendly_error_pages(login, world) -> None:
    client = login(world.bob)
    missing = client.get("/t/globex/")
    assert missing.status_code == 404
    assert "Page not found" in missing.content.decode()
    forbidden = client.post("/t/acme/settings/", {"name": "x"})
    assert forbidden.status_code == 403
    assert "Viewers can look but not change anything." in forbidden.content.decode()


def test_it_takes_someone_who_left_a_team_back_home(login, world) -> None:
    from tests.factories import MembershipFactory

    MembershipFactory(tenant=world.globex, user=world.alice, role=Role.ADMIN)
    me = Membership.objects.get(tenant=world.acme, user=world.alice)
    response = login(world.alice).post(
        f"/t/acme/settings/members/{me.public_id}/remove/", HTTP_HX_REQUEST="true"
    )
    assert response["HX-Redirect"] == "/"
    assert not Membership.objects.filter(pk=me.pk).exists()


def test_it_apologises_for_a_server_error_without_touching_the_database(
    rf, django_assert_num_queries
) -> None:
    from ops.views import error_500

    with django_assert_num_queries(0):
        response = error_500(rf.get("/"))
    assert response.status_code == 500
    assert "Something went wrong" in response.content.decode()
