from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from tenants import services
from tenants.models import ApiKey, Membership, Role, Tenant
from tenants.signals import tenant_created
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_it_announces_a_new_tenant_once_its_owner_is_added() -> None:
    seen = []

    def receiver(sender: object, *, tenant: Tenant, **_: object) -> None:
        seen.append((tenant.slug, list(tenant.memberships.values_list("role", flat=True))))

    tenant_created.connect(receiver, dispatch_uid="test-announces")
    try:
        services.tenant_create(name="One", slug="one", owner=UserFactory())
    finally:
        tenant_created.disconnect(dispatch_uid="test-announces")
    assert seen == [("one", [Role.OWNER])]


def test_it_creates_no_tenant_when_a_receiver_of_the_announcement_fails() -> None:
    def receiver(sender: object, **_: object) -> None:
        raise RuntimeError("could not make my part of the tenant")

    tenant_created.connect(receiver, dispatch_uid="test-fails")
    try:
        with pytest.raises(RuntimeError):
            services.tenant_create(name="One", slug="one", owner=UserFactory())
    finally:
        tenant_created.disconnect(dispatch_uid="test-fails")
    assert not Tenant.objects.exists() and not Membership.objects.exists()


def test_it_refuses_a_taken_slug_and_writes_nothing() -> None:
    services.tenant_create(name="Acme", slug="acme")
    with pytest.raises(ValidationError) as exc:
        services.tenant_create(name="Acme again", slug="acme", owner=UserFactory())
    assert "slug" in exc.value.message_dict
    assert Tenant.objects.count() == 1
    assert Membership.objects.count() == 0


@pytest.mark.parametrize(
    ("slug", "timezone_name", "field"),
    [
        ("new", "UTC", "slug"),  # reserved: /t/new/ creates a team
        ("Has Spaces", "UTC", "slug"),
        ("café", "UTC", "slug"),
        ("", "UTC", "slug"),
        ("fine", "Mars/Olympus_Mons", "timezone"),
    ],
)
def test_it_names_the_bad_field_of_a_new_tenant(slug: str, timezone_name: str, field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        services.tenant_create(name="X", slug=slug, timezone_name=timezone_name)
    assert field in exc.value.message_dict
    assert not Tenant.objects.exists()


def test_it_stores_slugs_in_lower_case() -> None:
    assert services.tenant_create(name="Big", slug="BigCo").slug == "bigco"


def test_it_signs_up_a_person_and_their_team_or_neither() -> None:
    services.tenant_create(name="Taken", slug="taken")
    with pytest.raises(ValidationError):
        services.user_sign_up(
            email="new@example.com", password="x" * 12, tenant_name="T", tenant_slug="taken"
        )
    from django.contrib.auth import get_user_model

    assert not get_user_model().objects.filter(email="new@example.com").exists()

    user, tenant = services.user_sign_up(
        email="New@Example.com", password="x" * 12, tenant_name="T", tenant_slug="fresh"
    )
    assert user.email == "new@example.com"
    assert Membership.objects.get(tenant=tenant, user=user).role == Role.OWNER


def test_it_makes_no_second_account_for_the_same_email_in_any_case_and_tells_its_owner() -> None:
    from django.core import mail

    UserFactory(email="ann@example.com")
    assert (
        services.user_sign_up(
            email="ANN@example.com", password="x" * 12, tenant_name="T", tenant_slug="ts"
        )
        is None
    )
    assert not Tenant.objects.filter(slug="ts").exists()
    [notice] = mail.outbox
    assert notice.to == ["ann@example.com"] and "already have an account" in notice.body


def test_it_adds_members_by_email_and_explains_unknown_addresses(world) -> None:
    actor = Membership.objects.get(tenant=world.acme, user=world.alice)
    with pytest.raises(ValidationError) as exc:
        services.membership_add(
            tenant=world.acme, actor_membership=actor, email="nobody@example.com", role="viewer"
        )
    assert "No Wayfarer account uses nobody@example.com" in exc.value.message_dict["email"][0]

    added = services.membership_add(
        tenant=world.acme, actor_membership=actor, email="CHARLIE@example.com", role="marketer"
    )
    assert added.user == world.charlie and added.role == Role.MARKETER
    with pytest.raises(ValidationError, match="already a member"):
        services.membership_add(
            tenant=world.acme, actor_membership=actor, email="charlie@example.com", role="viewer"
        )


def test_it_keeps_owner_powers_with_owners(world) -> None:
    admin = Membership.objects.get(tenant=world.acme, user=world.alice)
    owner = Membership.objects.get(tenant=world.acme, user=world.olivia)
    viewer = Membership.objects.get(tenant=world.acme, user=world.bob)
    with pytest.raises(ValidationError, match="Only an owner"):
        services.membership_change_role(
            tenant=world.acme, actor_membership=admin, membership=viewer, role=Role.OWNER
        )
    with pytest.raises(ValidationError, match="Only an owner"):
        services.membership_remove(tenant=world.acme, actor_membership=admin, membership=owner)
    services.membership_change_role(
        tenant=world.acme, actor_membership=owner, membership=viewer, role=Role.OWNER
    )
    viewer.refresh_from_db()
    assert viewer.role == Role.OWNER


def test_it_never_leaves_a_team_without_an_owner(world) -> None:
    owner = Membership.objects.get(tenant=world.acme, user=world.olivia)
    with pytest.raises(ValidationError, match="at least one owner"):
        services.membership_change_role(
            tenant=world.acme, actor_membership=owner, membership=owner, role=Role.ADMIN
        )
    with pytest.raises(ValidationError, match="at least one owner"):
        services.membership_remove(tenant=world.acme, actor_membership=owner, membership=owner)
    owner.refresh_from_db()
    assert owner.role == Role.OWNER


def test_it_never_stores_the_raw_api_key(world) -> None:
    key, raw = services.api_key_create(tenant=world.acme, kind="secret", name="Backend")
    assert raw.startswith(f"wf_sk_{key.prefix}_")
    row = ApiKey.objects.filter(pk=key.pk).values().get()
    # The secret is base64url, which may itself hold "_": take all that follows the prefix.
    secret_part = raw.removeprefix(f"wf_sk_{key.prefix}_")
    assert len(secret_part) == 43
    for value in row.values():
        assert secret_part not in str(value)
        assert raw not in str(value)


def test_it_refuses_an_unknown_key_kind(world) -> None:
    with pytest.raises(ValidationError) as exc:
        services.api_key_create(tenant=world.acme, kind="admin", name="x")
    assert "kind" in exc.value.message_dict
    assert not ApiKey.objects.exists()


def test_it_keeps_the_first_revocation_time(world) -> None:
    key, _ = services.api_key_create(tenant=world.acme, kind="write", name="Site")
    first = services.api_key_revoke(tenant=world.acme, api_key=key).revoked_at
    assert first is not None
    assert services.api_key_revoke(tenant=world.acme, api_key=key).revoked_at == first


def test_it_only_creates_keys_through_the_service(world) -> None:
    with pytest.raises(ValueError, match="api_key_create"):
        ApiKey.objects.create(tenant=world.acme, kind="secret", name="raw", prefix="x", key_hash="")
