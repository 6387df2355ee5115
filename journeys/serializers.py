"""REST input and output of journeys: the journey, its versions' graphs as JSON, publishing and
its problems, per-node counts, enrollments, the ready-made journeys and the API trigger."""

from __future__ import annotations

from typing import Any

import orjson
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core import storable
from journeys.models import Enrollment, Journey, JourneyVersion, Reentry

MAX_DATA_BYTES = 32 * 1024  # an API trigger's data, like a message's (docs/api.md)
MAX_EXIT_EVENTS = 20


# --- the graph --------------------------------------------------------------------------------


class GraphNodeSerializer(serializers.Serializer):
    key = serializers.CharField(
        max_length=40, help_text="Stable across versions: edges and counts refer to it."
    )
    kind = serializers.CharField(
        max_length=40, help_text="A node kind: `trigger_api`, `wait_delay`, `action_email`…"
    )
    label = serializers.CharField(  # type: ignore[assignment]
        max_length=120, required=False, allow_blank=True
    )
    settings = serializers.DictField(
        required=False, help_text="The kind's settings (docs/api.md, Node kinds)."
    )
    x = serializers.IntegerField(required=False, allow_null=True)
    y = serializers.IntegerField(required=False, allow_null=True)


class GraphEdgeSerializer(serializers.Serializer):
    source = serializers.CharField(  # type: ignore[assignment]
        max_length=40, help_text="The key of the node it leaves."
    )
    port = serializers.CharField(
        max_length=40, help_text="The port it leaves by: `next`, `yes`, `no`, `a`, `timeout`…"
    )
    target = serializers.CharField(max_length=40, help_text="The key of the node it enters.")


class GraphSerializer(serializers.Serializer):
    """`{"nodes": [...], "edges": [...]}`. Describes the JSON for the schema; journeys.graph
    reads it (graph_from_json names the path of what is wrong: `nodes[2].key`)."""

    nodes = GraphNodeSerializer(many=True)
    edges = GraphEdgeSerializer(many=True)


@extend_schema_field(GraphSerializer)
class GraphField(serializers.JSONField):
    """Any JSON here; journeys.graph.graph_from_json checks it and names the path at fault."""


# --- settings and versions --------------------------------------------------------------------


class JourneySettingsSerializer(serializers.Serializer):
    reentry = serializers.ChoiceField(
        choices=Reentry.choices, required=False, help_text="Whether a contact may enter again."
    )
    reentry_days = serializers.IntegerField(
        min_value=1, max_value=3650, required=False, allow_null=True, help_text="With `after`."
    )
    max_enrollments = serializers.IntegerField(
        min_value=1, required=False, allow_null=True, help_text="null: no limit."
    )
    exit_on_goal = serializers.BooleanField(
        required=False, help_text="Leave the journey as soon as the goal is met."
    )
    exit_events = serializers.ListField(
        child=serializers.CharField(max_length=200),
        max_length=MAX_EXIT_EVENTS,
        required=False,
        help_text="Events that end an enrollment (`Order Completed`).",
    )


SETTINGS_FIELDS = ("reentry", "reentry_days", "max_enrollments", "exit_on_goal", "exit_events")


class VersionOutputSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    state = serializers.ChoiceField(choices=JourneyVersion.State.choices)
    settings = serializers.SerializerMethodField()
    graph = serializers.SerializerMethodField()
    published_at = serializers.DateTimeField(allow_null=True)

    @extend_schema_field(JourneySettingsSerializer)
    def get_settings(self, version: JourneyVersion) -> dict[str, Any]:
        return {name: getattr(version, name) for name in SETTINGS_FIELDS}

    @extend_schema_field(GraphSerializer)
    def get_graph(self, version: JourneyVersion) -> dict[str, Any]:
        # Views hand the graphs in (journeys.selectors.version_graph), read once per version.
        graphs: dict[int, dict[str, Any]] = self.context.get("graphs", {})
        return graphs.get(version.pk, {"nodes": [], "edges": []})


@extend_schema_field(
    {
        "type": "string",
        # Not an `enum`: it would become a component named like messaging's `status` enum.
        "description": "`draft` (never published), `live`, `paused` (no one enters or "
        "advances) or `archived`.",
    }
)
class JourneyStatusField(serializers.CharField):
    """The journey's status, described inline (another app's `status` enum has the name)."""


class JourneyListOutputSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    status = JourneyStatusField(read_only=True)
    live_version = serializers.SerializerMethodField(
        help_text="The number of the version people enter, or null."
    )

    class Meta:
        model = Journey
        fields = [
            "id",
            "name",
            "description",
            "status",
            "preset",
            "live_version",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_live_version(self, journey: Journey) -> int | None:
        return getattr(journey, "live_number", None)


class JourneyOutputSerializer(JourneyListOutputSerializer):
    """A journey with its draft (being edited) and published (live) versions, each with its
    settings and graph."""

    draft = serializers.SerializerMethodField()
    published = serializers.SerializerMethodField()

    class Meta(JourneyListOutputSerializer.Meta):
        fields = [*JourneyListOutputSerializer.Meta.fields, "draft", "published"]
        read_only_fields = fields

    def _version(self, name: str) -> dict[str, Any] | None:
        version = self.context.get(name)
        return VersionOutputSerializer(version, context=self.context).data if version else None

    @extend_schema_field(VersionOutputSerializer(allow_null=True))
    def get_draft(self, journey: Journey) -> dict[str, Any] | None:
        return self._version("draft")

    @extend_schema_field(VersionOutputSerializer(allow_null=True))
    def get_published(self, journey: Journey) -> dict[str, Any] | None:
        return self._version("published")

    def get_live_version(self, journey: Journey) -> int | None:
        published = self.context.get("published")
        return published.number if published else None


class JourneyInputSerializer(serializers.Serializer):
    # Blank names and duplicates are the service's to refuse (field "name").
    name = serializers.CharField(max_length=120, allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    settings = JourneySettingsSerializer(required=False)
    graph = GraphField(
        required=False, help_text="The draft's graph; without it the journey starts empty."
    )


class JourneyPatchSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=120, allow_blank=True, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    settings = JourneySettingsSerializer(required=False)


# --- publishing -------------------------------------------------------------------------------


class PublishInputSerializer(serializers.Serializer):
    move_waiting = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Move contacts waiting at nodes that still exist (same key) to the new "
        "version; otherwise they finish on the version they are on.",
    )


class ProblemSerializer(serializers.Serializer):
    node = serializers.CharField(allow_blank=True, help_text="The node's key; empty: the graph.")
    field = serializers.CharField(allow_blank=True, help_text="The setting at fault, if any.")
    message = serializers.CharField()


class ProblemsOutputSerializer(serializers.Serializer):
    """400 on publishing an invalid graph: the API's error shape plus the problems."""

    error = serializers.DictField(help_text='`{"code": "invalid_graph", "message": …}`')
    problems = ProblemSerializer(many=True, required=False, help_text="With `invalid_graph`.")


# --- counts and enrollments -------------------------------------------------------------------


class NodeCountsSerializer(serializers.Serializer):
    entered = serializers.IntegerField()
    waiting = serializers.IntegerField()
    completed = serializers.IntegerField()
    converted = serializers.IntegerField()
    failed = serializers.IntegerField()


class StatsTotalsSerializer(serializers.Serializer):
    enrolled = serializers.IntegerField()
    open = serializers.IntegerField(help_text="Active or waiting now.")
    conversions = serializers.IntegerField()
    revenue = serializers.DecimalField(max_digits=16, decimal_places=2, coerce_to_string=True)


class StatsOutputSerializer(serializers.Serializer):
    nodes = serializers.DictField(
        child=NodeCountsSerializer(), help_text="Per node key, over every version."
    )
    totals = StatsTotalsSerializer()


class EnrollmentContactSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    email = serializers.CharField()
    user_id = serializers.CharField()


class EnrollmentOutputSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    contact = EnrollmentContactSerializer(read_only=True)
    node = serializers.CharField(source="node_key", read_only=True)
    version = serializers.IntegerField(source="version.number", read_only=True)

    class Meta:
        model = Enrollment
        fields = [
            "id",
            "contact",
            "state",
            "node",
            "version",
            "entered_at",
            "arrived_at",
            "due_at",
            "failure",
            "converted_at",
            "revenue",
            "finished_at",
        ]
        read_only_fields = fields


# --- the API trigger --------------------------------------------------------------------------


class EnrollContactSerializer(serializers.Serializer):
    """Who enters: exactly one of the contact's id, user id or email."""

    id = serializers.UUIDField(required=False)
    user_id = serializers.CharField(required=False, max_length=255)
    email = serializers.EmailField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if len(attrs) != 1:
            raise serializers.ValidationError("Give exactly one of id, user_id or email.")
        return attrs


class EnrollInputSerializer(serializers.Serializer):
    contact = EnrollContactSerializer()
    # DRF's metaclass takes declared fields off the class: `.data` stays the serializer's own.
    data = serializers.DictField(  # type: ignore[assignment]
        required=False,
        default=dict,
        help_text="Any JSON object (≤ 32 KB): the steps' templates see it as `{{ data.… }}`.",
    )

    def validate_data(self, value: dict[str, Any]) -> dict[str, Any]:
        # The parser checked the body already; data reaching us another way is checked the same.
        try:
            storable.check_json(value, field="data")
        except storable.Unstorable as exc:
            raise serializers.ValidationError(exc.message) from None
        encoded = orjson.dumps(value)
        if len(encoded) > MAX_DATA_BYTES:
            raise serializers.ValidationError(f"At most {MAX_DATA_BYTES // 1024} KB of data.")
        return value


class EnrollOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="public_id", help_text="The enrollment's id.")
    state = serializers.CharField()
    node = serializers.CharField(source="node_key")
    entered_at = serializers.DateTimeField()


# --- ready-made journeys ----------------------------------------------------------------------


class JourneyPresetOutputSerializer(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    category = serializers.CharField(help_text="Onboarding, Shopping, Retention, Feedback…")


class JourneyPresetListOutputSerializer(serializers.Serializer):
    results = JourneyPresetOutputSerializer(many=True)
