"""Ready-made journeys (issue 13 item 7): one click makes one the team's own draft, an ordinary
journey to edit and publish like any other.

Public interface (the editor's gallery, the API's /api/v1/journeys/presets/, the admin and the
demo call these; keep them stable):

    PRESETS: dict[str, Preset]       by key, in gallery order; Preset(key, name, description,
                                     category, …) and `preset.as_dict()` for listings
    preset_graph(preset, *, templates=None, segments=None) -> dict
                                     the preset's graph in graph.graph_to_json's format; message
                                     templates and segments are named by reference
                                     ("@cart_email") unless their public ids are given
    preset_create(*, tenant, key, actor=None) -> Journey
                                     the journey as the team's draft ("Cart abandonment (2)"
                                     when the name is taken), with the message templates (and
                                     the segment) it needs created if the team has none of
                                     that name yet; KeyError for an unknown key

Templates are matched by name and channel: a team that already has "Cart abandonment: your
cart is waiting" as an email keeps its own wording, and presets made twice share templates.
Copy uses the Liquid context of messaging/context.py (contact, event, cart, wishlist,
recently_viewed, recommendations, tenant, data, unsubscribe_url, preferences_url) and renders
on messaging's sample contact (template_save refuses anything that would not).

Events the presets listen for are the ones this product records or the Segment e-commerce spec
names: "Signed Up" (trigger_signup), "Product Viewed", "Product Added", "Order Completed"
(properties order_id, total, currency, products), and audience.catalog's
"Product Price Dropped" / "Product Back in Stock", which a catalog update records on every
contact with the product in their wishlist or cart (properties sku, name, price, currency, url,
image_url, category; previous_price for a drop). The NPS survey expects the shop's survey page
to track "NPS Submitted" with a numeric `score` (0 to 10) property, e.g. through the tracking API.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from journeys.models import Journey
from tenants.models import Tenant

ORDER = "Order Completed"
REVENUE = "total"  # Order Completed's amount, as the Segment spec and the demo shop send it


# --- message templates -----------------------------------------------------------------------

_FOOTER = (
    "<hr><p style='font-size:12px;color:#666'>You get this because you're a customer of "
    "{{ tenant.name }}. <a href='{{ preferences_url }}'>Email preferences</a> · "
    "<a href='{{ unsubscribe_url }}'>Unsubscribe</a></p>"
)
_STYLE = (
    "<style>body{font-family:system-ui,sans-serif;color:#222;line-height:1.5}"
    "h1{color:#1f5f4a;font-size:22px}.button{display:inline-block;padding:10px 18px;"
    "background:#1f5f4a;color:#fff;border-radius:6px;text-decoration:none}"
    ".code{font-size:20px;letter-spacing:2px;border:2px dashed #1f5f4a;padding:6px 12px}"
    "</style>"
)


def _email(body: str) -> str:
    return f"<html><head>{_STYLE}</head><body>{body}{_FOOTER}</body></html>"


_PRODUCTS = (
    "{% for p in recommendations %}<p><a href='{{ p.url }}'>{{ p.name }}</a> — "
    "{{ p.price | money: p.currency }}</p>{% endfor %}"
)

# key → the fields messaging.services.template_save takes.
TEMPLATES: dict[str, dict[str, Any]] = {
    "welcome_email": {
        "name": "Onboarding: welcome",
        "channel": "email",
        "subject": "Welcome to {{ tenant.name }}, {{ contact.first_name | default: 'friend' }}!",
        "preheader": "Good to have you here. A few favourites to start with.",
        "html": _email(
            "<h1>Welcome, {{ contact.first_name | default: 'friend' }}!</h1>"
            "<p>Thanks for signing up with {{ tenant.name }}. Over the next days we'll send you "
            "a couple of short notes to help you find your way around — nothing more.</p>"
            "{% if recommendations.size > 0 %}<p>Here's what others are loving right now:</p>"
            f"{_PRODUCTS}{{% endif %}}"
            "<p>Questions? Just reply to this email — a real person reads it.</p>"
            "<p>The {{ tenant.sender_name }} team</p>"
        ),
    },
    "tips_email": {
        "name": "Onboarding: tips",
        "channel": "email",
        "subject": "3 ways to get more out of {{ tenant.name }}",
        "preheader": "Price alerts, your wishlist and picks made for you",
        "html": _email(
            "<h1>Make {{ tenant.name }} work for you</h1>"
            "<p>Hi {{ contact.first_name | default: 'there' }}, three small things that make a "
            "big difference:</p><ol>"
            "<li><strong>Save to your wishlist.</strong> We'll tell you the moment something "
            "on it drops in price or is back in stock.</li>"
            "<li><strong>Turn on notifications.</strong> Cart reminders and price drops reach "
            "you even when your inbox is busy.</li>"
            "<li><strong>Browse your picks.</strong> The more you look around, the better our "
            "suggestions get.</li></ol>"
            "{% if recommendations.size > 0 %}<p>A few to start with:</p>"
            f"{_PRODUCTS}{{% endif %}}"
        ),
    },
    "first_order_email": {
        "name": "Onboarding: first-order discount",
        "channel": "email",
        "subject": "{{ contact.first_name | default: 'Hi' }}, 10% off your first order",
        "preheader": "Your welcome code is inside — valid for 7 days",
        "html": _email(
            "<h1>A little welcome gift</h1>"
            "<p>Hi {{ contact.first_name | default: 'there' }}, you haven't placed your first "
            "order yet, so here's 10% off to make it easier:</p>"
            "<p><span class='code'>{{ data.coupon | default: 'WELCOME10' }}</span></p>"
            "<p>Enter it at checkout within the next 7 days.</p>"
            "{% if recommendations.size > 0 %}<p>Picked for you:</p>"
            f"{_PRODUCTS}{{% endif %}}"
        ),
    },
    "first_order_push": {
        "name": "Onboarding: first-order discount (push)",
        "channel": "push",
        "title": "10% off your first order",
        "body": "Use code {{ data.coupon | default: 'WELCOME10' }} at checkout in the next 7 days.",
        "target_url": "{{ recommendations.first.url }}",
    },
    "birthday_email": {
        "name": "Birthday: greeting with a coupon",
        "channel": "email",
        "subject": "Happy birthday, {{ contact.first_name | default: 'friend' }}! A gift inside 🎁",
        "preheader": "15% off anything, this week only",
        "html": _email(
            "<h1>Happy birthday, {{ contact.first_name | default: 'friend' }}!</h1>"
            "<p>Everyone at {{ tenant.name }} wishes you a wonderful day. To celebrate, "
            "here's 15% off anything you like:</p>"
            "<p><span class='code'>{{ data.coupon | default: 'BIRTHDAY15' }}</span></p>"
            "<p>The code is yours for the next 7 days.</p>"
            "{% if wishlist.size > 0 %}<p>Maybe treat yourself to something from your "
            "wishlist?</p>{% for p in wishlist %}<p><a href='{{ p.url }}'>{{ p.name }}</a> — "
            "{{ p.price | money: p.currency }}</p>{% endfor %}{% endif %}"
        ),
    },
    "cart_email": {
        "name": "Cart abandonment: your cart is waiting",
        "channel": "email",
        "subject": "{{ contact.first_name | default: 'Hi' }}, you left something in your cart",
        "preheader": "{{ cart.count }} item(s) saved for you",
        "html": _email(
            "<h1>Still thinking it over?</h1>"
            "<p>Hi {{ contact.first_name | default: 'there' }}, we saved your cart so you can "
            "pick up right where you left off:</p>"
            "<table cellpadding='6'>{% for item in cart.items %}<tr>"
            "<td>{% if item.image_url != blank %}<img src='{{ item.image_url }}' width='64' "
            "alt=''>{% endif %}</td>"
            "<td>{% if item.url != blank %}<a href='{{ item.url }}'>{{ item.name }}</a>"
            "{% else %}{{ item.name }}{% endif %} &times; {{ item.quantity }}</td>"
            "<td>{{ item.line_total | money: item.currency }}</td></tr>{% endfor %}</table>"
            "<p><strong>Total: {{ cart.total | money: cart.currency }}</strong></p>"
            "<p>Items in carts aren't reserved, so popular ones can sell out.</p>"
        ),
    },
    "cart_push": {
        "name": "Cart abandonment: reminder (push)",
        "channel": "push",
        "title": "Your cart misses you",
        "body": (
            "{{ cart.items.first.name | default: 'Your items' }}"
            "{% if cart.count > 1 %} and {{ cart.count | minus: 1 }} more{% endif %} "
            "still waiting — {{ cart.total | money: cart.currency }}."
        ),
        "target_url": "{{ cart.items.first.url }}",
    },
    "browse_email": {
        "name": "Browse abandonment: still interested?",
        "channel": "email",
        "subject": "Still thinking about {{ event.properties.name | default: 'it' }}?",
        "preheader": "Take another look before it's gone",
        "html": _email(
            "<h1>Caught your eye?</h1>"
            "<p>Hi {{ contact.first_name | default: 'there' }}, you were looking at "
            "<strong>{{ event.properties.name | default: 'something you liked' }}</strong>"
            "{% if event.properties.price %} ({{ event.properties.price | money: "
            "event.properties.currency }}){% endif %}. It's still here if you want another "
            "look.</p>"
            "{% if recently_viewed.size > 0 %}<p>Recently viewed:</p>{% for p in "
            "recently_viewed %}<p><a href='{{ p.url }}'>{{ p.name }}</a> — "
            "{{ p.price | money: p.currency }}</p>{% endfor %}{% endif %}"
        ),
    },
    "price_drop_email": {
        "name": "Wishlist: price drop",
        "channel": "email",
        "subject": "Price drop: {{ event.properties.name | default: 'an item you saved' }}",
        "preheader": "Now {{ event.properties.price | money: event.properties.currency }}",
        "html": _email(
            "<h1>Good news, {{ contact.first_name | default: 'friend' }}!</h1>"
            "<p><strong>{{ event.properties.name | default: 'An item you saved' }}</strong> "
            "just got cheaper: now <strong>{{ event.properties.price | money: "
            "event.properties.currency }}</strong>"
            "{% if event.properties.previous_price %}, down from {{ "
            "event.properties.previous_price | money: event.properties.currency }}"
            "{% endif %}.</p>"
            "{% if event.properties.url != blank %}<p><a class='button' "
            "href='{{ event.properties.url }}'>Take a look</a></p>{% endif %}"
        ),
    },
    "back_in_stock_email": {
        "name": "Wishlist: back in stock",
        "channel": "email",
        "subject": "It's back: {{ event.properties.name | default: 'an item you wanted' }}",
        "preheader": "Back in stock — grab it before it's gone again",
        "html": _email(
            "<h1>Back in stock</h1>"
            "<p>Hi {{ contact.first_name | default: 'there' }}, "
            "<strong>{{ event.properties.name | default: 'an item you were waiting for' }}"
            "</strong> is available again"
            "{% if event.properties.price %} at {{ event.properties.price | money: "
            "event.properties.currency }}{% endif %}.</p>"
            "{% if event.properties.url != blank %}<p><a class='button' "
            "href='{{ event.properties.url }}'>Get it now</a></p>{% endif %}"
            "<p>Stock is limited, so don't wait too long.</p>"
        ),
    },
    "thank_you_email": {
        "name": "Post-purchase: thank you",
        "channel": "email",
        "subject": "Thank you for your order, {{ contact.first_name | default: 'friend' }}",
        "preheader": "We hope you love it",
        "html": _email(
            "<h1>Thank you!</h1>"
            "<p>Hi {{ contact.first_name | default: 'there' }}, thanks for shopping with "
            "{{ tenant.name }}"
            "{% if event.properties.order_id %} (order {{ event.properties.order_id }}){% endif %}"
            ". We hope everything arrives safely and that you love it.</p>"
            "<p>If anything isn't right, just reply to this email and we'll sort it out.</p>"
            "{% if recommendations.size > 0 %}<p>Goes well with your order:</p>"
            f"{_PRODUCTS}{{% endif %}}"
        ),
    },
    "review_email": {
        "name": "Post-purchase: review request",
        "channel": "email",
        "subject": "How are you getting on with your order?",
        "preheader": "Two minutes to help other shoppers",
        "html": _email(
            "<h1>How did we do?</h1>"
            "<p>Hi {{ contact.first_name | default: 'there' }}, it's been a week since your "
            "order. Would you tell other shoppers what you think?</p>"
            "{% for p in event.properties.products %}<p>{% if p.url %}<a href='{{ p.url }}'>"
            "Review {{ p.name }}</a>{% else %}{{ p.name }}{% endif %}</p>{% endfor %}"
            "<p>Honest reviews — good or bad — help us and everyone else. Thank you!</p>"
        ),
    },
    "winback_email": {
        "name": "Win-back: we miss you",
        "channel": "email",
        "subject": "We miss you, {{ contact.first_name | default: 'friend' }} — 15% off inside",
        "preheader": "It's been a while. Here's a reason to come back.",
        "html": _email(
            "<h1>It's been a while!</h1>"
            "<p>Hi {{ contact.first_name | default: 'there' }}, we haven't seen you in a "
            "couple of months and a lot has arrived since. Come and have a look — with 15% off "
            "your next order:</p>"
            "<p><span class='code'>{{ data.coupon | default: 'COMEBACK15' }}</span></p>"
            "{% if recommendations.size > 0 %}<p>New and picked for you:</p>"
            f"{_PRODUCTS}{{% endif %}}"
        ),
    },
    "winback_last_email": {
        "name": "Win-back: last chance",
        "channel": "email",
        "subject": "Your 15% off ends soon",
        "preheader": "Last reminder — then we'll stop asking",
        "html": _email(
            "<h1>Last chance</h1>"
            "<p>Hi {{ contact.first_name | default: 'there' }}, your code "
            "<span class='code'>{{ data.coupon | default: 'COMEBACK15' }}</span> expires in a "
            "few days. After that we'll stop reminding you — promise.</p>"
        ),
    },
    "nps_email": {
        "name": "NPS: how likely are you to recommend us?",
        "channel": "email",
        "subject": "One quick question, {{ contact.first_name | default: 'friend' }}",
        "preheader": "How likely are you to recommend {{ tenant.name }}? One click.",
        "html": _email(
            "<h1>How likely are you to recommend {{ tenant.name }} to a friend?</h1>"
            "<p>0 = not at all, 10 = extremely likely. One click is all it takes.</p><p>"
            "{% for score in (0..10) %}<a href='{{ data.survey_url | default: "
            "'https://shop.example/nps' }}?score={{ score }}&amp;c={{ contact.id }}' "
            "style='display:inline-block;width:28px;text-align:center;padding:6px 0;"
            "margin:2px;border:1px solid #1f5f4a;border-radius:4px'>{{ score }}</a>"
            "{% endfor %}</p><p>Thank you — it really helps.</p>"
        ),
    },
    "nps_promoter_email": {
        "name": "NPS: thanks, promoter",
        "channel": "email",
        "subject": "Thank you — that made our day!",
        "preheader": "Would you share it with others?",
        "html": _email(
            "<h1>Thank you, {{ contact.first_name | default: 'friend' }}!</h1>"
            "<p>We're thrilled you'd recommend {{ tenant.name }}. If you have a minute, a "
            "short public review helps other shoppers find us — and if a friend comes to mind, "
            "send them our way.</p>"
        ),
    },
    "nps_detractor_email": {
        "name": "NPS: sorry, detractor",
        "channel": "email",
        "subject": "We're sorry — can we make it right?",
        "preheader": "Tell us what went wrong; a person will read it",
        "html": _email(
            "<h1>We're sorry to hear that</h1>"
            "<p>Hi {{ contact.first_name | default: 'there' }}, thank you for your honest "
            "score. We'd like to understand what went wrong and put it right. Just reply to "
            "this email: it goes straight to our customer team, and we answer every one.</p>"
        ),
    },
    "loyalty_email": {
        "name": "Loyalty: time for another?",
        "channel": "email",
        "subject": "{{ contact.first_name | default: 'Hi' }}, picked for your next adventure",
        "preheader": "New favourites, chosen from what you like",
        "html": _email(
            "<h1>Ready for the next one?</h1>"
            "<p>Hi {{ contact.first_name | default: 'there' }}, thanks again for being a "
            "customer. Based on what you've bought and browsed, we think you'll like these:</p>"
            f"{_PRODUCTS}"
            "{% if contact.attributes.loyalty_points %}<p>You have "
            "<strong>{{ contact.attributes.loyalty_points }} points</strong> waiting to be "
            "used.</p>{% endif %}"
            "<p>As a returning customer, shipping on your next order is on us with code "
            "<span class='code'>{{ data.coupon | default: 'THANKYOU' }}</span>.</p>"
        ),
    },
}

# Segments a preset needs: key → (name, description, rules), created through segments.services.
SEGMENTS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "lapsed_60": (
        "No order in 60 days",
        "Ordered before, but not in the last 60 days (the win-back journey's trigger).",
        {
            "type": "group",
            "match": "all",
            "negate": False,
            "children": [
                {
                    "type": "metric",
                    "metric": "last_order_date",
                    "operator": "more_than_days_ago",
                    "value": 60,
                }
            ],
        },
    ),
}


# --- the presets -----------------------------------------------------------------------------


def _n(key: str, kind: str, label: str = "", **settings: Any) -> dict[str, Any]:
    return {"key": key, "kind": kind, "label": label, "settings": settings, "x": None, "y": None}


@dataclass(frozen=True)
class Preset:
    """A ready-made journey. Node settings name templates and segments by reference ("@key" of
    TEMPLATES / SEGMENTS); `preset_graph` resolves them."""

    key: str
    name: str
    description: str
    category: str  # the gallery's grouping: Onboarding, Shopping, Retention, Feedback
    nodes: tuple[dict[str, Any], ...]
    edges: tuple[tuple[str, str, str], ...]  # (source, port, target)
    reentry: str = "never"  # journeys.models.Reentry
    reentry_days: int | None = None
    exit_events: tuple[str, ...] = ()
    exit_on_goal: bool = True
    templates: tuple[str, ...] = field(default=())  # filled from the nodes
    segments: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        refs = [
            str(n["settings"].get(name))[1:]
            for n in self.nodes
            for name in ("template", "segment")
            if str(n["settings"].get(name, "")).startswith("@")
        ]
        object.__setattr__(self, "templates", tuple(r for r in refs if r in TEMPLATES))
        object.__setattr__(self, "segments", tuple(r for r in refs if r in SEGMENTS))

    @property
    def settings(self) -> dict[str, Any]:
        """The journey settings it starts with (JourneyVersion's fields)."""
        return {
            "reentry": self.reentry,
            "reentry_days": self.reentry_days,
            "exit_events": list(self.exit_events),
            "exit_on_goal": self.exit_on_goal,
        }

    def as_dict(self) -> dict[str, Any]:
        """For listings (the gallery, the API): what it is, what it needs, its graph."""
        return {
            "key": self.key,
            "name": self.name,
            "description": self.description,
            "category": self.category,
            "settings": self.settings,
            "templates": [TEMPLATES[t]["name"] for t in self.templates],
            "segments": [SEGMENTS[s][0] for s in self.segments],
            "graph": preset_graph(self),
        }


def preset_graph(
    preset: Preset,
    *,
    templates: Mapping[str, str] | None = None,
    segments: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The preset's graph as graph.graph_to_json gives it; "@key" references become the public
    ids in `templates` / `segments` where given."""
    refs = {**(templates or {}), **(segments or {})}
    nodes = []
    for node in preset.nodes:
        settings = dict(node["settings"])
        for name in ("template", "segment"):
            value = str(settings.get(name, ""))
            if value.startswith("@") and value[1:] in refs:
                settings[name] = refs[value[1:]]
        nodes.append({**node, "settings": settings})
    edges = [{"source": s, "port": p, "target": t} for s, p, t in preset.edges]
    return {"nodes": nodes, "edges": edges}


_FILTERS_PROMOTER = [{"property": "score", "operator": "gte", "value": 9}]
_FILTERS_DETRACTOR = [{"property": "score", "operator": "lte", "value": 6}]
_CAN_PUSH = {
    "type": "group",
    "match": "all",
    "negate": False,
    "children": [{"type": "reachable", "channel": "push", "reachable": True}],
}

PRESETS: dict[str, Preset] = {
    p.key: p
    for p in [
        Preset(
            key="onboarding_welcome",
            name="Onboarding welcome series",
            description=(
                "Welcomes each new sign-up, sends tips two days later and, if they still "
                "haven't ordered after three more days, a first-order discount — by push where "
                "they allow notifications, else by email."
            ),
            category="Onboarding",
            nodes=(
                _n("signup", "trigger_signup", "Signs up"),
                _n("welcome", "action_email", "Welcome email", template="@welcome_email"),
                _n("wait_2d", "wait_delay", "2 days later", amount=2, unit="days"),
                _n("tips", "action_email", "Tips email", template="@tips_email"),
                _n("wait_3d", "wait_delay", "3 days later", amount=3, unit="days"),
                _n(
                    "ordered",
                    "branch_event",
                    "Ordered yet?",
                    event=ORDER,
                    since="entered",
                    days=7,
                    filters=[],
                ),
                _n("can_push", "branch_condition", "Allows notifications?", rules=_CAN_PUSH),
                _n("discount_push", "action_push", "Discount push", template="@first_order_push"),
                _n(
                    "discount_email",
                    "action_email",
                    "Discount email",
                    template="@first_order_email",
                ),
                _n(
                    "first_order",
                    "goal",
                    "First order",
                    event=ORDER,
                    amount=7,
                    unit="days",
                    revenue_property=REVENUE,
                ),
            ),
            edges=(
                ("signup", "next", "welcome"),
                ("welcome", "next", "wait_2d"),
                ("wait_2d", "next", "tips"),
                ("tips", "next", "wait_3d"),
                ("wait_3d", "next", "ordered"),
                ("ordered", "no", "can_push"),
                ("can_push", "yes", "discount_push"),
                ("can_push", "no", "discount_email"),
                ("discount_push", "next", "first_order"),
                ("discount_email", "next", "first_order"),
            ),
            reentry="never",
        ),
        Preset(
            key="birthday_coupon",
            name="Birthday greeting with a coupon",
            description=(
                "On each contact's birthday at 09:00 their local time, a greeting with a 15% "
                "coupon (BIRTHDAY15, or the code in the journey's data). Counts orders in the "
                "following week as conversions."
            ),
            category="Retention",
            nodes=(
                _n("birthday", "trigger_date", "Birthday", attribute="birthday", at="09:00"),
                _n("greeting", "action_email", "Birthday email", template="@birthday_email"),
                _n(
                    "used",
                    "goal",
                    "Ordered with the gift",
                    event=ORDER,
                    amount=7,
                    unit="days",
                    revenue_property=REVENUE,
                ),
            ),
            edges=(("birthday", "next", "greeting"), ("greeting", "next", "used")),
            # Once a year: a new enrollment each birthday.
            reentry="after",
            reentry_days=300,
        ),
        Preset(
            key="cart_abandonment",
            name="Cart abandonment",
            description=(
                "When someone adds to cart and doesn't check out within 30 minutes, email them "
                "their cart; if they still haven't ordered a day later, a push reminder. Stops "
                "the moment they order."
            ),
            category="Shopping",
            nodes=(
                _n("added", "trigger_event", "Adds to cart", event="Product Added", filters=[]),
                _n(
                    "checkout_30m",
                    "wait_event",
                    "Orders within 30 minutes?",
                    event=ORDER,
                    amount=30,
                    unit="minutes",
                    match="cart",
                    filters=[],
                ),
                _n("cart_email", "action_email", "Cart email", template="@cart_email"),
                _n(
                    "checkout_24h",
                    "wait_event",
                    "Orders within a day?",
                    event=ORDER,
                    amount=24,
                    unit="hours",
                    match="cart",
                    filters=[],
                ),
                _n("cart_push", "action_push", "Push reminder", template="@cart_push"),
                _n(
                    "order",
                    "goal",
                    "Orders",
                    event=ORDER,
                    amount=3,
                    unit="days",
                    revenue_property=REVENUE,
                ),
            ),
            edges=(
                ("added", "next", "checkout_30m"),
                ("checkout_30m", "timeout", "cart_email"),
                ("cart_email", "next", "checkout_24h"),
                ("checkout_24h", "timeout", "cart_push"),
                ("cart_push", "next", "order"),
            ),
            reentry="always",  # one open enrollment at a time; a new cart after it ends
            exit_events=(ORDER,),
        ),
        Preset(
            key="browse_abandonment",
            name="Browse abandonment",
            description=(
                "When someone views a product and doesn't add it to their cart within an hour, "
                "an email about that product and what else they looked at. At most once a week "
                "per person."
            ),
            category="Shopping",
            nodes=(
                _n("viewed", "trigger_event", "Views a product", event="Product Viewed"),
                _n(
                    "added_1h",
                    "wait_event",
                    "Adds it within an hour?",
                    event="Product Added",
                    amount=1,
                    unit="hours",
                    match="product",
                    filters=[],
                ),
                _n("browse_email", "action_email", "Reminder email", template="@browse_email"),
                _n(
                    "order",
                    "goal",
                    "Orders",
                    event=ORDER,
                    amount=3,
                    unit="days",
                    revenue_property=REVENUE,
                ),
            ),
            edges=(
                ("viewed", "next", "added_1h"),
                ("added_1h", "timeout", "browse_email"),
                ("browse_email", "next", "order"),
            ),
            reentry="after",
            reentry_days=7,
            exit_events=(ORDER,),
        ),
        Preset(
            key="wishlist_price_drop",
            name="Wishlist price drop",
            description=(
                "When a product someone saved (wishlist or cart) gets cheaper, email them the "
                "new price. Listens for “Product Price Dropped”, which a catalog update records."
            ),
            category="Shopping",
            nodes=(
                _n(
                    "dropped",
                    "trigger_event",
                    "Saved product drops in price",
                    event="Product Price Dropped",
                ),
                _n("drop_email", "action_email", "Price drop email", template="@price_drop_email"),
                _n(
                    "order",
                    "goal",
                    "Orders",
                    event=ORDER,
                    amount=3,
                    unit="days",
                    revenue_property=REVENUE,
                ),
            ),
            edges=(("dropped", "next", "drop_email"), ("drop_email", "next", "order")),
            reentry="always",
        ),
        Preset(
            key="back_in_stock",
            name="Back in stock",
            description=(
                "When a product someone saved (wishlist or cart) is available again, email "
                "them. Listens for “Product Back in Stock”, which a catalog update records."
            ),
            category="Shopping",
            nodes=(
                _n(
                    "restocked",
                    "trigger_event",
                    "Saved product back in stock",
                    event="Product Back in Stock",
                ),
                _n(
                    "stock_email",
                    "action_email",
                    "Back in stock email",
                    template="@back_in_stock_email",
                ),
                _n(
                    "order",
                    "goal",
                    "Orders",
                    event=ORDER,
                    amount=3,
                    unit="days",
                    revenue_property=REVENUE,
                ),
            ),
            edges=(("restocked", "next", "stock_email"), ("stock_email", "next", "order")),
            reentry="always",
        ),
        Preset(
            key="post_purchase",
            name="Post-purchase follow-up",
            description=(
                "A thank-you a day after each order and, a week later, a request to review "
                "what they bought."
            ),
            category="Retention",
            nodes=(
                _n("ordered", "trigger_event", "Orders", event=ORDER),
                _n("wait_24h", "wait_delay", "A day later", amount=24, unit="hours"),
                _n("thanks", "action_email", "Thank-you email", template="@thank_you_email"),
                _n("wait_7d", "wait_delay", "A week later", amount=7, unit="days"),
                _n("review", "action_email", "Review request", template="@review_email"),
            ),
            edges=(
                ("ordered", "next", "wait_24h"),
                ("wait_24h", "next", "thanks"),
                ("thanks", "next", "wait_7d"),
                ("wait_7d", "next", "review"),
            ),
            # A second order during the week waits its turn: one enrollment at a time.
            reentry="always",
        ),
        Preset(
            key="win_back",
            name="Win-back after 60 days",
            description=(
                "When a customer hasn't ordered for 60 days (they enter the segment “No order "
                "in 60 days”, created with it), an email with a coupon; if they don't order "
                "within a week, a last reminder."
            ),
            category="Retention",
            nodes=(
                _n(
                    "lapsed",
                    "trigger_segment",
                    "60 days without an order",
                    segment="@lapsed_60",
                    direction="entered",
                ),
                _n("miss_you", "action_email", "We miss you", template="@winback_email"),
                _n(
                    "came_back",
                    "goal",
                    "Orders within a week",
                    event=ORDER,
                    amount=7,
                    unit="days",
                    revenue_property=REVENUE,
                ),
                _n("last_chance", "action_email", "Last chance", template="@winback_last_email"),
            ),
            edges=(
                ("lapsed", "next", "miss_you"),
                ("miss_you", "next", "came_back"),
                ("came_back", "timeout", "last_chance"),
            ),
            reentry="after",
            reentry_days=90,
        ),
        Preset(
            key="nps_survey",
            name="NPS survey",
            description=(
                "Two weeks after an order, asks how likely they are to recommend you (0 to "
                "10). Promoters (9 or 10) are thanked and tagged; detractors (0 to 6) get an "
                "apology and are tagged for the team. Expects your survey page to track “NPS "
                "Submitted” with a numeric “score”."
            ),
            category="Feedback",
            nodes=(
                _n("ordered", "trigger_event", "Orders", event=ORDER),
                _n("wait_14d", "wait_delay", "Two weeks later", amount=14, unit="days"),
                _n("survey", "action_email", "Survey email", template="@nps_email"),
                _n(
                    "answered",
                    "wait_event",
                    "Answers within 7 days?",
                    event="NPS Submitted",
                    amount=7,
                    unit="days",
                    match="",
                    filters=[],
                ),
                _n(
                    "promoter",
                    "branch_event",
                    "Promoter (9 or 10)?",
                    event="NPS Submitted",
                    since="entered",
                    days=7,
                    filters=_FILTERS_PROMOTER,
                ),
                _n(
                    "tag_promoter",
                    "action_list",
                    "Tag promoter",
                    attribute="tags",
                    operation="add",
                    value="nps-promoter",
                ),
                _n(
                    "thanks",
                    "action_email",
                    "Thank promoter",
                    template="@nps_promoter_email",
                ),
                _n(
                    "detractor",
                    "branch_event",
                    "Detractor (0 to 6)?",
                    event="NPS Submitted",
                    since="entered",
                    days=7,
                    filters=_FILTERS_DETRACTOR,
                ),
                _n(
                    "tag_detractor",
                    "action_list",
                    "Tag detractor",
                    attribute="tags",
                    operation="add",
                    value="nps-detractor",
                ),
                _n(
                    "sorry",
                    "action_email",
                    "Apologise",
                    template="@nps_detractor_email",
                ),
            ),
            edges=(
                ("ordered", "next", "wait_14d"),
                ("wait_14d", "next", "survey"),
                ("survey", "next", "answered"),
                ("answered", "event", "promoter"),
                ("promoter", "yes", "tag_promoter"),
                ("tag_promoter", "next", "thanks"),
                ("promoter", "no", "detractor"),
                ("detractor", "yes", "tag_detractor"),
                ("tag_detractor", "next", "sorry"),
            ),
            # At most one survey per person per half year.
            reentry="after",
            reentry_days=180,
        ),
        Preset(
            key="loyalty_nudge",
            name="Repeat-purchase loyalty nudge",
            description=(
                "After an order, if the customer doesn't come back within 30 days, "
                "recommendations picked for them and a free-shipping code."
            ),
            category="Retention",
            nodes=(
                _n("ordered", "trigger_event", "Orders", event=ORDER),
                _n(
                    "again_30d",
                    "wait_event",
                    "Orders again within 30 days?",
                    event=ORDER,
                    amount=30,
                    unit="days",
                    match="",
                    filters=[],
                ),
                _n("nudge", "action_email", "Picked for you", template="@loyalty_email"),
                _n(
                    "order",
                    "goal",
                    "Orders again",
                    event=ORDER,
                    amount=14,
                    unit="days",
                    revenue_property=REVENUE,
                ),
            ),
            edges=(
                ("ordered", "next", "again_30d"),
                ("again_30d", "timeout", "nudge"),
                ("nudge", "next", "order"),
            ),
            reentry="always",
        ),
    ]
}


# --- making one ------------------------------------------------------------------------------


def _template_for(*, tenant: Tenant, key: str) -> str:
    """The public id of the team's template for TEMPLATES[key]: theirs of that name and channel,
    or a new one (a suffixed name when the name is taken by another channel's)."""
    from messaging.models import Template
    from messaging.services import template_save

    fields = TEMPLATES[key]
    found = Template.objects.filter(
        tenant=tenant, name=fields["name"], channel=fields["channel"]
    ).first()
    if found is not None:
        return str(found.public_id)
    name = _free_name(
        fields["name"], lambda n: Template.objects.filter(tenant=tenant, name=n).exists()
    )
    return str(template_save(tenant=tenant, **{**fields, "name": name}).public_id)


def _segment_for(*, tenant: Tenant, key: str) -> str:
    from segments.models import Segment
    from segments.services import segment_create

    name, description, rules = SEGMENTS[key]
    found = Segment.objects.filter(tenant=tenant, name=name).first()
    if found is not None:
        return str(found.public_id)
    return str(
        segment_create(tenant=tenant, name=name, rules=rules, description=description).public_id
    )


def _free_name(name: str, taken: Any) -> str:
    candidate, n = name, 1
    while taken(candidate):
        n += 1
        candidate = f"{name} ({n})"
    return candidate


def preset_create(*, tenant: Tenant, key: str, actor: Any = None) -> Journey:
    """The preset `key` as the team's new draft journey, with the templates and segment it needs
    (created when the team has none of that name). KeyError for an unknown key."""
    from journeys import services

    preset = PRESETS[key]
    with transaction.atomic():
        templates = {t: _template_for(tenant=tenant, key=t) for t in preset.templates}
        segments = {s: _segment_for(tenant=tenant, key=s) for s in preset.segments}
        name = _free_name(
            preset.name, lambda n: Journey.objects.filter(tenant=tenant, name=n).exists()
        )
        return services.journey_create(
            tenant=tenant,
            name=name,
            actor=actor,
            description=preset.description,
            graph=preset_graph(preset, templates=templates, segments=segments),
            preset=preset.key,
            settings=preset.settings,
        )
