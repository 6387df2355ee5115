"""REST input and output of onsite placements and their variants."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from audience.models import LifecycleStage
from personalisation.placements.models import (
    Placement,
    PlacementVariant,
    key_validate,
    url_validate,
)


class PlacementInputSerializer(serializers.Serializer):
    key = serializers.CharField(
        max_length=64,
        validators=[key_validate],
        help_text='What the shop\'s pages name (`data-wayfarer-placement="home-banner"`): '
        "1 to 64 lowercase letters, digits, - or _. Unique in the team.",
    )
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(
        max_length=2000, required=False, allow_blank=True, default=""
    )


class VariantInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=120, help_text="Unique within the placement.")
    title = serializers.CharField(max_length=200)
    body = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")
    image_url = serializers.CharField(
        max_length=2000,
        required=False,
        allow_blank=True,
        default="",
        validators=[url_validate],
        help_text="https:// URL or a path of the site (/…).",
    )
    link_url = serializers.CharField(
        max_length=2000,
        required=False,
        allow_blank=True,
        default="",
        validators=[url_validate],
        help_text="https:// URL or a path of the site (/…).",
    )
    link_text = serializers.CharField(max_length=80, required=False, allow_blank=True, default="")
    segment = serializers.UUIDField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Served only to members of this segment (its id). null: any visitor.",
    )
    lifecycle_stage = serializers.ChoiceField(
        choices=LifecycleStage.choices,
        required=False,
        allow_blank=True,
        allow_null=True,
        default="",
        help_text="Served only to contacts in this stage. Empty: any stage. With a segment too, "
        "both must hold; with neither, the variant is the placement's default.",
    )
    position = serializers.IntegerField(
        min_value=0,
        required=False,
        help_text="Where it goes in the priority order (0 = first). New variants go last.",
    )
    active = serializers.BooleanField(
        required=False, default=True, help_text="false: never served, its figures kept."
    )


class SegmentRefSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()


class VariantOutputSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    segment = serializers.SerializerMethodField()
    lifecycle_stage = serializers.ChoiceField(
        choices=LifecycleStage.choices,
        allow_blank=True,
        read_only=True,
        help_text="The stage it targets; empty: any stage.",
    )
    is_default = serializers.SerializerMethodField(
        help_text="No target: served when no targeted variant matches (the first active one)."
    )

    class Meta:
        model = PlacementVariant
        fields = [
            "id",
            "name",
            "title",
            "body",
            "image_url",
            "link_url",
            "link_text",
            "segment",
            "lifecycle_stage",
            "is_default",
            "position",
            "active",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(SegmentRefSerializer(allow_null=True))
    def get_segment(self, variant: PlacementVariant) -> dict[str, str] | None:
        if variant.segment is None:
            return None
        return {"id": str(variant.segment.public_id), "name": variant.segment.name}

    @extend_schema_field(serializers.BooleanField())
    def get_is_default(self, variant: PlacementVariant) -> bool:
        return not variant.targeted


class PlacementOutputSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    variants = serializers.SerializerMethodField()

    class Meta:
        model = Placement
        fields = ["id", "key", "name", "description", "variants", "created_at", "updated_at"]
        read_only_fields = fields

    @extend_schema_field(VariantOutputSerializer(many=True))
    def get_variants(self, placement: Placement) -> list[dict[str, Any]]:
        """In priority order, inactive ones included."""
        variants = sorted(placement.variants.all(), key=lambda v: (v.position, v.pk))
        return VariantOutputSerializer(variants, many=True).data  # type: ignore[return-value]
