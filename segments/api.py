"""REST API for segments: CRUD, counting a draft, members, a contact's segments, presets
(secret key; see docs/api.md)."""

from __future__ import annotations

from typing import Any, NoReturn

from django.db.models import OuterRef, QuerySet, Subquery
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from audience import selectors as audience_selectors
from audience.models import Contact
from core.openapi import API_ERROR
from core.pagination import NewestFirstPagination
from segments import presets, selectors, services
from segments import rules as rule_tree
from segments.models import Segment, SegmentMembership
from segments.serializers import (
    ContactSegmentListOutputSerializer,
    ContactSegmentOutputSerializer,
    PresetListOutputSerializer,
    PresetOutputSerializer,
    RulesCountInputSerializer,
    RulesCountOutputSerializer,
    SegmentInputSerializer,
    SegmentMemberOutputSerializer,
    SegmentOutputSerializer,
)
from segments.services import SegmentError
from tenants.api import TenantAPIView

SEGMENT_ID = OpenApiParameter(
    "public_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="the segment's id"
)


class SegmentInUse(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "in_use"
    default_detail = "Other segments use this one."


class SegmentUsed(exceptions.APIException):
    """A segment a campaign or a journey uses can't be deleted: 409 saying where, as for
    templates (messaging.api.TemplateInUse)."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "in_use"
    default_detail = "Campaigns or journeys use this segment."


def _refuse(exc: SegmentError) -> NoReturn:
    """A service's refusal as a 400 naming the field, like a serializer error."""
    raise serializers.ValidationError({exc.field: [exc.message]}) from None


class SegmentAPIView(TenantAPIView):
    """Segments of the key's team: named rule trees with materialised members."""

    def segment_context(self) -> dict[str, Any]:
        """Serializer context: the tenant's segment names, for summaries that name others."""
        return {"segment_names": selectors.segment_names(tenant=self.tenant)}

    def segment_response(self, segment: Segment, *, status_code: int = 200) -> Response:
        data = SegmentOutputSerializer(segment, context=self.segment_context()).data
        return Response(data, status=status_code)


class SegmentListAPI(SegmentAPIView):
    pagination_class = NewestFirstPagination

    @extend_schema(
        summary="List segments, newest first",
        responses=SegmentOutputSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(
            selectors.segment_list(tenant=self.tenant), request, view=self
        )
        data = SegmentOutputSerializer(page, many=True, context=self.segment_context()).data
        return paginator.get_paginated_response(data)

    @extend_schema(
        summary="Create a segment (its members are computed at once)",
        request=SegmentInputSerializer,
        responses={201: SegmentOutputSerializer},
    )
    def post(self, request: Request) -> Response:
        payload = SegmentInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        try:
            segment = services.segment_create(
                tenant=self.tenant,
                name=data["name"],
                rules=data["rules"],
                description=data["description"],
            )
        except SegmentError as exc:
            _refuse(exc)
        return self.segment_response(segment, status_code=status.HTTP_201_CREATED)


class SegmentDetailAPI(SegmentAPIView):
    @extend_schema(summary="A segment", parameters=[SEGMENT_ID], responses=SegmentOutputSerializer)
    def get(self, request: Request, public_id: str) -> Response:
        segment = selectors.segment_get(tenant=self.tenant, public_id=public_id)
        return self.segment_response(segment)

    @extend_schema(
        summary="Replace a segment's name, description and rules",
        parameters=[SEGMENT_ID],
        request=SegmentInputSerializer,
        responses=SegmentOutputSerializer,
    )
    def put(self, request: Request, public_id: str) -> Response:
        return self._update(request, public_id, partial=False)

    @extend_schema(
        summary="Change some of a segment's name, description and rules",
        parameters=[SEGMENT_ID],
        request=SegmentInputSerializer(partial=True),
        responses=SegmentOutputSerializer,
    )
    def patch(self, request: Request, public_id: str) -> Response:
        return self._update(request, public_id, partial=True)

    def _update(self, request: Request, public_id: str, *, partial: bool) -> Response:
        segment = selectors.segment_get(tenant=self.tenant, public_id=public_id)
        payload = SegmentInputSerializer(data=request.data, partial=partial)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        try:
            segment = services.segment_update(
                tenant=self.tenant,
                segment=segment,
                name=data.get("name", segment.name),
                rules=data.get("rules", segment.rules),
                description=data.get("description", segment.description),
            )
        except SegmentError as exc:
            _refuse(exc)
        return self.segment_response(segment)

    @extend_schema(
        summary="Delete a segment that no campaign, journey or other segment uses",
        description="409 `in_use`, naming the campaigns and journeys (and segments) that use it,"
        " while a campaign or a journey does; 400 `in_use` while only other segments do.",
        parameters=[SEGMENT_ID],
        responses={204: None, 400: API_ERROR, 409: API_ERROR},
    )
    def delete(self, request: Request, public_id: str) -> Response:
        segment = selectors.segment_get(tenant=self.tenant, public_id=public_id)
        try:
            services.segment_delete(tenant=self.tenant, segment=segment)
        except services.SegmentInUse as exc:
            raise SegmentUsed(exc.message) from None
        except SegmentError as exc:
            raise SegmentInUse(exc.message) from None
        return Response(status=status.HTTP_204_NO_CONTENT)


class RulesCountAPI(SegmentAPIView):
    @extend_schema(
        summary="Count the contacts a rule tree matches now, without saving it",
        request=RulesCountInputSerializer,
        responses=RulesCountOutputSerializer,
    )
    def post(self, request: Request) -> Response:
        payload = RulesCountInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            tree = services.segment_rules_check(
                tenant=self.tenant, rules=payload.validated_data["rules"]
            )
        except SegmentError as exc:
            _refuse(exc)
        count = selectors.rules_count(tenant=self.tenant, rules=tree)
        summary = rule_tree.describe(tree, selectors.segment_names(tenant=self.tenant))
        return Response(RulesCountOutputSerializer({"count": count, "summary": summary}).data)


def _with_entered_at(contacts: QuerySet[Contact], segment: Segment) -> QuerySet[Contact]:
    """Each member's entry time, read for the page's rows only (by the unique index)."""
    entered_at = SegmentMembership.objects.filter(
        tenant_id=segment.tenant_id, segment=segment, contact=OuterRef("pk")
    ).values("entered_at")[:1]
    return contacts.annotate(entered_at=Subquery(entered_at))


class SegmentMembersAPI(SegmentAPIView):
    pagination_class = NewestFirstPagination

    @extend_schema(
        summary="A segment's current members, newest contacts first",
        parameters=[SEGMENT_ID],
        responses=SegmentMemberOutputSerializer(many=True),
    )
    def get(self, request: Request, public_id: str) -> Response:
        segment = selectors.segment_get(tenant=self.tenant, public_id=public_id)
        members = selectors.segment_members(tenant=self.tenant, segment=segment)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(_with_entered_at(members, segment), request, view=self)
        return paginator.get_paginated_response(SegmentMemberOutputSerializer(page, many=True).data)


class ContactSegmentsAPI(TenantAPIView):
    """A contact of the key's team and the segments it is in."""

    @extend_schema(
        summary="The segments a contact is in now, by name",
        parameters=[
            OpenApiParameter(
                "public_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="a contact's id"
            )
        ],
        responses=ContactSegmentListOutputSerializer,
    )
    def get(self, request: Request, public_id: str) -> Response:
        contact = audience_selectors.contact_get(tenant=self.tenant, public_id=public_id)
        memberships = selectors.contact_segments(tenant=self.tenant, contact=contact)
        return Response({"results": ContactSegmentOutputSerializer(memberships, many=True).data})


class PresetListAPI(SegmentAPIView):
    @extend_schema(
        summary="The ready-made segments a team can add",
        responses=PresetListOutputSerializer,
    )
    def get(self, request: Request) -> Response:
        return Response(
            {"results": PresetOutputSerializer(presets.PRESETS.values(), many=True).data}
        )


class PresetAddAPI(SegmentAPIView):
    @extend_schema(
        summary="Add a ready-made segment (a number is added to its name if taken)",
        parameters=[
            OpenApiParameter("key", str, OpenApiParameter.PATH, enum=list(presets.PRESETS))
        ],
        request=None,
        responses={201: SegmentOutputSerializer},
    )
    def post(self, request: Request, key: str) -> Response:
        if key not in presets.PRESETS:
            raise exceptions.NotFound(f"No such preset; use one of {', '.join(presets.PRESETS)}.")
        try:
            segment = presets.preset_add(tenant=self.tenant, key=key)
        except SegmentError as exc:
            _refuse(exc)
        return self.segment_response(segment, status_code=status.HTTP_201_CREATED)
