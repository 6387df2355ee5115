"""REST API for surveys (secret key; docs/personalisation/surveys.md): surveys (list, create,
read with their results, change) and a survey's answers (list, newest first). Surveys load
through the gatekeeper: another team's id is a 404, like an unknown one."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from core.pagination import NewestFirstPagination
from personalisation.surveys import selectors, services
from personalisation.surveys.models import Survey
from personalisation.surveys.serializers import (
    SurveyAnswerOutputSerializer,
    SurveyDetailOutputSerializer,
    SurveyInputSerializer,
    SurveyOutputSerializer,
    SurveyUpdateSerializer,
)
from tenants.api import TenantAPIView

SURVEY_ID = OpenApiParameter(
    "public_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="the survey's id"
)


class SurveyAPIView(TenantAPIView):
    def survey(self, public_id: str) -> Survey:
        return selectors.survey_get(tenant=self.tenant, public_id=public_id)

    def detail(self, survey: Survey) -> Response:
        results = selectors.survey_results(tenant=self.tenant, survey=survey, days=None)
        return Response(SurveyDetailOutputSerializer(survey, context={"results": results}).data)


class SurveyListAPI(SurveyAPIView):
    pagination_class = NewestFirstPagination

    @extend_schema(
        summary="List surveys, newest first", responses=SurveyOutputSerializer(many=True)
    )
    def get(self, request: Request) -> Response:
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(
            selectors.survey_list(tenant=self.tenant), request, view=self
        )
        return paginator.get_paginated_response(SurveyOutputSerializer(page, many=True).data)

    @extend_schema(
        summary="Create a survey (NPS or short)",
        request=SurveyInputSerializer,
        responses={201: SurveyOutputSerializer},
    )
    def post(self, request: Request) -> Response:
        payload = SurveyInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        survey = services.survey_create(tenant=self.tenant, **payload.validated_data)
        return Response(SurveyOutputSerializer(survey).data, status=status.HTTP_201_CREATED)


class SurveyDetailAPI(SurveyAPIView):
    @extend_schema(
        summary="A survey and its results (all time)",
        parameters=[SURVEY_ID],
        responses=SurveyDetailOutputSerializer,
    )
    def get(self, request: Request, public_id: str) -> Response:
        return self.detail(self.survey(public_id))

    @extend_schema(
        summary="Change a survey",
        description="Any of the fields; its kind stays. `active: false` closes it.",
        parameters=[SURVEY_ID],
        request=SurveyUpdateSerializer,
        responses=SurveyDetailOutputSerializer,
    )
    def patch(self, request: Request, public_id: str) -> Response:
        survey = self.survey(public_id)
        payload = SurveyUpdateSerializer(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        survey = services.survey_update(tenant=self.tenant, survey=survey, **payload.validated_data)
        return self.detail(survey)


class SurveyAnswerListAPI(SurveyAPIView):
    pagination_class = NewestFirstPagination

    @extend_schema(
        summary="A survey's answers, newest first",
        parameters=[SURVEY_ID],
        responses=SurveyAnswerOutputSerializer(many=True),
    )
    def get(self, request: Request, public_id: str) -> Response:
        survey = self.survey(public_id)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(
            selectors.answer_list(tenant=self.tenant, survey=survey), request, view=self
        )
        return paginator.get_paginated_response(SurveyAnswerOutputSerializer(page, many=True).data)
