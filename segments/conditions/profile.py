"""lifecycle and segment: the contact's lifecycle stage, and its membership of another segment.

{"type": "lifecycle", "operator": "in" | "not_in", "value": ["engagement", …]}
{"type": "segment", "segment": "<segment public id>", "member": true}
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import Q

from audience.models import Contact, LifecycleStage
from segments import rules
from segments.models import SegmentMembership
from segments.registry import ConditionKind, Context, FormFields, RuleError, register, require


@register
class Lifecycle(ConditionKind):
    name = "lifecycle"
    label = "Lifecycle stage"
    order = 60
    template = "segments/conditions/lifecycle.html"
    schema = {
        "type": "object",
        "required": ["value"],
        "properties": {
            "operator": {"type": "string", "enum": ["in", "not_in"], "default": "in"},
            "value": {
                "type": "array",
                "minItems": 1,
                "items": {"type": "string", "enum": list(LifecycleStage.values)},
            },
        },
    }
    example = {"type": "lifecycle", "operator": "in", "value": ["engagement"]}

    def validate(self, raw: dict[str, Any], path: str) -> dict[str, Any]:
        operator = raw.get("operator", "in")
        require(operator in ("in", "not_in"), "operator must be in or not_in.", path)
        value = raw.get("value")
        stages = set(LifecycleStage.values)
        ok = isinstance(value, list) and value and all(rules.among(v, stages) for v in value)
        require(bool(ok), f"value must list stages among {', '.join(LifecycleStage.values)}.", path)
        assert isinstance(value, list)
        return {"type": "lifecycle", "operator": operator, "value": sorted(set(value))}

    def describe(self, node: dict[str, Any], segment_names: dict[str, str]) -> str:
        verb = "is" if node["operator"] == "in" else "is not"
        labels = dict(LifecycleStage.choices)
        return f"lifecycle stage {verb} {' or '.join(labels.get(v, v) for v in node['value'])}"

    def q(self, node: dict[str, Any], ctx: Context) -> Q:
        q = Q(lifecycle_stage__in=node["value"])
        return q if node["operator"] == "in" else ~q

    def evaluate(self, node: dict[str, Any], contact: Contact, ctx: Context) -> bool:
        return (contact.lifecycle_stage in node["value"]) == (node["operator"] == "in")

    def new(self) -> dict[str, Any]:
        return {"type": "lifecycle", "operator": "in", "value": []}

    def from_form(self, fields: FormFields) -> dict[str, Any]:
        return {
            "type": "lifecycle",
            "operator": fields.text("operator", "in"),
            "value": fields.texts("value"),
        }

    def form_check(self, node: dict[str, Any], path: str) -> None:
        if not node["value"]:
            raise RuleError("tick at least one stage.", path=path)

    def form_values(self, node: dict[str, Any]) -> dict[str, Any]:
        return {"value": [v for v in node.get("value") or [] if isinstance(v, str)]}

    def builder_choices(self, *, segments: list[tuple[str, str]]) -> dict[str, Any]:
        return {"stages": list(LifecycleStage.choices)}


@register
class SegmentMember(ConditionKind):
    name = "segment"
    label = "In another segment"
    order = 70
    template = "segments/conditions/segment.html"
    schema = {
        "type": "object",
        "required": ["segment"],
        "properties": {
            "segment": {"type": "string", "format": "uuid", "description": "a segment's id"},
            "member": {"type": "boolean", "default": True},
        },
    }
    example = {
        "type": "segment",
        "segment": "6f1c2a9e-0b5d-4c3e-9a41-2d7e8f90ab12",
        "member": False,
    }

    def validate(self, raw: dict[str, Any], path: str) -> dict[str, Any]:
        try:
            public_id = str(uuid.UUID(str(raw.get("segment"))))
        except ValueError:
            raise RuleError("choose a segment.", path=path) from None
        member = raw.get("member", True)
        require(isinstance(member, bool), "member must be true or false.", path)
        return {"type": "segment", "segment": public_id, "member": member}

    def describe(self, node: dict[str, Any], segment_names: dict[str, str]) -> str:
        name = segment_names.get(node["segment"], "a deleted segment")
        return f"{'is' if node['member'] else 'is not'} in “{name}”"

    def references(self, node: dict[str, Any]) -> set[str]:
        return {node["segment"]}

    def time_relative(self, node: dict[str, Any]) -> bool:
        return True  # the other segment may be

    def _members(self, node: dict[str, Any], ctx: Context) -> Any:
        return SegmentMembership.objects.filter(
            tenant=ctx.tenant, segment__public_id=node["segment"]
        )

    def q(self, node: dict[str, Any], ctx: Context) -> Q:
        members = self._members(node, ctx)
        if ctx.scope is not None:
            members = members.filter(contact_id__in=ctx.scope)
        q = Q(pk__in=members.values("contact_id"))
        return q if node["member"] else ~q

    def evaluate(self, node: dict[str, Any], contact: Contact, ctx: Context) -> bool:
        member = self._members(node, ctx).filter(contact_id=contact.pk).exists()
        return member == node["member"]

    def new(self) -> dict[str, Any]:
        return {"type": "segment", "segment": "", "member": True}

    def from_form(self, fields: FormFields) -> dict[str, Any]:
        return {
            "type": "segment",
            "segment": fields.text("segment"),
            "member": fields.text("member") != "no",
        }

    def form_values(self, node: dict[str, Any]) -> dict[str, Any]:
        return {"member": "yes" if node.get("member", True) else "no"}

    def builder_choices(self, *, segments: list[tuple[str, str]]) -> dict[str, Any]:
        return {"segments": segments}
