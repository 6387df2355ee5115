"""REST API for onsite placements (secret key): placements (list, create, read, change, delete)
and their variants (list, create, read, change — targets, order, active — and delete).

Placements and variants are loaded through the gatekeepers of selectors.py: another team's id is
a 404, like an unknown one. A refusal names its fields (400). What a visitor is served is the
browser endpoint's (GET /v1/placements, docs/personalisation/placements.md).
"""

from __future__ import annotations

from typing import Any, NoReturn

from django.core.exceptions import ValidationError
from django.db.models import Prefetch, QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from core.pagination import NewestFirstPagination
from personalisation.placements import selectors, services
from personalisation.placements.models import Placement, PlacementVariant
from personalisation.placements.serializers import (
    PlacementInputSerializer,
    PlacementOutputSerializer,
    VariantInputSerializer,
    VariantOutputSerializer,
)
from segments.models import Segment
from tenants.api import TenantAPIView

PLACEMENT_ID = OpenApiParameter(
    "public_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="the placement's id"
)
VARIANT_ID = OpenApiParameter(
    "variant_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="the variant's id"
)


def _refuse(exc: ValidationError) -> NoReturn:
    if hasattr(exc, "error_dict"):
        raise serializers.ValidationError(exc.message_dict) from None
    raise serializers.ValidationError({"non_field_errors": exc.messages}) from None


def _with_variants(placements: QuerySet[Placement]) -> QuerySet[Placement]:
    return placements.prefetch_related(
        Prefetch("variants", queryset=PlacementVariant.objects.select_related("segment"))
    )


class PlacementAPIView(TenantAPIView):
    def placement(self, public_id: str) -> Placement:
        return selectors.placement_get(tenant=self.tenant, public_id=public_id)

    def placement_response(self, placement: Placement, *, status_code: int = 200) -> Response:
        fresh = _with_variants(Placement.objects.filter(tenant=self.tenant, pk=placement.pk))
        return Response(PlacementOutputSerializer(fresh.get()).data, status=status_code)

    def segment(self, data: dict[str, Any]) -> dict[str, Any]:
        """The input's segment id as the team's segment (a 400 naming `segment` otherwise)."""
        if "segment" not in data:
            return data
        public_id = data.pop("segment")
        segment = None
        if public_id is not None:
            segment = Segment.objects.filter(tenant=self.tenant, public_id=public_id).first()
            if segment is None:
                raise serializers.ValidationError({"segment": ["No such segment."]})
        return {**data, "segment": segment}


class PlacementListAPI(PlacementAPIView):
    pagination_class = NewestFirstPagination

    @extend_schema(
        summary="List placements, newest first, with their variants",
        responses=PlacementOutputSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(
            _with_variants(selectors.placement_list(tenant=self.tenant)), request, view=self
        )
        return paginator.get_paginated_response(PlacementOutputSerializer(page, many=True).data)

    @extend_schema(
        summary="Create a placement",
        request=PlacementInputSerializer,
        responses={201: PlacementOutputSerializer},
    )
    def post(self, request: Request) -> Response:
        payload = PlacementInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            placement = services.placement_create(tenant=self.tenant, **payload.validated_data)
        except ValidationError as exc:
            _refuse(exc)
        return self.placement_response(placement, status_code=status.HTTP_201_CREATED)


class PlacementDetailAPI(PlacementAPIView):
    @extend_schema(
        summary="A placement and its variants",
        parameters=[PLACEMENT_ID],
        responses=PlacementOutputSerializer,
    )
    def get(self, request: Request, public_id: str) -> Response:
        return self.placement_response(self.placement(public_id))

    @extend_schema(
        summary="Change a placement",
        description="Any of the fields. Changing `key` changes what the pages must name.",
        parameters=[PLACEMENT_ID],
        request=PlacementInputSerializer(partial=True),
        responses=PlacementOutputSerializer,
    )
    def patch(self, request: Request, public_id: str) -> Response:
        placement = self.placement(public_id)
        payload = PlacementInputSerializer(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        try:
            services.placement_update(
                tenant=self.tenant, placement=placement, **payload.validated_data
            )
        except ValidationError as exc:
            _refuse(exc)
        return self.placement_response(placement)

    @extend_schema(
        summary="Delete a placement and its variants",
        parameters=[PLACEMENT_ID],
        responses={204: None},
    )
    def delete(self, request: Request, public_id: str) -> Response:
        services.placement_delete(tenant=self.tenant, placement=self.placement(public_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class VariantListAPI(PlacementAPIView):
    @extend_schema(
        summary="A placement's variants, in priority order",
        parameters=[PLACEMENT_ID],
        responses=VariantOutputSerializer(many=True),
    )
    def get(self, request: Request, public_id: str) -> Response:
        variants = selectors.variant_list(tenant=self.tenant, placement=self.placement(public_id))
        return Response(VariantOutputSerializer(variants, many=True).data)

    @extend_schema(
        summary="Add a variant to a placement",
        parameters=[PLACEMENT_ID],
        request=VariantInputSerializer,
        responses={201: VariantOutputSerializer},
    )
    def post(self, request: Request, public_id: str) -> Response:
        placement = self.placement(public_id)
        payload = VariantInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = self.segment(dict(payload.validated_data))
        data["lifecycle_stage"] = data.get("lifecycle_stage") or ""
        try:
            variant = services.variant_create(tenant=self.tenant, placement=placement, **data)
        except ValidationError as exc:
            _refuse(exc)
        return Response(VariantOutputSerializer(variant).data, status=status.HTTP_201_CREATED)


class VariantDetailAPI(PlacementAPIView):
    def variant(self, public_id: str, variant_id: str) -> PlacementVariant:
        return selectors.variant_get(
            tenant=self.tenant, placement=self.placement(public_id), public_id=variant_id
        )

    @extend_schema(
        summary="A variant",
        parameters=[PLACEMENT_ID, VARIANT_ID],
        responses=VariantOutputSerializer,
    )
    def get(self, request: Request, public_id: str, variant_id: str) -> Response:
        return Response(VariantOutputSerializer(self.variant(public_id, variant_id)).data)

    @extend_schema(
        summary="Change a variant: its content, targets, place in the order, or active",
        parameters=[PLACEMENT_ID, VARIANT_ID],
        request=VariantInputSerializer(partial=True),
        responses=VariantOutputSerializer,
    )
    def patch(self, request: Request, public_id: str, variant_id: str) -> Response:
        variant = self.variant(public_id, variant_id)
        payload = VariantInputSerializer(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        data = self.segment(dict(payload.validated_data))
        try:
            services.variant_update(tenant=self.tenant, variant=variant, **data)
        except ValidationError as exc:
            _refuse(exc)
        return Response(VariantOutputSerializer(self.variant(public_id, variant_id)).data)

    @extend_schema(
        summary="Delete a variant",
        description="Its figures (the tracker's events) stay. To stop serving it while keeping "
        "it, set `active` to false.",
        parameters=[PLACEMENT_ID, VARIANT_ID],
        responses={204: None},
    )
    def delete(self, request: Request, public_id: str, variant_id: str) -> Response:
        services.variant_delete(tenant=self.tenant, variant=self.variant(public_id, variant_id))
        return Response(status=status.HTTP_204_NO_CONTENT)
