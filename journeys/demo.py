"""The demo shop's running journeys (issue 13 item 7): cart abandonment and the onboarding welcome
series, published and live, with shoppers at several steps — waiting at a wait, completed,
one converted with revenue, one failed with its reason.

    demo_seed(*, tenant, actor=None, now=None) -> int     enrollments made; 0 when done before

`ops.demo.seed_demo` (`manage.py seed_demo`, every `make run`) calls it through
`journeys.services.journey_demo_seed` after the shop's contacts exist (ops may import only
journeys' public modules). Idempotent: a tenant that has a journey made from either preset is
left alone.

Everything goes through the real paths: the presets make the journeys, `journey_publish`
publishes them, the engine enrols each shopper at a moment in the past
(`entry.enrollment_start`) and advances them as the beat would have (`advance_enrollments` at
each due time, up to now), and the converting order is a recorded event the engine processes.
The failed enrollment is real too: version 1 of the cart journey pointed its push step at a
template that was deleted while it ran ("The push template no longer exists."); version 2
uses the proper one, and that person stays failed on version 1, retryable from the editor.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils.timezone import now as clock

from audience.models import Contact, Event
from journeys import engine, entry, presets, reactions, services
from journeys.models import Enrollment, Journey
from tenants.models import Tenant

DEMO_PRESETS = ("cart_abandonment", "onboarding_welcome")
# How long ago each demo shopper entered the cart journey, and what became of them by now.
CART_AGES = {
    "waiting for checkout": timedelta(minutes=10),
    "emailed, waiting a day": timedelta(hours=3),
    "pushed, goal window open": timedelta(days=2),
    "completed": timedelta(days=5),
}
ONBOARDING_AGES = {
    "welcomed": timedelta(hours=2),
    "tipped": timedelta(days=3),
    "offered a discount": timedelta(days=6),
    "completed": timedelta(days=14),
}


def demo_seed(*, tenant: Tenant, actor: Any = None, now: datetime | None = None) -> int:
    if Journey.objects.filter(tenant=tenant, preset__in=DEMO_PRESETS).exists():
        return 0
    now = now or clock()
    with transaction.atomic():
        shoppers = list(
            Contact.objects.filter(tenant=tenant)
            .exclude(email="")
            .exclude(first_name="")
            .order_by("pk")[:40]
        )
        with_cart = [c for c in shoppers if c.cart]
        if len(with_cart) < len(CART_AGES) + 2 or len(shoppers) < len(ONBOARDING_AGES) + 1:
            return 0  # not the demo shop: nothing believable to show
        made = _cart_journey(tenant, actor, with_cart, now)
        others = [c for c in shoppers if c not in with_cart] or shoppers
        made += _onboarding_journey(tenant, actor, others, now)
    return made


def _latest(contact: Contact, name: str) -> dict[str, Any] | None:
    row = (
        Event.objects.filter(tenant_id=contact.tenant_id, contact=contact, name=name)
        .order_by("-occurred_at", "-pk")
        .values("pk", "name", "properties", "occurred_at")
        .first()
    )
    return reactions.event_dict(dict(row)) if row else None


def _run(
    tenant: Tenant,
    journey: Journey,
    contact: Contact,
    entered: datetime,
    now: datetime,
    context: dict[str, Any],
) -> Enrollment | None:
    """Enrol `contact` at `entered` and advance them as the beat would have, up to `now`."""
    enrollment = entry.enrollment_start(
        tenant=tenant,
        journey=journey,
        contact=contact,
        context=context,
        now=entered,
        advance=False,
    )
    if enrollment is None:
        return None
    _catch_up(enrollment, now)
    return enrollment


def _catch_up(enrollment: Enrollment, now: datetime) -> None:
    for _ in range(engine.MAX_HOPS):
        enrollment.refresh_from_db()
        due = enrollment.due_at
        if enrollment.state not in engine.OPEN or due is None or due > now:
            return
        engine.advance_enrollments(ids=[enrollment.pk], now=due)


def _cart_context(contact: Contact) -> dict[str, Any]:
    event = _latest(contact, "Product Added") or {
        "name": "Product Added",
        "properties": {"sku": contact.cart[0].get("sku")},
    }
    return {"event": event, "data": {}}


def _cart_journey(tenant: Tenant, actor: Any, contacts: list[Contact], now: datetime) -> int:
    from messaging.models import Template
    from messaging.services import template_save

    journey = presets.preset_create(tenant=tenant, key="cart_abandonment", actor=actor)
    push = services.journey_draft_get_or_create(journey=journey).nodes.get(key="cart_push")
    proper = push.settings["template"]
    # Version 1: the push step sends a short-lived template, deleted while people travel.
    stopgap = template_save(
        tenant=tenant,
        name="Cart reminder (old)",
        channel="push",
        title="Still in your cart",
        body="{{ cart.items.first.name | default: 'Your items' }} are waiting for you.",
    )
    services.node_update(
        journey=journey,
        key="cart_push",
        settings={**push.settings, "template": str(stopgap.public_id)},
    )
    services.journey_publish(journey=journey, actor=actor)
    made = 0
    failing, converting, *rest = contacts
    entered = now - timedelta(days=3)
    if _run(
        tenant,
        journey,
        failing,
        entered,
        entered + timedelta(hours=2),
        _cart_context(failing),
    ):
        made += 1
    # messaging has no delete service (templates are deleted from its admin): as the admin does.
    Template.objects.filter(tenant=tenant, pk=stopgap.pk).delete()
    services.node_update(
        journey=journey, key="cart_push", settings={**push.settings, "template": proper}
    )
    services.journey_publish(journey=journey, actor=actor, move_waiting=False)
    failed = Enrollment.objects.filter(tenant=tenant, journey=journey, contact=failing).first()
    if failed is not None:
        _catch_up(failed, now)  # reaches the push step of version 1: its template is gone

    for (_, age), contact in zip(CART_AGES.items(), rest, strict=False):
        made += bool(_run(tenant, journey, contact, now - age, now, _cart_context(contact)))

    # One orders an hour after the cart email: converted, with the order's revenue.
    entered = now - timedelta(hours=3)
    if _run(
        tenant,
        journey,
        converting,
        entered,
        now - timedelta(hours=1),
        _cart_context(converting),
    ):
        made += 1
        _order(tenant, converting, now - timedelta(hours=1))
    return made


def _order(tenant: Tenant, contact: Contact, at: datetime) -> None:
    from audience.services import Fact, events_record

    total = sum(float(i.get("price") or 0) * int(i.get("quantity") or 1) for i in contact.cart)
    ids = events_record(
        tenant=tenant,
        facts=[
            Fact(
                contact_id=contact.pk,
                name=presets.ORDER,
                key=f"demo-order-{contact.public_id}",
                source="demo",
                properties={
                    "order_id": f"demo-{contact.pk}",
                    presets.REVENUE: round(total, 2) or 129.0,
                    "currency": "EUR",
                    "products": contact.cart,
                },
                occurred_at=at,
            )
        ],
    )
    reactions.events_process(tenant=tenant, event_ids=ids, now=at)


def _onboarding_journey(tenant: Tenant, actor: Any, contacts: list[Contact], now: datetime) -> int:
    journey = presets.preset_create(tenant=tenant, key="onboarding_welcome", actor=actor)
    services.journey_publish(journey=journey, actor=actor)
    made = 0
    buyer, *rest = contacts
    for (_, age), contact in zip(ONBOARDING_AGES.items(), rest, strict=False):
        made += bool(_run(tenant, journey, contact, now - age, now, _signup(now - age)))
    # One orders on day 4: the goal (first order within 7 days of entering) counts it anywhere
    # in the journey, and the journey ends there for them (exit on goal).
    entered = now - timedelta(days=8)
    if _run(tenant, journey, buyer, entered, entered + timedelta(days=4), _signup(entered)):
        made += 1
        _order(tenant, buyer, entered + timedelta(days=4))
    return made


def _signup(at: datetime) -> dict[str, Any]:
    return {
        "event": {"name": "Signed Up", "properties": {}, "occurred_at": at.isoformat()},
        "data": {},
    }
