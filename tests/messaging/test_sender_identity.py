"""Each tenant's sender identity (From, Reply-To, VAPID keys): made with the tenant, read and
changed in Messages → Sending settings, the REST API and the admin."""

from __future__ import annotations

import base64
from html import unescape
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from py_vapid import Vapid

from messaging.models import SenderIdentity
from messaging.selectors import sender_identity_get
from messaging.services import sender_identity_create, sender_identity_update
from tenants import services as tenant_services
from tenants.models import Tenant
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

SETTINGS = "/t/acme/messages/settings/"
SENDER = "/t/acme/messages/settings/sender/"


def _b64decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def test_it_gives_every_new_tenant_its_own_working_vapid_key_pair() -> None:
    one = tenant_services.tenant_create(name="One", slug="one")
    two = tenant_services.tenant_create(name="Two", slug="two")
    # Made on tenants' announcement, in the creating transaction: read without creating.
    one_identity = SenderIdentity.objects.get(tenant=one)
    two_identity = SenderIdentity.objects.get(tenant=two)
    assert one_identity.vapid_public_key != two_identity.vapid_public_key
    # The private key is what pywebpush is given; it must derive the published public key.
    vapid = Vapid.from_raw(one_identity.vapid_private_key.encode())
    public = vapid.public_key.public_numbers()
    point = _b64decode(one_identity.vapid_public_key)
    assert len(point) == 65 and point[0] == 4  # uncompressed P-256, as browsers want
    assert isinstance(vapid.private_key.curve, ec.SECP256R1)
    assert int.from_bytes(point[1:33], "big") == public.x
    assert int.from_bytes(point[33:], "big") == public.y


def test_a_new_tenant_sends_under_its_name_from_the_site_address_until_it_sets_one(
    settings: Any,
) -> None:
    settings.DEFAULT_FROM_EMAIL = "Wayfarer <noreply@wayfarer.example>"
    tenant = tenant_services.tenant_create(name="Initech", slug="initech", owner=UserFactory())
    identity = sender_identity_get(tenant=tenant)
    assert (identity.sender_name, identity.sender_email, identity.reply_to_email) == (
        "Initech",
        "",
        "",
    )
    assert identity.from_email == "Wayfarer <noreply@wayfarer.example>"

    sender_identity_update(tenant=tenant, sender_email="news@initech.example", verified=True)

    assert sender_identity_get(tenant=tenant).from_email == "Initech <news@initech.example>"


def test_it_makes_the_identity_of_a_tenant_made_without_one_once_and_keeps_its_keys() -> None:
    tenant = Tenant.objects.create(name="Raw", slug="raw")  # a fixture, not the service
    assert not SenderIdentity.objects.filter(tenant=tenant).exists()

    first = sender_identity_get(tenant=tenant)
    again = sender_identity_get(tenant=tenant)
    made_twice = sender_identity_create(tenant=tenant, sender_name="Other")

    assert first.vapid_public_key and first.vapid_private_key
    assert again.pk == made_twice.pk == first.pk
    assert made_twice.vapid_private_key == first.vapid_private_key
    assert made_twice.sender_name == ""
    assert SenderIdentity.objects.filter(tenant=tenant).count() == 1


def test_it_refuses_to_change_what_is_not_the_senders() -> None:
    tenant = tenant_services.tenant_create(name="One", slug="one")
    with pytest.raises(ValueError, match="vapid_public_key"):
        sender_identity_update(tenant=tenant, vapid_public_key="BAAA")


# --- Messages → Sending settings ---------------------------------------------------------------


def test_it_lets_an_admin_change_the_sender(login: Any, world: Any) -> None:
    sender_identity_update(tenant=world.acme, sender_email="news@acme.example", verified=True)
    response = login(world.alice).post(
        SENDER,
        {"sender_name": "Acme", "sender_email": "NEWS@acme.example", "reply_to_email": ""},
        follow=True,
    )

    page = unescape(response.content.decode())
    assert "Sender saved. The next message goes out with it." in page
    assert "Your messages come from <strong>Acme <NEWS@acme.example></strong>" in page
    identity = sender_identity_get(tenant=world.acme)
    # The same address in another case: confirmed already, nothing to ask.
    assert (identity.from_email, identity.reply_to_email) == ("Acme <NEWS@acme.example>", "")
    assert identity.pending_sender_email == ""
    assert sender_identity_get(tenant=world.globex).sender_email == ""


def test_it_says_the_site_address_is_used_until_the_team_sets_a_sender_email(
    login: Any, world: Any, settings: Any
) -> None:
    settings.DEFAULT_FROM_EMAIL = "Wayfarer <noreply@wayfarer.example>"

    page = unescape(login(world.bob).get(SETTINGS).content.decode())

    assert (
        "No confirmed sender email yet, so your messages come from the site's address, "
        "<strong>Wayfarer <noreply@wayfarer.example></strong>." in page
    )


def test_it_explains_a_bad_sender_address_and_saves_nothing(login: Any, world: Any) -> None:
    response = login(world.alice).post(
        SENDER, {"sender_name": "Acme", "sender_email": "nope", "reply_to_email": "x@"}
    )

    assert response.status_code == 400
    assert set(response.context["sender_form"].errors) == {"sender_email", "reply_to_email"}
    page = response.content.decode()
    assert 'id="id_sender_email_errors"><li>Enter a valid email address.' in page
    assert sender_identity_get(tenant=world.acme).sender_email == ""


