"""Which stages a journey's step or a segment's rules act on (analytics/journey_map.py), on
hand-made settings: no database."""

from __future__ import annotations

from typing import Any

from analytics.journey_map import (
    ALL,
    STAGE_CHANGED,
    filters_stages,
    node_reasons,
    rule_stages,
    segments_stages,
)


def group(*children: dict[str, Any], match: str = "all", negate: bool = False) -> dict[str, Any]:
    return {"type": "group", "match": match, "negate": negate, "children": list(children)}


def lifecycle(*stages: str, operator: str = "in") -> dict[str, Any]:
    return {"type": "lifecycle", "operator": operator, "value": list(stages)}


def to(value: str, operator: str = "equals") -> dict[str, Any]:
    return {"property": "to", "operator": operator, "value": value}


def reasons(kind: str, settings: dict[str, Any], **known: Any) -> list[tuple[set[str], str]]:
    found = node_reasons(
        kind=kind,
        settings=settings,
        label=known.pop("label", ""),
        segment_stages=known.get("stages", {}),
        segment_names=known.get("names", {}),
    )
    return [(set(r.stages), r.text) for r in found]


def test_a_stage_change_filter_names_the_stage_moved_into() -> None:
    assert filters_stages([to("onboarding")]) == {"onboarding"}
    assert filters_stages([to("advocacy", "not_equals")]) == ALL - {"advocacy"}
    assert filters_stages([]) == ALL  # any move: every stage
    assert (
        filters_stages([{"property": "from", "operator": "equals", "value": "onboarding"}]) == ALL
    )
    assert filters_stages([to("onboarding"), to("advocacy")]) == set()  # both cannot hold
    assert filters_stages([to("nonsense")]) == set()


def test_a_lifecycle_condition_acts_on_its_stages_or_on_the_others_when_it_keeps_them_out() -> None:
    assert rule_stages(group(lifecycle("engagement", "advocacy"))) == {"engagement", "advocacy"}
    assert rule_stages(group(lifecycle("advocacy", operator="not_in"))) == ALL - {"advocacy"}
    assert rule_stages(group(lifecycle("advocacy"), negate=True)) == ALL - {"advocacy"}
    negated_twice = group(lifecycle("advocacy", operator="not_in"), negate=True)
    assert rule_stages(negated_twice) == {"advocacy"}


def test_rules_without_a_stage_act_on_none() -> None:
    assert rule_stages(group({"type": "attribute", "attribute": "city", "value": "Paris"})) == set()
    assert rule_stages(None) == set()


def test_a_stage_change_event_condition_counts() -> None:
    tree = group({"type": "event", "event": STAGE_CHANGED, "where": [to("retention")]})
    assert rule_stages(tree) == {"retention"}
    other = group({"type": "event", "event": "Order Completed", "where": [to("retention")]})
    assert rule_stages(other) == set()


def test_segments_inside_segments_pass_their_stages_on_and_cycles_end() -> None:
    inner, outer, loop_a, loop_b = "i", "o", "a", "b"
    found = segments_stages(
        {
            inner: group(lifecycle("onboarding")),
            outer: group({"type": "segment", "segment": inner, "member": True}),
            loop_a: group(
                lifecycle("advocacy"), {"type": "segment", "segment": loop_b, "member": True}
            ),
            loop_b: group({"type": "segment", "segment": loop_a, "member": True}),
            "not-in": group({"type": "segment", "segment": inner, "member": False}),
        }
    )
    assert found[inner] == {"onboarding"} and found[outer] == {"onboarding"}
    assert "advocacy" in found[loop_a]
    assert found["not-in"] == ALL - {"onboarding"}


def test_a_journeys_steps_act_on_stages_through_triggers_branches_and_segments() -> None:
    trigger = {"event": STAGE_CHANGED, "filters": [to("onboarding")]}
    assert reasons("trigger_event", trigger) == [
        ({"onboarding"}, "Trigger: stage changed to Onboarding")
    ]
    assert reasons("trigger_event", {"event": "Order Completed", "filters": []}) == []
    assert reasons("branch_event", {"event": STAGE_CHANGED, "filters": []}, label="Moved?") == [
        (set(ALL), "Branch “Moved?”: stage changed to any stage")
    ]
    branch = {"rules": group(lifecycle("retention"))}
    assert reasons("branch_condition", branch) == [
        ({"retention"}, "Branch: condition on the stage")
    ]
    seg = {"segment": "s1", "direction": "exited"}
    assert reasons(
        "trigger_segment", seg, stages={"s1": frozenset({"advocacy"})}, names={"s1": "Fans"}
    ) == [({"advocacy"}, "Trigger: leaving segment “Fans”")]
    assert reasons("trigger_segment", {"segment": "unknown"}) == []
    in_branch = {"rules": group({"type": "segment", "segment": "s1", "member": True})}
    assert reasons("branch_condition", in_branch, stages={"s1": frozenset({"advocacy"})}) == [
        ({"advocacy"}, "Branch: condition on the stage")
    ]
