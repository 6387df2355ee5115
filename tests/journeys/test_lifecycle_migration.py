"""journeys 0003: branch conditions that named the old lifecycle stages name the six stages, as
segments 0004 does for segments, and a rollback names the old ones again."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from django.apps import apps

from journeys.models import Node

migration = import_module("journeys.migrations.0003_lifecycle_stages")


def _branch(rules: dict[str, Any]) -> dict[str, Any]:
    return {"rules": rules}


def test_it_renames_old_stages_in_branch_conditions_and_back(
    world: Any, journey_factory: Any
) -> None:
    old = {
        "type": "all",
        "conditions": [{"type": "lifecycle", "operator": "in", "value": ["lead", "repeat"]}],
    }
    other = {
        "type": "all",
        "conditions": [{"type": "attribute", "field": "plan", "operator": "is", "value": "pro"}],
    }
    journey_factory(
        {
            "t": ("trigger_event", {"event": "Signed Up"}),
            "b": ("branch_condition", _branch(old)),
            "c": ("branch_condition", _branch(other)),
        },
        "t.next>b b.yes>c",
    )
    migration.forward(apps, None)
    renamed = Node.objects.get(key="b").settings["rules"]["conditions"][0]["value"]
    assert renamed == ["acquisition", "advocacy", "engagement", "retention"]
    assert Node.objects.get(key="c").settings == _branch(other)  # nothing else is touched

    migration.backward(apps, None)
    back = Node.objects.get(key="b").settings["rules"]["conditions"][0]["value"]
    assert set(back) == {"lead", "customer", "repeat"}
