"""The admin for staff operators scoped to some tenants: they cannot see or change users,
memberships or keys outside them, cannot raise their own role or give a role above their own,
and only superusers manage users. Each attack below worked before (issue 19)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from tenants import services
from tenants.models import ApiKey, Membership, Role
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_alice(world):  # type: ignore[no-untyped-def]
    """Alice, admin of acme, is a staff operator with every permission on users, memberships
    and keys (what an operator of one team is given)."""
    world.alice.is_staff = True
    world.alice.save()
    world.alice.user_permissions.set(
        Permission.objects.filter(content_type__app_label__in=["tenants", "accounts"])
    )
    return world.alice


@pytest.fixture
def operator(login, staff_alice):  # type: ignore[no-untyped-def]
    return login(staff_alice)


def membership(tenant, user) -> Membership:  # type: ignore[no-untyped-def]
    return Membership.objects.get(tenant=tenant, user=user)


def membership_form(m: Membership, role: str) -> dict[str, object]:
    """The whole change form, as the admin page posts it."""
    return {"tenant": m.tenant_id, "user": m.user_id, "role": role}


def password_form(password: str = "a brand new passphrase") -> dict[str, str]:
    return {"password1": password, "password2": password, "usable_password": "true"}


# --- Users: superusers alone manage them ---------------------------------------------------------


def test_staff_cannot_reset_another_tenants_owners_password(operator, world) -> None:
    url = f"/admin/accounts/user/{world.charlie.pk}/password/"
    assert operator.get(url).status_code in {403, 404}
    assert operator.post(url, password_form()).status_code in {403, 404}
    world.charlie.refresh_from_db()
    assert not world.charlie.check_password("a brand new passphrase")


def test_staff_cannot_reset_the_password_of_anyone_in_their_own_tenant(operator, world) -> None:
    url = f"/admin/accounts/user/{world.olivia.pk}/password/"  # acme's owner
    assert operator.post(url, password_form()).status_code == 403
    world.olivia.refresh_from_db()
    assert not world.olivia.check_password("a brand new passphrase")


def test_staff_see_their_tenants_people_read_only(operator, world) -> None:
    page = operator.get(f"/admin/accounts/user/{world.bob.pk}/change/")
    assert page.status_code == 200
    assert 'name="email"' not in page.content.decode()  # shown, not editable
    answer = operator.post(
        f"/admin/accounts/user/{world.bob.pk}/change/", {"email": "mallory@example.com"}
    )
    assert answer.status_code == 403
    world.bob.refresh_from_db()
    assert world.bob.email == "bob@example.com"


def test_staff_cannot_add_or_delete_users(operator, world) -> None:
    assert operator.get("/admin/accounts/user/add/").status_code == 403
    assert (
        operator.post(f"/admin/accounts/user/{world.bob.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    assert type(world.bob).objects.filter(pk=world.bob.pk).exists()


def test_staff_get_404_for_people_outside_their_tenants(operator, world) -> None:
    assert operator.get(f"/admin/accounts/user/{world.charlie.pk}/change/").status_code == 404


def test_superusers_still_reset_any_password(login, world) -> None:
    root = login(UserFactory(is_staff=True, is_superuser=True))
    url = f"/admin/accounts/user/{world.charlie.pk}/password/"
    assert root.post(url, password_form()).status_code == 302
    world.charlie.refresh_from_db()
    assert world.charlie.check_password("a brand new passphrase")


# --- Memberships: no raising one's own role, nothing above it -----------------------------------


def test_staff_cannot_make_themselves_owner(operator, world, staff_alice) -> None:
    own = membership(world.acme, staff_alice)
    operator.post(f"/admin/tenants/membership/{own.pk}/change/", membership_form(own, Role.OWNER))
    own.refresh_from_db()
    assert own.role == Role.ADMIN


def test_staff_cannot_give_a_role_above_their_own(operator, world) -> None:
    bobs = membership(world.acme, world.bob)
    url = f"/admin/tenants/membership/{bobs.pk}/change/"
    answer = operator.post(url, membership_form(bobs, Role.OWNER))
    bobs.refresh_from_db()
    assert bobs.role == Role.VIEWER
    assert answer.status_code == 200  # the form again, with the error
    # Up to their own role is theirs to give.
    operator.post(url, membership_form(bobs, Role.ADMIN))
    bobs.refresh_from_db()
    assert bobs.role == Role.ADMIN


def test_staff_cannot_change_or_remove_a_member_above_them(operator, world) -> None:
    olivias = membership(world.acme, world.olivia)
    url = f"/admin/tenants/membership/{olivias.pk}"
    form = membership_form(olivias, Role.VIEWER)
    assert operator.post(f"{url}/change/", form).status_code == 403
    assert operator.post(f"{url}/delete/", {"post": "yes"}).status_code == 403
    olivias.refresh_from_db()
    assert olivias.role == Role.OWNER


def test_staff_cannot_bring_an_outsider_into_their_tenant(operator, world) -> None:
    # The way to another tenant's owner: make them a member, then manage them as one.
    operator.post(
        "/admin/tenants/membership/add/",
        {"tenant": world.acme.pk, "user": world.charlie.pk, "role": Role.VIEWER},
    )
    assert not Membership.objects.filter(tenant=world.acme, user=world.charlie).exists()


def test_staff_cannot_move_a_membership_to_another_person(operator, world) -> None:
    bobs = membership(world.acme, world.bob)
    operator.post(
        f"/admin/tenants/membership/{bobs.pk}/change/",
        {"tenant": world.acme.pk, "user": world.charlie.pk, "role": Role.VIEWER},
    )
    bobs.refresh_from_db()
    assert bobs.user == world.bob


def test_staff_cannot_join_another_tenant(operator, world, staff_alice) -> None:
    operator.post(
        "/admin/tenants/membership/add/",
        {"tenant": world.globex.pk, "user": staff_alice.pk, "role": Role.OWNER},
    )
    assert not Membership.objects.filter(tenant=world.globex, user=staff_alice).exists()


def test_staff_cannot_raise_roles_through_the_tenant_page(operator, world, staff_alice) -> None:
    own, bobs = membership(world.acme, staff_alice), membership(world.acme, world.bob)
    members = list(Membership.objects.filter(tenant=world.acme).order_by("pk"))
    form = {
        "name": "Acme",
        "slug": "acme",
        "timezone": "UTC",
        "memberships-TOTAL_FORMS": str(len(members) + 1),
        "memberships-INITIAL_FORMS": str(len(members)),
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
    }
    for i, m in enumerate(members):
        form |= {
            f"memberships-{i}-id": str(m.pk),
            f"memberships-{i}-tenant": str(world.acme.pk),
            f"memberships-{i}-user": str(m.user_id),
            f"memberships-{i}-role": Role.OWNER,
        }
    n = len(members)
    form |= {
        f"memberships-{n}-tenant": str(world.acme.pk),
        f"memberships-{n}-user": str(world.charlie.pk),
        f"memberships-{n}-role": Role.OWNER,
    }
    operator.post(f"/admin/tenants/tenant/{world.acme.pk}/change/", form)
    own.refresh_from_db()
    bobs.refresh_from_db()
    assert (own.role, bobs.role) == (Role.ADMIN, Role.VIEWER)
    assert not Membership.objects.filter(tenant=world.acme, user=world.charlie).exists()


def test_staff_get_404_for_another_tenants_membership(operator, world) -> None:
    charlies = membership(world.globex, world.charlie)
    assert operator.get(f"/admin/tenants/membership/{charlies.pk}/change/").status_code == 404
    answer = operator.post(f"/admin/tenants/membership/{charlies.pk}/delete/", {"post": "yes"})
    assert answer.status_code == 404
    assert Membership.objects.filter(pk=charlies.pk).exists()


# --- API keys -----------------------------------------------------------------------------------


def test_staff_get_404_for_another_tenants_key(operator, world) -> None:
    key, _ = services.api_key_create(tenant=world.globex, kind="secret", name="globex-key")
    assert "globex-key" not in operator.get("/admin/tenants/apikey/").content.decode()
    assert operator.get(f"/admin/tenants/apikey/{key.pk}/change/").status_code == 404
    operator.post(
        "/admin/tenants/apikey/",
        {"action": "revoke_keys", "_selected_action": [key.pk]},
    )
    key.refresh_from_db()
    assert key.revoked_at is None


def test_staff_cannot_make_keys_for_another_tenant(operator, world) -> None:
    operator.post(
        "/admin/tenants/apikey/add/", {"tenant": world.globex.pk, "name": "mine", "kind": "secret"}
    )
    assert not ApiKey.objects.filter(tenant=world.globex).exists()


def test_staff_below_admin_cannot_make_keys(login, world) -> None:
    # Keys are for a team's admins (as in the app): a viewer who is staff gets none.
    world.bob.is_staff = True
    world.bob.save()
    world.bob.user_permissions.set(Permission.objects.filter(content_type__app_label="tenants"))
    login(world.bob).post(
        "/admin/tenants/apikey/add/", {"tenant": world.acme.pk, "name": "mine", "kind": "secret"}
    )
    assert not ApiKey.objects.filter(tenant=world.acme).exists()
