"""REST API for personas (secret key; docs/personalisation/personas.md): runs (list, request,
read) and saving a run's persona as a segment.

Runs are loaded through the gatekeeper of personas/selectors.py: another team's id is a 404,
like an unknown one. A refusal names its fields (400); a run requested while another is in
progress is a 409.
"""

from __future__ import annotations

from typing import NoReturn

from django.core.exceptions import ValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from core.openapi import API_ERROR
from core.pagination import NewestFirstPagination
from personalisation.personas import selectors, services
from personalisation.personas.serializers import (
    PersonaRunInputSerializer,
    PersonaRunOutputSerializer,
    PersonaSegmentInputSerializer,
    PersonaSegmentSerializer,
)
from tenants.api import TenantAPIView

RUN_ID = OpenApiParameter(
    "public_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="the run's id"
)
INDEX = OpenApiParameter(
    "index", OpenApiTypes.INT, OpenApiParameter.PATH, description="the persona's `index`"
)


class RunInProgress(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "run_in_progress"
    default_detail = "A run is in progress already: wait for it to finish."


def _refuse(exc: ValidationError) -> NoReturn:
    if hasattr(exc, "error_dict"):
        raise serializers.ValidationError(exc.message_dict) from None
    if any(error.code == "busy" for error in exc.error_list):
        raise RunInProgress() from None
    raise serializers.ValidationError({"non_field_errors": exc.messages}) from None


class PersonaRunListAPI(TenantAPIView):
    pagination_class = NewestFirstPagination

    @extend_schema(
        summary="List persona runs, newest first",
        responses=PersonaRunOutputSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(
            selectors.run_list(tenant=self.tenant), request, view=self
        )
        return paginator.get_paginated_response(PersonaRunOutputSerializer(page, many=True).data)

    @extend_schema(
        summary="Find personas: queue a clustering run of the team's contacts",
        description="Answers 202 with the queued run; read it again until `status` is done, "
        "too_few (`message` says why) or failed. 409 while another run is in progress.",
        request=PersonaRunInputSerializer,
        responses={202: PersonaRunOutputSerializer, 409: API_ERROR},
    )
    def post(self, request: Request) -> Response:
        payload = PersonaRunInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            run = services.persona_run_request(
                tenant=self.tenant, user=None, k=payload.validated_data["k"]
            )
        except ValidationError as exc:
            _refuse(exc)
        return Response(PersonaRunOutputSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class PersonaRunDetailAPI(TenantAPIView):
    @extend_schema(
        summary="A persona run and the personas it found",
        parameters=[RUN_ID],
        responses=PersonaRunOutputSerializer,
    )
    def get(self, request: Request, public_id: str) -> Response:
        run = selectors.run_get(tenant=self.tenant, public_id=public_id)
        return Response(PersonaRunOutputSerializer(run).data)


class PersonaSegmentAPI(TenantAPIView):
    @extend_schema(
        summary="Save a persona as a live segment",
        description="The segment's rules are the persona's `rules`; the answer says how much "
        "of the persona it holds and how many others.",
        parameters=[RUN_ID, INDEX],
        request=PersonaSegmentInputSerializer,
        responses={201: PersonaSegmentSerializer},
    )
    def post(self, request: Request, public_id: str, index: int) -> Response:
        run = selectors.run_get(tenant=self.tenant, public_id=public_id)
        payload = PersonaSegmentInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            services.persona_segment_save(
                tenant=self.tenant, run=run, index=index, name=payload.validated_data["name"]
            )
        except ValidationError as exc:
            _refuse(exc)
        saved = next(c["segment"] for c in run.clusters if c["index"] == index)
        return Response(PersonaSegmentSerializer(saved).data, status=status.HTTP_201_CREATED)
