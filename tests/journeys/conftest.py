"""Journey fixtures: `journey_factory` builds a live journey with a published version from a
compact graph spec, without the services (the engine's tests need no editor)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.utils import timezone


def journey_build(
    tenant: Any,
    nodes: dict[str, tuple[str, dict[str, Any]]],
    edges: str = "",
    *,
    name: str = "",
    status: str = "live",
    **version: Any,
) -> Any:
    """nodes: {key: (kind, settings)}; edges: "t.next>w w.next>e" (source.port>target)."""
    from journeys.models import Edge, Journey, JourneyVersion, Node

    journey = Journey.objects.create(
        tenant=tenant, name=name or f"J{Journey.objects.count() + 1}", status=status
    )
    trigger = next(n for n in nodes.values() if n[0].startswith("trigger_"))
    v = JourneyVersion.objects.create(
        tenant=tenant,
        journey=journey,
        number=1,
        state=JourneyVersion.State.PUBLISHED,
        trigger_kind=trigger[0],
        trigger_event=trigger[1].get("event", ""),
        goal_events=[s["event"] for k, s in nodes.values() if k == "goal"],
        **{"published_at": timezone.now(), **version},
    )
    for key, (kind, settings) in nodes.items():
        Node.objects.create(tenant=tenant, version=v, key=key, kind=kind, settings=settings)
    for edge in edges.split():
        source, target = edge.split(">")
        node, port = source.split(".")
        Edge.objects.create(tenant=tenant, version=v, source=node, port=port, target=target)
    return journey


@pytest.fixture
def journey_factory(world: Any) -> Callable[..., Any]:
    def make(nodes: dict[str, tuple[str, dict[str, Any]]], edges: str = "", **kw: Any) -> Any:
        return journey_build(kw.pop("tenant", world.acme), nodes, edges, **kw)

    return make


@pytest.fixture
def email(world: Any) -> Any:
    from messaging.models import Channel, Template

    return Template.objects.create(
        tenant=world.acme,
        name="Your cart",
        channel=Channel.EMAIL,
        subject="You left something",
        html="<p>{% for item in cart.items %}{{ item.name }} {% endfor %}</p>",
    )


@pytest.fixture
def contact(world: Any) -> Any:
    from audience.models import Contact

    return Contact.objects.create(
        tenant=world.acme, email="ann@example.com", first_name="Ann", email_consent="granted"
    )


# The email template the service tests' graphs name: publishing checks that a step's template is
# one of the team's own, so both teams have one under this id (ids are unique per team).
CART_TEMPLATE = "5b0c3a4e-0000-4000-8000-00000000ca57"


@pytest.fixture
def cart_templates(world: Any) -> None:
    from messaging.models import Channel, Template

    for tenant in (world.acme, world.globex):
        Template.objects.create(
            tenant=tenant,
            public_id=CART_TEMPLATE,
            name="Cart (graph tests)",
            channel=Channel.EMAIL,
            subject="Your cart",
            html="<p>Your cart</p>",
        )
