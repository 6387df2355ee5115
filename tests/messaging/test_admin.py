"""The messaging admin: templates checked like the editor's, the outbox scoped and retryable."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission

from audience.models import Contact
from messaging.models import Delivery, Suppression, Template
from messaging.reachability import contact_reachable
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client: Any) -> Any:
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_it_refuses_a_template_whose_liquid_does_not_parse_and_saves_nothing(
    operator: Any, world: Any
) -> None:
    response = operator.post(
        "/admin/messaging/template/add/",
        {
            "tenant": world.acme.pk,
            "name": "Broken",
            "channel": "email",
            "subject": "Hi {{ contact.first_name",
            "html": "<p>{% for p in recommendations %}{{ p.name }}</p>",
            "actions": "[]",
        },
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "subject" in errors and "html" in errors
    assert not Template.objects.exists()


def test_it_saves_a_good_template(operator: Any, world: Any) -> None:
    response = operator.post(
        "/admin/messaging/template/add/",
        {
            "tenant": world.acme.pk,
            "name": "Fine",
            "channel": "email",
            "subject": "Hi {{ contact.first_name }}",
            "html": "<p>Hello</p>",
            "actions": "[]",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Template.objects.get().name == "Fine"


def _failed(tenant: Any, email: str) -> Delivery:
    contact = Contact.objects.create(tenant=tenant, email=email)
    template = Template.objects.create(tenant=tenant, name=email, subject="s", html="h")
    return Delivery.objects.create(
        tenant=tenant,
        contact=contact,
        channel="email",
        template=template,
        content=template.snapshot(),
        source="test",
        idempotency_key=email,
        status=Delivery.Status.FAILED,
        attempts=5,
        reason="mail server unreachable",
    )


def test_staff_see_and_retry_only_their_own_teams_failed_messages(client: Any, world: Any) -> None:
    mine, theirs = _failed(world.acme, "a@example.com"), _failed(world.globex, "g@example.com")
    staff = world.alice
    staff.is_staff = True
    staff.save(update_fields=["is_staff"])
    staff.user_permissions.add(Permission.objects.get(codename="view_delivery"))
    client.force_login(staff)

    listing = client.get("/admin/messaging/delivery/")
    assert listing.status_code == 200
    assert [d.pk for d in listing.context["cl"].result_list] == [mine.pk]

    client.post(
        "/admin/messaging/delivery/",
        {"action": "retry_failed", "_selected_action": [mine.pk, theirs.pk]},
    )
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert (mine.status, mine.attempts) == ("queued", 0)
    assert theirs.status == "failed"


def test_it_stores_a_suppression_added_by_an_operator_lower_cased(
    operator: Any, world: Any
) -> None:
    ann = Contact.objects.create(tenant=world.acme, email="ann@example.com")
    response = operator.post(
        "/admin/messaging/suppression/add/",
        {"tenant": world.acme.pk, "address": " Ann@Example.COM ", "reason": "manual"},
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Suppression.objects.get().address == "ann@example.com"
    # So the address is unreachable for everything that asks.
    assert not contact_reachable(tenant=world.acme, contact=ann, channel="email")
