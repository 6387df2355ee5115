"""Demo data for `make run`. Each capability adds its own part to seed_demo(); every part is
idempotent so that `make run` can seed on every start."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction

from audience.demo import seed_shop
from segments.models import Segment
from segments.presets import preset_add
from tenants import services
from tenants.models import Membership, Role, Tenant

DEMO_SLUG = "demo"
DEMO_EMAIL = "demo@wayfarer.local"
DEMO_PASSWORD = "wayfarer-demo"  # documented in README; the demo is for a laptop, not a server


@transaction.atomic
def seed_demo() -> Tenant:
    user = get_user_model().objects.filter(email=DEMO_EMAIL).first()
    if user is None:
        user = get_user_model().objects.create_user(
            email=DEMO_EMAIL, password=DEMO_PASSWORD, first_name="Demo", last_name="Marketer"
        )
    tenant = Tenant.objects.filter(slug=DEMO_SLUG).first()
    if tenant is None:
        tenant = services.tenant_create(
            name="Demo Outdoor Shop",
            slug=DEMO_SLUG,
            timezone_name="Europe/Berlin",
            sender_name="Demo Outdoor Shop",
            sender_email="hello@demo-shop.example",
        )
    Membership.objects.get_or_create(tenant=tenant, user=user, defaults={"role": Role.OWNER})
    seed_shop(tenant=tenant)
    seed_segments(tenant=tenant)
    return tenant


# Ready-made segments the demo shop starts with, so the Segments page has something to show.
DEMO_PRESETS = ("browsers-not-buyers", "lapsed-customers", "cart-abandoners")


def seed_segments(*, tenant: Tenant) -> None:
    if Segment.objects.filter(tenant=tenant).exists():
        return
    for key in DEMO_PRESETS:
        preset_add(tenant=tenant, key=key)
