"""The demo team's templates render for its shoppers (they are what a new user previews first)."""

from __future__ import annotations

import pytest

from audience.models import Contact
from messaging import rendering
from messaging.context import context_for_contact
from messaging.models import Template
from ops.demo import seed_demo

pytestmark = pytest.mark.django_db


def test_the_demo_templates_render_for_a_shopper_with_a_cart() -> None:
    tenant = seed_demo()
    shopper = Contact.objects.filter(tenant=tenant).exclude(cart=[]).exclude(first_name="").first()
    assert shopper is not None
    templates = {t.name: t for t in Template.objects.filter(tenant=tenant)}
    # The demo's own three, beside those its ready-made journeys brought (journeys/presets.py).
    assert {"Welcome", "Your cart is waiting", "Price drop"} <= set(templates)
    context = context_for_contact(tenant=tenant, contact=shopper)

    cart = rendering.render(templates["Your cart is waiting"].snapshot(), context)
    assert shopper.first_name in cart.subject
    for item in context["cart"]["items"]:
        assert item["name"] in cart.html
    welcome = rendering.render(templates["Welcome"].snapshot(), context)
    assert welcome.subject == f"Welcome to {tenant.name}, {shopper.first_name}"
    assert context["recommendations"], "the demo shop has products to recommend"
    assert context["recommendations"][0]["name"] in welcome.html
    # Seeding again (every `make run`) adds nothing.
    seed_demo()
    assert Template.objects.filter(tenant=tenant).count() == len(templates)
