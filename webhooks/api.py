"""REST API for outbound webhooks (secret key; docs/webhooks.md): endpoints (list, create, read,
change, delete, rotate the secret, send a test event) and an endpoint's messages (list, replay).

Endpoints and messages are loaded through the gatekeepers of webhooks/selectors.py: another
team's id is a 404, like an unknown one. A refusal names its fields (400).
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
from tenants.api import TenantAPIView
from webhooks import selectors, services
from webhooks.models import WebhookEndpoint
from webhooks.serializers import (
    WebhookEndpointInputSerializer,
    WebhookEndpointOutputSerializer,
    WebhookEndpointSecretOutputSerializer,
    WebhookMessageOutputSerializer,
)

ENDPOINT_ID = OpenApiParameter(
    "public_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="the endpoint's id"
)
MESSAGE_ID = OpenApiParameter(
    "message_id",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="the message's id (its `webhook-id`, msg_…)",
)


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"
    default_detail = "The message's state does not allow this."


def _refuse(exc: ValidationError) -> NoReturn:
    if hasattr(exc, "error_dict"):
        raise serializers.ValidationError(exc.message_dict) from None
    if any(error.code == "state" for error in exc.error_list):
        raise Conflict(" ".join(exc.messages)) from None
    raise serializers.ValidationError({"non_field_errors": exc.messages}) from None


class WebhookAPIView(TenantAPIView):
    def endpoint(self, public_id: str) -> WebhookEndpoint:
        return selectors.endpoint_get(tenant=self.tenant, public_id=public_id)


class WebhookEndpointListAPI(WebhookAPIView):
    pagination_class = NewestFirstPagination

    @extend_schema(
        summary="List webhook endpoints, newest first",
        responses=WebhookEndpointOutputSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(
            selectors.endpoint_list(tenant=self.tenant), request, view=self
        )
        return paginator.get_paginated_response(
            WebhookEndpointOutputSerializer(page, many=True).data
        )

    @extend_schema(
        summary="Create a webhook endpoint",
        description="The answer holds its signing secret (`secret`), shown only here.",
        request=WebhookEndpointInputSerializer,
        responses={201: WebhookEndpointSecretOutputSerializer},
    )
    def post(self, request: Request) -> Response:
        payload = WebhookEndpointInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            endpoint = services.endpoint_create(tenant=self.tenant, **payload.validated_data)
        except ValidationError as exc:
            _refuse(exc)
        answer = Response(
            WebhookEndpointSecretOutputSerializer(endpoint).data, status=status.HTTP_201_CREATED
        )
        answer["Cache-Control"] = "no-store"  # it holds the secret
        return answer


class WebhookEndpointDetailAPI(WebhookAPIView):
    @extend_schema(
        summary="A webhook endpoint",
        parameters=[ENDPOINT_ID],
        responses=WebhookEndpointOutputSerializer,
    )
    def get(self, request: Request, public_id: str) -> Response:
        return Response(WebhookEndpointOutputSerializer(self.endpoint(public_id)).data)

    @extend_schema(
        summary="Change a webhook endpoint",
        description="Any of the fields; `event_types` replaces the list.",
        parameters=[ENDPOINT_ID],
        request=WebhookEndpointInputSerializer(partial=True),
        responses=WebhookEndpointOutputSerializer,
    )
    def patch(self, request: Request, public_id: str) -> Response:
        endpoint = self.endpoint(public_id)
        payload = WebhookEndpointInputSerializer(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        try:
            endpoint = services.endpoint_update(endpoint=endpoint, **payload.validated_data)
        except ValidationError as exc:
            _refuse(exc)
        return Response(WebhookEndpointOutputSerializer(endpoint).data)

    @extend_schema(
        summary="Delete a webhook endpoint and its messages",
        parameters=[ENDPOINT_ID],
        responses={204: None},
    )
    def delete(self, request: Request, public_id: str) -> Response:
        services.endpoint_delete(endpoint=self.endpoint(public_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookEndpointRotateSecretAPI(WebhookAPIView):
    @extend_schema(
        summary="Give a webhook endpoint a new signing secret",
        description="The answer holds the new secret, shown only here. For 24 hours messages "
        "carry a signature with the previous secret too, so receivers can switch over.",
        parameters=[ENDPOINT_ID],
        request=None,
        responses=WebhookEndpointSecretOutputSerializer,
    )
    def post(self, request: Request, public_id: str) -> Response:
        endpoint = self.endpoint(public_id)
        services.endpoint_secret_rotate(endpoint=endpoint)
        answer = Response(WebhookEndpointSecretOutputSerializer(endpoint).data)
        answer["Cache-Control"] = "no-store"  # it holds the secret
        return answer


class WebhookEndpointTestAPI(WebhookAPIView):
    @extend_schema(
        summary="Send a test event (type webhook.test) to a webhook endpoint",
        parameters=[ENDPOINT_ID],
        request=None,
        responses=WebhookMessageOutputSerializer,
    )
    def post(self, request: Request, public_id: str) -> Response:
        message = services.endpoint_test_send(endpoint=self.endpoint(public_id))
        return Response(WebhookMessageOutputSerializer(message).data)


class WebhookMessageListAPI(WebhookAPIView):
    pagination_class = NewestFirstPagination

    @extend_schema(
        summary="An endpoint's messages, newest first, with how sending them went",
        parameters=[
            ENDPOINT_ID,
            OpenApiParameter(
                "status", str, description="Only pending, sending, succeeded or failed ones."
            ),
        ],
        responses=WebhookMessageOutputSerializer(many=True),
    )
    def get(self, request: Request, public_id: str) -> Response:
        messages = selectors.message_list(endpoint=self.endpoint(public_id))
        wanted = request.query_params.get("status", "")
        if wanted:
            choices = ("pending", "sending", "succeeded", "failed")
            if wanted not in choices:
                raise serializers.ValidationError({"status": [f"One of {', '.join(choices)}."]})
            messages = messages.filter(status=wanted)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(messages, request, view=self)
        return paginator.get_paginated_response(
            WebhookMessageOutputSerializer(page, many=True).data
        )


class WebhookMessageReplayAPI(WebhookAPIView):
    @extend_schema(
        summary="Send a message again (same webhook-id, a fresh retry schedule)",
        description="409 while it is being sent.",
        parameters=[ENDPOINT_ID, MESSAGE_ID],
        request=None,
        responses={200: WebhookMessageOutputSerializer, 409: API_ERROR},
    )
    def post(self, request: Request, public_id: str, message_id: str) -> Response:
        endpoint = self.endpoint(public_id)
        message = selectors.message_get(endpoint=endpoint, public_id=message_id)
        try:
            message = services.message_replay(message=message)
        except ValidationError as exc:
            _refuse(exc)
        return Response(WebhookMessageOutputSerializer(message).data)
