"""REST API of product search (secret key; docs/personalisation/search.md):

- GET /api/v1/search/ — the search the tracker's /v1/search answers, for a server: the shopper
  named by `contact` (its id), `user_id` or `anonymous_id`;
- GET/POST /api/v1/search/synonyms/, GET/PUT/DELETE /api/v1/search/synonyms/<id>/.

Another team's synonym is a 404 like an unknown one; another team's contact id is refused like
an unknown one (400 naming `contact`).
"""

from __future__ import annotations

from typing import NoReturn

from django.core.exceptions import ValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from personalisation.search import selectors, services
from personalisation.search.serializers import (
    SearchOutputSerializer,
    SearchQuerySerializer,
    SynonymInputSerializer,
    SynonymOutputSerializer,
)
from tenants.api import TenantAPIView

SYNONYM_ID = OpenApiParameter(
    "public_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="the synonym's id"
)


def _refuse(exc: ValidationError) -> NoReturn:
    if hasattr(exc, "error_dict"):
        raise serializers.ValidationError(exc.message_dict) from None
    raise serializers.ValidationError({"non_field_errors": exc.messages}) from None


class SearchAPI(TenantAPIView):
    @extend_schema(
        summary="Search the catalog for a shopper",
        description="Typo-tolerant (one edit per word), prefix matching, the team's synonyms; "
        "ranked by the shopper's category and price affinity when `contact`, `user_id` or "
        "`anonymous_id` names someone known. Records `Products Searched` on them.",
        parameters=[SearchQuerySerializer],
        responses=SearchOutputSerializer,
    )
    def get(self, request: Request) -> Response:
        params = SearchQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        contact = selectors.search_contact(
            tenant=self.tenant,
            contact_id=data.get("contact"),
            user_id=data["user_id"] or None,
            anonymous_id=data["anonymous_id"] or None,
        )
        if data.get("contact") and contact is None:
            raise serializers.ValidationError({"contact": ["No contact with this id."]})
        answer = services.search_run(
            tenant=self.tenant,
            query=data["q"],
            limit=data["limit"],
            offset=data["offset"],
            category=data["category"],
            contact=contact,
            user_id=data["user_id"] or None,
            anonymous_id=data["anonymous_id"] or None,
        )
        response = Response(answer.as_json())
        response["Cache-Control"] = "no-store"  # ranked for this shopper
        return response


class SearchSynonymListAPI(TenantAPIView):
    @extend_schema(
        summary="The team's search synonyms", responses=SynonymOutputSerializer(many=True)
    )
    def get(self, request: Request) -> Response:
        synonyms = selectors.synonym_list(tenant=self.tenant)
        return Response(SynonymOutputSerializer(synonyms, many=True).data)

    @extend_schema(
        summary="Set a search synonym",
        description="Creates the term's synonym, or replaces its alternatives if it has one.",
        request=SynonymInputSerializer,
        responses={201: SynonymOutputSerializer},
    )
    def post(self, request: Request) -> Response:
        payload = SynonymInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            synonym = services.synonyms_set(tenant=self.tenant, **payload.validated_data)
        except ValidationError as exc:
            _refuse(exc)
        return Response(SynonymOutputSerializer(synonym).data, status=status.HTTP_201_CREATED)


class SearchSynonymDetailAPI(TenantAPIView):
    @extend_schema(
        summary="A search synonym", parameters=[SYNONYM_ID], responses=SynonymOutputSerializer
    )
    def get(self, request: Request, public_id: str) -> Response:
        synonym = selectors.synonym_get(tenant=self.tenant, public_id=public_id)
        return Response(SynonymOutputSerializer(synonym).data)

    @extend_schema(
        summary="Change a search synonym",
        parameters=[SYNONYM_ID],
        request=SynonymInputSerializer,
        responses=SynonymOutputSerializer,
    )
    def put(self, request: Request, public_id: str) -> Response:
        synonym = selectors.synonym_get(tenant=self.tenant, public_id=public_id)
        payload = SynonymInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            synonym = services.synonym_update(synonym=synonym, **payload.validated_data)
        except ValidationError as exc:
            _refuse(exc)
        return Response(SynonymOutputSerializer(synonym).data)

    @extend_schema(
        summary="Delete a search synonym", parameters=[SYNONYM_ID], responses={204: None}
    )
    def delete(self, request: Request, public_id: str) -> Response:
        synonym = selectors.synonym_get(tenant=self.tenant, public_id=public_id)
        services.synonym_delete(synonym=synonym)
        return Response(status=status.HTTP_204_NO_CONTENT)