def test_it_shows_the_sender_and_the_public_key_to_everyone_but_never_the_private_key(
    login: Any, world: Any
) -> None:
    sender_identity_update(tenant=world.acme, sender_email="news@acme.example", verified=True)
    identity = sender_identity_get(tenant=world.acme)

    for user in (world.bob, world.alice):
        page = login(user).get(SETTINGS).content.decode()
        assert identity.vapid_public_key in page
        assert identity.vapid_private_key not in page
        assert 'name="sender_email" value="news@acme.example"' in page
    assert login(world.bob).post(SENDER, {"sender_email": "x@bob.example"}).status_code == 403
    assert login(world.dave).post(SENDER, {"sender_email": "x@dave.example"}).status_code == 403
    assert sender_identity_get(tenant=world.acme).sender_email == "news@acme.example"


def test_the_team_settings_send_the_reader_to_the_sending_settings(login: Any, world: Any) -> None:
    page = login(world.alice).get("/t/acme/settings/").content.decode()

    assert 'href="/t/acme/messages/settings/"' in page
    assert sender_identity_get(tenant=world.acme).vapid_public_key not in page


def test_the_dashboard_ticks_the_sender_step_once_an_address_is_set(login: Any, world: Any) -> None:
    step = 'Set the sender of your messages in <a href="/t/acme/messages/settings/">'

    before = login(world.alice).get("/t/acme/").content.decode()
    sender_identity_update(tenant=world.acme, sender_email="news@acme.example")
    pending = login(world.alice).get("/t/acme/").content.decode()
    sender_identity_update(tenant=world.acme, sender_email="news@acme.example", verified=True)
    after = login(world.alice).get("/t/acme/").content.decode()

    assert f'<li class="">{step}' in before
    assert f'<li class="">{step}' in pending  # not done until the address is confirmed
    assert f'<li class="done">{step}' in after


# --- REST API and admin ------------------------------------------------------------------------


def test_the_api_gives_the_keys_own_sender_identity_without_the_private_key(
    api: Any, world: Any
) -> None:
    sender_identity_update(tenant=world.globex, sender_email="hi@globex.example", verified=True)
    sender_identity_update(tenant=world.globex, sender_email="new@globex.example")
    globex = sender_identity_get(tenant=world.globex)

    body = api("get", "sender-identity/", tenant=world.globex).json()

    assert body == {
        "sender_name": "Globex",
        "sender_email": "hi@globex.example",
        "reply_to_email": "",
        "from_email": "Globex <hi@globex.example>",
        "pending_sender_email": "new@globex.example",  # not in use until confirmed
        "vapid_public_key": globex.vapid_public_key,
    }
    acme = api("get", "sender-identity/").json()
    assert acme["vapid_public_key"] == sender_identity_get(tenant=world.acme).vapid_public_key


def test_the_admin_changes_the_sender_and_shows_only_the_public_key(login: Any, world: Any) -> None:
    identity = sender_identity_get(tenant=world.acme)
    admin = login(UserFactory(is_staff=True, is_superuser=True))
    url = f"/admin/messaging/senderidentity/{identity.pk}/change/"

    page = admin.get(url).content.decode()
    admin.post(url, {"sender_name": "Acme", "sender_email": "ops@acme.example"})

    assert identity.vapid_public_key in page and identity.vapid_private_key not in page
    # Operators too: a From address is used once someone at it confirms it.
    identity.refresh_from_db()
    assert (identity.sender_name, identity.sender_email) == ("Acme", "")
    assert identity.pending_sender_email == "ops@acme.example"


@pytest.mark.parametrize("name", ["Acme\nBcc: all@example.com", "Acme\rX", "Ac\x1bme"])
def test_it_refuses_a_sender_name_with_a_line_break_or_control_character(
    login: Any, world: Any, name: str
) -> None:
    client = login(world.alice)
    response = client.post(
        SENDER, {"sender_name": name, "sender_email": "news@acme.example", "reply_to_email": ""}
    )
    assert response.status_code == 400  # the form again, with the field's error
    assert "control characters are not allowed" in unescape(response.content.decode())
    assert "\n" not in sender_identity_get(tenant=world.acme).sender_name
    with pytest.raises(ValidationError):
        sender_identity_update(tenant=world.acme, sender_name="Acme\nBcc: x@example.com")


def test_a_sender_name_stored_with_a_line_break_does_not_stop_the_mail(world: Any) -> None:
    SenderIdentity.objects.filter(tenant=world.acme).update(
        sender_name="Acme\nBcc: all@example.com", sender_email="news@acme.example"
    )
    identity = sender_identity_get(tenant=world.acme)
    assert identity.from_email == '"Acme Bcc: all@example.com" <news@acme.example>'
    message = EmailMessage("Hi", "Body", identity.from_email, ["ann@example.com"]).message()
    assert message["From"] == identity.from_email  # no header injection, no BadHeaderError


def test_a_tenant_name_with_a_line_break_makes_a_one_line_sender_name() -> None:
    tenant = tenant_services.tenant_create(name="Two\nLines", slug="two-lines")
    assert sender_identity_get(tenant=tenant).sender_name == "Two Lines"
