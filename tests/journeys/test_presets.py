"""Ready-made journeys: each is a publishable graph, and one click makes it the team's own."""

from __future__ import annotations

import uuid

import pytest

from journeys import graph, presets
from journeys.models import Journey, JourneyVersion
from messaging.models import Template
from segments.models import Segment

EXPECTED = {
    "onboarding_welcome",
    "birthday_coupon",
    "cart_abandonment",
    "browse_abandonment",
    "wishlist_price_drop",
    "back_in_stock",
    "post_purchase",
    "win_back",
    "nps_survey",
    "loyalty_nudge",
}


def test_it_offers_every_ready_made_journey_of_the_issue() -> None:
    assert set(presets.PRESETS) == EXPECTED
    for key, preset in presets.PRESETS.items():
        assert preset.key == key
        assert preset.name and preset.description and preset.category


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_it_gives_a_graph_that_validates_once_templates_are_named(key: str) -> None:
    preset = presets.PRESETS[key]
    ids = {t: str(uuid.uuid4()) for t in preset.templates}
    segments = {s: str(uuid.uuid4()) for s in preset.segments}
    data = presets.preset_graph(preset, templates=ids, segments=segments)
    parsed = graph.graph_from_json(data)
    assert graph.validate(parsed) == []
    assert graph.graph_to_json(parsed) == data  # already in the editor's format


def test_it_lists_presets_with_what_they_need() -> None:
    listed = presets.PRESETS["cart_abandonment"].as_dict()
    assert listed["templates"] == [
        "Cart abandonment: your cart is waiting",
        "Cart abandonment: reminder (push)",
    ]
    assert listed["settings"]["exit_events"] == ["Order Completed"]
    assert listed["graph"]["nodes"][0]["kind"] == "trigger_event"
    assert presets.PRESETS["win_back"].as_dict()["segments"] == ["No order in 60 days"]


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_it_creates_each_as_a_draft_with_its_templates(world, key: str) -> None:  # type: ignore[no-untyped-def]
    journey = presets.preset_create(tenant=world.acme, key=key, actor=world.dave)
    preset = presets.PRESETS[key]
    assert (journey.name, journey.preset, journey.status) == (preset.name, key, "draft")
    assert journey.created_by == world.dave
    draft = JourneyVersion.objects.get(journey=journey)
    assert draft.state == "draft"
    assert draft.reentry == preset.reentry
    assert draft.exit_events == list(preset.exit_events)
    stored = {
        n.key: n
        for n in draft.nodes.all()  # type: ignore[attr-defined]
    }
    assert set(stored) == {n["key"] for n in preset.nodes}
    # Template references resolved to the team's templates of the right channel.
    for node in stored.values():
        ref = node.settings.get("template")
        if ref:
            template = Template.objects.get(tenant=world.acme, public_id=ref)
            assert template.channel == ("push" if node.kind == "action_push" else "email")
        segment = node.settings.get("segment")
        if segment:
            assert Segment.objects.get(tenant=world.acme, public_id=segment)
    assert Template.objects.filter(tenant=world.acme).count() == len(set(preset.templates))


def test_it_creates_templates_once_and_numbers_names_on_repeat(world) -> None:  # type: ignore[no-untyped-def]
    first = presets.preset_create(tenant=world.acme, key="cart_abandonment")
    templates = Template.objects.filter(tenant=world.acme).count()
    second = presets.preset_create(tenant=world.acme, key="cart_abandonment")
    third = presets.preset_create(tenant=world.acme, key="cart_abandonment")
    assert [first.name, second.name, third.name] == [
        "Cart abandonment",
        "Cart abandonment (2)",
        "Cart abandonment (3)",
    ]
    assert Template.objects.filter(tenant=world.acme).count() == templates == 2
    # Another team gets its own.
    presets.preset_create(tenant=world.globex, key="cart_abandonment")
    assert Template.objects.filter(tenant=world.globex).count() == 2
    assert Journey.objects.filter(tenant=world.globex).count() == 1


def test_it_keeps_the_teams_own_template_of_that_name(world) -> None:  # type: ignore[no-untyped-def]
    from messaging.services import template_save

    own = template_save(
        tenant=world.acme,
        name="Post-purchase: thank you",
        channel="email",
        subject="Thanks!",
        html="<p>Our own words</p>",
    )
    journey = presets.preset_create(tenant=world.acme, key="post_purchase")
    draft = JourneyVersion.objects.get(journey=journey)
    thanks = draft.nodes.get(key="thanks")  # type: ignore[attr-defined]
    assert thanks.settings["template"] == str(own.public_id)


def test_it_makes_the_win_back_segment_once(world) -> None:  # type: ignore[no-untyped-def]
    presets.preset_create(tenant=world.acme, key="win_back")
    presets.preset_create(tenant=world.acme, key="win_back")
    segment = Segment.objects.get(tenant=world.acme, name="No order in 60 days")
    assert segment.rules["children"][0]["value"] == 60


def test_it_refuses_an_unknown_preset(world) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(KeyError):
        presets.preset_create(tenant=world.acme, key="nope")
    assert not Journey.objects.exists()


def test_its_templates_render_for_a_shopper_with_a_cart(world) -> None:  # type: ignore[no-untyped-def]
    from audience.models import Contact, Product
    from messaging import rendering
    from messaging.context import context_for_contact

    Product.objects.create(
        tenant=world.acme,
        sku="TENT-1",
        name="Trail Tent",
        price="249.00",
        url="https://s.example/t",
    )
    ann = Contact.objects.create(
        tenant=world.acme,
        email="ann@example.com",
        first_name="Ann",
        cart=[{"sku": "TENT-1", "quantity": 2}],
    )
    for key in presets.PRESETS:
        presets.preset_create(tenant=world.acme, key=key)
    event = {"name": "Order Completed", "properties": {"order_id": "o-1", "products": []}}
    context = context_for_contact(tenant=world.acme, contact=ann, event=event)
    rendered = {
        t.name: rendering.render(t.snapshot(), context)
        for t in Template.objects.filter(tenant=world.acme)
    }
    assert set(rendered) == {t["name"] for t in presets.TEMPLATES.values()}
    cart = rendered["Cart abandonment: your cart is waiting"]
    assert cart.subject == "Ann, you left something in your cart"
    assert "Trail Tent" in cart.html and "€498.00" in cart.html
    push = rendered["Cart abandonment: reminder (push)"]
    assert push.body == "Trail Tent and 1 more still waiting — €498.00."
    assert push.target_url == "https://s.example/t"
    assert "order o-1" in rendered["Post-purchase: thank you"].html
    nps = rendered["NPS: how likely are you to recommend us?"].html
    assert "score=0" in nps and "score=10" in nps
