from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from rest_framework import serializers

from audience.models import Contact
from segments import registry, rules
from segments.models import Segment, SegmentMembership
from segments.presets import Preset


def rule_tree_schema() -> dict[str, Any]:
    """The rule tree's schema, with each registered condition kind's fragment and example (under
    `x-condition-kinds`), built when the schema is generated so every registered kind shows."""
    kinds = registry.kinds()
    return {
        "type": "object",
        "additionalProperties": True,
        "description": "A rule tree: a group `{type: group, match: all|any, negate, children}` "
        f"whose children are groups or conditions ({', '.join(k.name for k in kinds)}); "
        "`x-condition-kinds` has each condition's schema, and docs/api.md more.",
        "example": {
            "type": "group",
            "match": "all",
            "negate": False,
            "children": [
                {"type": "event", "event": "Order Completed", "window": {"last_days": 30}},
                {"type": "reachable", "channel": "email", "reachable": True},
            ],
        },
        "x-condition-kinds": {kind.name: kind.api_schema() for kind in kinds},
    }


class RuleTreeField(serializers.JSONField):
    """Any JSON here; segments.rules checks the tree (and says which condition is wrong)."""


class RuleTreeFieldExtension(OpenApiSerializerFieldExtension):
    target_class = RuleTreeField

    def map_serializer_field(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        return rule_tree_schema()


def _summary(tree: dict[str, Any], context: Mapping[str, Any]) -> str:
    # The views pass the tenant's segment names once per request (for "is in “…”" parts).
    return rules.describe(tree, context.get("segment_names", {}))


class SegmentOutputSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    rules = RuleTreeField(read_only=True)
    summary = serializers.SerializerMethodField()

    class Meta:
        model = Segment
        fields = [
            "id",
            "name",
            "description",
            "rules",
            "summary",
            "member_count",
            "time_relative",
            "refreshed_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_summary(self, segment: Segment) -> str:
        return _summary(segment.rules, self.context)


class SegmentInputSerializer(serializers.Serializer):
    # Blank names and duplicates are the service's to refuse (SegmentError, field "name").
    name = serializers.CharField(max_length=200, allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    rules = RuleTreeField()


class RulesCountInputSerializer(serializers.Serializer):
    rules = RuleTreeField()


class RulesCountOutputSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    summary = serializers.CharField()


class SegmentMemberOutputSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    # Annotated by the view: when the contact entered this segment.
    entered_at = serializers.DateTimeField(read_only=True)

    class Meta:
        model = Contact
        fields = ["id", "email", "user_id", "first_name", "last_name", "entered_at"]
        read_only_fields = fields


class ContactSegmentOutputSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="segment.public_id", read_only=True)
    name = serializers.CharField(source="segment.name", read_only=True)
    description = serializers.CharField(source="segment.description", read_only=True)

    class Meta:
        model = SegmentMembership
        fields = ["id", "name", "description", "entered_at"]
        read_only_fields = fields


class ContactSegmentListOutputSerializer(serializers.Serializer):
    results = ContactSegmentOutputSerializer(many=True)


class PresetOutputSerializer(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    rules = RuleTreeField()
    summary = serializers.SerializerMethodField()

    def get_summary(self, preset: Preset) -> str:
        return _summary(rules.validate(preset.rules), self.context)


class PresetListOutputSerializer(serializers.Serializer):
    results = PresetOutputSerializer(many=True)
