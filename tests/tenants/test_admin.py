"""Operators' admin: superusers see every tenant; staff only the tenants they belong to."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Permission

from messaging.models import SenderIdentity
from tenants import services
from tenants.models import ApiKey, Tenant, hash_api_key
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_alice(world):  # type: ignore[no-untyped-def]
    world.alice.is_staff = True
    world.alice.save()
    world.alice.user_permissions.set(
        Permission.objects.filter(content_type__app_label__in=["tenants", "accounts"])
    )
    services.api_key_create(tenant=world.acme, kind="secret", name="acme-key")
    services.api_key_create(tenant=world.globex, kind="secret", name="globex-key")
    return world.alice


def test_it_shows_superusers_every_tenant(login, world) -> None:
    page = login(UserFactory(is_staff=True, is_superuser=True)).get("/admin/tenants/tenant/")
    assert "Acme" in page.content.decode() and "Globex" in page.content.decode()


def test_the_admin_tells_team_members_from_segment_members(login, world) -> None:
    # Both were "Memberships" in the admin's index (issue 18 item 10).
    page = login(UserFactory(is_staff=True, is_superuser=True)).get("/admin/").content.decode()
    assert ">Team members<" in page and ">Segment members<" in page
    assert ">Memberships<" not in page


@pytest.mark.parametrize(
    ("path", "own", "other"),
    [
        ("/admin/tenants/tenant/", "Acme", "Globex"),
        ("/admin/tenants/membership/", "bob@example.com", "charlie@example.com"),
        ("/admin/tenants/apikey/", "acme-key", "globex-key"),
        ("/admin/accounts/user/", "bob@example.com", "charlie@example.com"),
    ],
)
def test_it_shows_staff_only_their_own_tenants(login, staff_alice, path, own, other) -> None:
    page = login(staff_alice).get(path).content.decode()
    assert own in page
    assert other not in page


def test_it_hides_other_tenants_objects_from_staff_by_id(login, staff_alice, world) -> None:
    client = login(staff_alice)
    assert client.get(f"/admin/tenants/tenant/{world.globex.pk}/change/").status_code == 404
    assert client.get(f"/admin/tenants/tenant/{world.acme.pk}/change/").status_code == 200


def test_it_creates_a_key_in_the_admin_and_shows_it_once(login, world) -> None:
    admin = login(UserFactory(is_staff=True, is_superuser=True))
    response = admin.post(
        "/admin/tenants/apikey/add/",
        {"tenant": world.acme.pk, "name": "From admin", "kind": "write"},
        follow=True,
    )
    raw = re.search(r"shown only once: (wf_wk_\S+?)<", response.content.decode()).group(1)
    assert ApiKey.objects.get(name="From admin").key_hash == hash_api_key(raw)


def test_it_creates_tenants_in_the_admin_with_vapid_keys(login) -> None:
    admin = login(UserFactory(is_staff=True, is_superuser=True))
    admin.post(
        "/admin/tenants/tenant/add/",
        {
            "name": "Initech",
            "slug": "initech",
            "timezone": "UTC",
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
        },
    )
    tenant = Tenant.objects.get(slug="initech")
    identity = SenderIdentity.objects.get(tenant=tenant)  # made by messaging on tenant_created
    assert identity.vapid_public_key and identity.vapid_private_key
    assert Tenant.objects.filter(slug="initech").count() == 1


def test_it_keeps_staff_from_granting_operator_powers(login, staff_alice) -> None:
    page = login(staff_alice).get(f"/admin/accounts/user/{staff_alice.pk}/change/")
    assert 'name="is_superuser"' not in page.content.decode()
