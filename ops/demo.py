"""Demo data for `make run`. Each capability adds its own part to seed_demo(); every part is
idempotent so that `make run` can seed on every start."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils.timezone import now

from audience.models import Contact, Event
from audience.services import demo_shop_seed
from campaigns.services import campaign_demo_seed
from journeys.services import journey_demo_seed
from messaging.models import Channel, Template
from messaging.services import sender_identity_update, template_save
from personalisation.placements.models import Placement
from personalisation.placements.services import placement_create, variant_create
from personalisation.search.models import Synonym
from personalisation.search.services import synonyms_set
from personalisation.surveys.models import Survey
from personalisation.surveys.services import survey_create
from segments.models import Segment
from segments.services import segment_create, segment_create_from_preset
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
    seed_personalisation(tenant=tenant)
    # Two running journeys with people at several steps (journeys/demo.py).
    journey_demo_seed(tenant=tenant, actor=user)
    # A sent A/B test with a hold-out and its results, a weekly digest, a draft (campaigns/demo.py).
    campaign_demo_seed(tenant=tenant, actor=user)
    first_seen_settle(tenant=tenant)
    return tenant


def first_seen_settle(*, tenant: Tenant) -> int:
    """Every demo contact first seen no later than its first event. The shop's histories are in
    the past of the seeding (audience/demo.py places them and dates its contacts so); the
    campaign's and journeys' parts then record messages and orders at moments in the past too,
    and a shopper whose own history is younger than the campaign's send (36 hours ago) was
    mailed before the shop had seen them: `created_at` moves back to that earliest event (one
    statement; nothing to move on a second `make run`). Returns the contacts moved."""
    first = (
        Event.objects.filter(tenant=tenant, contact_id=OuterRef("pk"))
        .order_by("occurred_at")
        .values("occurred_at")[:1]
    )
    return (
        Contact.objects.filter(tenant=tenant)
        .annotate(first_event=Subquery(first))
        .filter(first_event__lt=F("created_at"))
        .update(created_at=Coalesce(Subquery(first), F("created_at")))
    )


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


# --- Onsite personalisation (issue 16): what the demo shop's pages show -----------------------
#
# The home page's "home-banner" placement (audience/demo_shop.py) has a variant per browsed
# category, each targeted by a segment "Browsed <category> in the last 30 days", and a default
# for everyone else; the home page embeds the NPS survey; search knows a few synonyms.

HOME_BANNER = "home-banner"
# category → (variant title, body, link text). Ordered: a visitor who browsed several categories
# sees the first one's variant.
BANNER_VARIANTS: dict[str, tuple[str, str, str]] = {
    "tents": (
        "Sleep under the stars",
        "You were looking at tents: the Trail Tent 2P pitches in three minutes and weighs 2 kg.",
        "See the tents",
    ),
    "footwear": (
        "Boots that know the way",
        "Back for footwear? Our hiking boots and trail runners ship free this week.",
        "See the footwear",
    ),
    "cooking": (
        "Hot meals, high places",
        "Stoves, pots and filters for the camp kitchen you were putting together.",
        "See the cooking gear",
    ),
}
DEFAULT_BANNER = (
    "Gear for every trail",
    "Tents, packs, boots and stoves, tested on the trail. Browse a category and come back: this"
    " banner follows what you looked at.",
    "Shop the bestsellers",
)
NPS_SURVEY = {
    "name": "Shop NPS",
    "kind": "nps",
    "question": "How likely are you to recommend {shop} to a friend?",
    "thanks": "Thank you! Your answer helps us pick the next gear we stock.",
}
# term → what else a shopper may mean by it (personalisation.search).
SYNONYMS: dict[str, list[str]] = {
    "sneakers": ["trail runner", "running shoes"],
    "backpack": ["pack", "daypack"],
    "sleeping bag": ["down bag", "synthetic bag"],
    "burner": ["stove"],
}


def browsed_rules(category: str) -> dict[str, Any]:
    """Viewed the category's list or one of its products in the last 30 days."""
    where = [{"property": "category", "operator": "equals", "value": category}]
    return {
        "type": "group",
        "match": "any",
        "negate": False,
        "children": [
            {"type": "event", "event": name, "where": where, "window": {"last_days": 30}}
            for name in ("Product List Viewed", "Product Viewed")
        ],
    }


def browsed_segment(*, tenant: Tenant, category: str) -> Segment:
    name = f"Browsed {category} in the last 30 days"
    existing = Segment.objects.filter(tenant=tenant, name=name).first()
    if existing is not None:
        return existing
    return segment_create(
        tenant=tenant,
        name=name,
        rules=browsed_rules(category),
        description=f"Looked at {category} in the shop lately (the demo's home banner follows it).",
    )


def seed_personalisation(*, tenant: Tenant) -> None:
    """The home banner with its variants, the NPS survey and search synonyms; each part once."""
    shop = reverse("demo_shop", args=[tenant.slug])
    if not Placement.objects.filter(tenant=tenant, key=HOME_BANNER).exists():
        placement = placement_create(
            tenant=tenant,
            key=HOME_BANNER,
            name="Home banner",
            description="The banner at the top of the shop's home page.",
        )
        for category, (title, body, link_text) in BANNER_VARIANTS.items():
            variant_create(
                tenant=tenant,
                placement=placement,
                name=f"Browsed {category}",
                title=title,
                body=body,
                link_url=f"{shop}?category={category}",
                link_text=link_text,
                segment=browsed_segment(tenant=tenant, category=category),
            )
        title, body, link_text = DEFAULT_BANNER
        variant_create(
            tenant=tenant,
            placement=placement,
            name="Everyone else",
            title=title,
            body=body,
            link_url=f"{shop}?page=home",
            link_text=link_text,
        )
    if not Survey.objects.filter(tenant=tenant, kind="nps").exists():
        survey_create(
            tenant=tenant,
            name=NPS_SURVEY["name"],
            kind=NPS_SURVEY["kind"],
            question=NPS_SURVEY["question"].format(shop=tenant.name),
            thanks=NPS_SURVEY["thanks"],
        )
    for term, alternatives in SYNONYMS.items():
        # Each term once: a marketer's later change to its alternatives is theirs to keep.
        if not Synonym.objects.filter(tenant=tenant, term=term).exists():
            synonyms_set(tenant=tenant, term=term, alternatives=alternatives)
