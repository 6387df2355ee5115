"""Journey services: creating, editing the draft, publishing, the journey's life."""

from __future__ import annotations

from typing import Any

import pytest

from journeys import selectors, services
from journeys.models import Edge, Journey, JourneyVersion, Node
from journeys.services import JourneyConflict, JourneyError, JourneyGraphInvalid

pytestmark = pytest.mark.django_db


def make(world: Any, name: str = "Cart", graph: dict[str, Any] | None = None) -> Journey:
    return services.journey_create(tenant=world.acme, name=name, actor=world.dave, graph=graph)


def edges(version: JourneyVersion) -> set[tuple[str, str, str]]:
    return set(Edge.objects.filter(version=version).values_list("source", "port", "target"))


def test_it_creates_a_journey_with_a_draft_holding_a_lone_trigger(world: Any) -> None:
    journey = make(world)
    draft = selectors.journey_draft(journey=journey)
    assert journey.status == Journey.Status.DRAFT
    assert draft is not None and draft.number == 1
    assert list(Node.objects.filter(version=draft).values_list("key", "kind")) == [
        ("n1", "trigger_event")
    ]
