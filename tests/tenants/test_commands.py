from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from tenants.models import ApiKey, Membership, Role, Tenant

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_it_creates_a_tenant_with_a_new_owner() -> None:
    output = run(
        "create_tenant", "--slug", "initech", "--name", "Initech", "--owner-email", "pb@x.io"
    )
    assert "Created tenant initech" in output
    membership = Membership.objects.get(tenant__slug="initech")
    assert membership.role == Role.OWNER
    assert membership.user.email == "pb@x.io"
    assert not membership.user.has_usable_password()  # they set it with "Forgot your password?"


def test_it_refuses_a_duplicate_slug_and_leaves_nothing_behind(world) -> None:
    with pytest.raises(CommandError, match="slug: A team with this URL name already exists"):
        run("create_tenant", "--slug", "acme", "--name", "Acme 2", "--owner-email", "new@x.io")
    assert Tenant.objects.filter(slug="acme").count() == 1
    assert not get_user_model().objects.filter(email="new@x.io").exists()


def test_it_prints_a_working_api_key_on_the_last_line(client, world) -> None:
    output = run("create_api_key", "--tenant", "globex", "--kind", "secret", "--name", "CI")
    raw = output.strip().splitlines()[-1]
    assert raw.startswith("wf_sk_")
    response = client.get("/api/v1/tenant/", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.json()["slug"] == "globex"
    assert ApiKey.objects.get(name="CI").tenant == world.globex


def test_it_refuses_a_key_for_an_unknown_tenant(db) -> None:
    with pytest.raises(CommandError, match="No tenant with slug “nope”"):
        run("create_api_key", "--tenant", "nope", "--kind", "write")
    assert not ApiKey.objects.exists()


def test_it_seeds_the_demo_again_and_again(client) -> None:
    from ops.demo import DEMO_EMAIL, DEMO_PASSWORD
    from segments.models import Segment

    assert "demo@wayfarer.local / wayfarer-demo" in run("seed_demo")
    run("seed_demo")
    assert Tenant.objects.filter(slug="demo").count() == 1
    demo_segments = Segment.objects.filter(tenant__slug="demo")
    # The three ready-made segments, the campaigns' audience and the home banner's three
    # "Browsed <category>" segments (issue 16), seeded once, not again.
    assert demo_segments.count() == 7
    assert demo_segments.filter(member_count__gt=0).exists()  # computed against the demo shop
    # The sign-in page, as a person would (the login lockout needs the request).
    client.post("/accounts/login/", {"username": DEMO_EMAIL, "password": DEMO_PASSWORD})
    assert client.get("/", follow=True).redirect_chain[-1][0] == "/t/demo/"
