"""REST input and output of personas: runs, their personas, and saving one as a segment."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from personalisation.personas.clustering import K_MAX
from personalisation.personas.models import PersonaRun


class PersonaRunInputSerializer(serializers.Serializer):
    k = serializers.IntegerField(
        min_value=2,
        max_value=K_MAX,
        required=False,
        allow_null=True,
        default=None,
        help_text="How many personas; null or left out: the best of 3 to 6 (silhouette).",
    )


class PersonaSegmentInputSerializer(serializers.Serializer):
    name = serializers.CharField(
        max_length=200,
        required=False,
        allow_blank=True,
        default="",
        help_text="The segment's name; empty: “Persona: ” and the persona's description.",
    )


class PersonaFiguresSerializer(serializers.Serializer):
    recency_days = serializers.FloatField(
        allow_null=True, help_text="Median days since last seen (null: none was ever seen)."
    )
    never_seen = serializers.FloatField(help_text="Share never seen on the site (0-1).")
    age_days = serializers.FloatField(help_text="Median days since the contact was created.")
    orders = serializers.FloatField(help_text="Median number of orders (whole history).")
    buyers = serializers.FloatField(help_text="Share with at least one order (0-1).")
    revenue = serializers.FloatField(help_text="Median total spent.")
    revenue_buyers = serializers.FloatField(help_text="Median total spent of those who ordered.")
    views = serializers.FloatField(help_text="Median product views, last 180 days.")
    top_category = serializers.CharField(help_text="What they view and buy most (lower case).")
    top_category_share = serializers.FloatField()
    open_rate = serializers.FloatField(
        allow_null=True, help_text="Median email open rate of those emailed (null: none were)."
    )
    mailed = serializers.FloatField(help_text="Share sent an email in the last 180 days.")
    clicks = serializers.FloatField(help_text="Median email link and push clicks.")
    push_clicks = serializers.FloatField()


class PersonaCaptureSerializer(serializers.Serializer):
    captured = serializers.FloatField(help_text="Share of the persona the rules select (0-1).")
    spill = serializers.IntegerField(help_text="Contacts outside it the rules add (estimated).")
    matches = serializers.IntegerField(help_text="Contacts the rules select (estimated).")


class PersonaSegmentSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    members = serializers.IntegerField(help_text="Its members when it was saved.")
    captured = serializers.FloatField(help_text="Share of the persona (of the sample) in it.")
    outside = serializers.IntegerField(help_text="Members outside the persona (estimated).")


class PersonaSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Its number in the run (largest first).")
    label = serializers.CharField(help_text="The persona in words.")  # type: ignore[assignment]
    summary = serializers.CharField(help_text="Its figures in a sentence.")
    size = serializers.IntegerField(help_text="Contacts in it (estimated for a sampled team).")
    sample = serializers.IntegerField(help_text="Contacts of the sample in it.")
    share = serializers.FloatField(help_text="Share of the team (0-1).")
    figures = PersonaFiguresSerializer()
    rules = serializers.JSONField(
        allow_null=True, help_text="A segment rule tree approximating it (docs/segments)."
    )
    rules_words = serializers.CharField()
    capture = PersonaCaptureSerializer()
    segment = PersonaSegmentSerializer(
        allow_null=True, required=False, help_text="The segment it was saved as, if it was."
    )


class PersonaRunOutputSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    personas = serializers.SerializerMethodField()

    class Meta:
        model = PersonaRun
        fields = [
            "id",
            "status",
            "requested_k",
            "k",
            "contacts_total",
            "sample_size",
            "silhouette",
            "message",
            "created_at",
            "started_at",
            "finished_at",
            "seconds",
            "personas",
        ]

    @extend_schema_field(PersonaSerializer(many=True))
    def get_personas(self, run: PersonaRun) -> list[dict[str, Any]]:
        """The personas found (empty until the run is done)."""
        return [{"segment": None, **persona} for persona in run.clusters]
