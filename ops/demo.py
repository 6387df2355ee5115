"""Demo data for `make run`. Each capability adds its own part to seed_demo(); every part is
idempotent so that `make run` can seed on every start."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils.timezone import now

from audience.services import demo_shop_seed
from campaigns.services import campaign_demo_seed
from journeys.services import journey_demo_seed
from messaging.models import Channel, Template
from messaging.services import sender_identity_update, template_save
from segments.models import Segment
from segments.services import segment_create_from_preset
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
            email=DEMO_EMAIL,
            password=DEMO_PASSWORD,
            first_name="Demo",
            last_name="Marketer",
            email_verified_at=now(),  # the demo's own address: nothing to confirm
        )
    tenant = Tenant.objects.filter(slug=DEMO_SLUG).first()
    if tenant is None:
        tenant = services.tenant_create(
            name="Demo Outdoor Shop",
            slug=DEMO_SLUG,
            timezone_name="Europe/Berlin",
        )
        sender_identity_update(
            tenant=tenant,
            sender_name="Demo Outdoor Shop",
            sender_email="hello@demo-shop.example",
            verified=True,  # an example.com-style address of the demo: nothing to confirm
        )
    Membership.objects.get_or_create(tenant=tenant, user=user, defaults={"role": Role.OWNER})
    demo_shop_seed(tenant=tenant)
    seed_segments(tenant=tenant)
    seed_templates(tenant=tenant)
    # Two running journeys with people at several steps (journeys/demo.py).
    journey_demo_seed(tenant=tenant, actor=user)
    # A sent A/B test with a hold-out and its results, a weekly digest, a draft (campaigns/demo.py).
    campaign_demo_seed(tenant=tenant, actor=user)
    return tenant


# Ready-made segments the demo shop starts with, so the Segments page has something to show.
DEMO_PRESETS = ("browsers-not-buyers", "lapsed-customers", "cart-abandoners")


def seed_segments(*, tenant: Tenant) -> None:
    if Segment.objects.filter(tenant=tenant).exists():
        return
    for key in DEMO_PRESETS:
        segment_create_from_preset(tenant=tenant, key=key)


# Message templates the demo starts with: what the Liquid context offers, ready to preview.
DEMO_TEMPLATES: list[dict[str, Any]] = [
    {
        "name": "Welcome",
        "channel": Channel.EMAIL,
        "subject": "Welcome to {{ tenant.name }}, {{ contact.first_name | default: 'friend' }}",
        "preheader": "Trail-tested gear, picked for you",
        "html": (
            "<html><head><style>h1 { color: #1f5f4a; } .product { margin: 8px 0; }</style>"
            "</head><body><h1>Hi {{ contact.first_name | default: 'there' }}!</h1>"
            "<p>Thanks for joining {{ tenant.name }}. A few things we think you'll like:</p>"
            "{% for p in recommendations %}<p class='product'><a href='{{ p.url }}'>"
            "{{ p.name }}</a> {{ p.price }} {{ p.currency }}</p>{% endfor %}"
            "<p><a href='{{ preferences_url }}'>Email preferences</a> · "
            "<a href='{{ unsubscribe_url }}'>Unsubscribe</a></p></body></html>"
        ),
    },
    {
        "name": "Your cart is waiting",
        "channel": Channel.EMAIL,
        "subject": "{{ contact.first_name | default: 'Hi' }}, you left {{ cart.count }} item(s)",
        "preheader": "Your cart is saved for you",
        "html": (
            "<html><body><p>Still thinking it over?</p><ul>"
            "{% for item in cart.items %}<li><a href='{{ item.url }}'>{{ item.name }}</a> &times; "
            "{{ item.quantity }}</li>{% endfor %}</ul>"
            "<p>Total: {{ cart.total }}</p>"
            "<p><a href='{{ unsubscribe_url }}'>Unsubscribe</a></p></body></html>"
        ),
    },
    {
        "name": "Price drop",
        "channel": Channel.PUSH,
        "title": "{{ event.properties.name | default: 'Something you liked' }} is cheaper now",
        "body": "Now {{ event.properties.price }} {{ event.properties.currency }}.",
        "target_url": "{{ event.properties.url | default: 'https://demo-shop.example/' }}",
    },
]


def seed_templates(*, tenant: Tenant) -> None:
    for fields in DEMO_TEMPLATES:
        if not Template.objects.filter(tenant=tenant, name=fields["name"]).exists():
            template_save(tenant=tenant, **fields)
