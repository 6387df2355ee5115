"""REST API for messaging (secret key; docs/api.md): transactional sends, following a delivery,
templates (create, read, change, delete), and the sender identity.

`POST /api/v1/messages/` decides a message through the same service journeys and campaigns use,
so it passes the same policy and outbox. An `Idempotency-Key` header makes a retried request
return the delivery it already decided instead of sending again.
"""

from __future__ import annotations

import uuid
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from audience import selectors as audience_selectors
from audience.models import Contact
from core.openapi import API_ERROR
from core.pagination import NewestFirstPagination
from messaging import selectors, services
from messaging.models import Channel, Delivery
from messaging.serializers import (
    DeliveryOutputSerializer,
    MessageInputSerializer,
    SenderIdentityOutputSerializer,
    TemplateInputSerializer,
    TemplateListOutputSerializer,
    TemplateOutputSerializer,
)
from tenants.api import TenantAPIView

MAX_KEY_LENGTH = 200
IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    description="Any unique string (≤ 200 characters), e.g. a UUID. Repeating a request with "
    "the same key returns the message already decided and sends nothing more.",
)
DELIVERY_ID = OpenApiParameter(
    "public_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="the message's id"
)
TEMPLATE_ID = OpenApiParameter(
    "public_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="the template's id"
)


class TemplateInUse(exceptions.APIException):
    """A template that a campaign or a journey names can't be deleted: 409 saying where."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "in_use"
    default_detail = "Campaigns or journeys use this template."


class IdempotencyConflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "idempotency_conflict"
    default_detail = "This Idempotency-Key was used for a different message."


def _contact(tenant: Any, ref: dict[str, Any]) -> Contact:
    if "id" in ref:
        contact = Contact.objects.filter(tenant=tenant, public_id=ref["id"]).first()
    else:
        contact = audience_selectors.contact_find(
            tenant=tenant, user_id=ref.get("user_id", ""), email=ref.get("email", "")
        )
    if contact is None:
        field = next(iter(ref))
        raise serializers.ValidationError({"contact": {field: ["No contact has this " + field]}})
    return contact


class MessageListAPI(TenantAPIView):
    pagination_class = NewestFirstPagination

    @extend_schema(
        summary="Send a message to one contact (transactional by default)",
        request=MessageInputSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={
            201: DeliveryOutputSerializer,
            200: DeliveryOutputSerializer,
            404: API_ERROR,  # no such template
            409: API_ERROR,  # the Idempotency-Key was used for another message
        },
    )
    def post(self, request: Request) -> Response:
        key = request.headers.get("Idempotency-Key", "").strip()
        if len(key) > MAX_KEY_LENGTH:
            raise serializers.ValidationError(
                {"Idempotency-Key": [f"At most {MAX_KEY_LENGTH} characters."]}
            )
        payload = MessageInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        template = selectors.template_get(tenant=self.tenant, public_id=data["template"])
        contact = _contact(self.tenant, data["contact"])
        try:
            delivery, created = services.delivery_create(
                tenant=self.tenant,
                contact=contact,
                template=template,
                source="api",
                idempotency_key=f"api:{key or uuid.uuid4()}",
                category=data["category"],
                data=data["data"],
            )
        except services.DeliveryConflict as exc:
            raise IdempotencyConflict(str(exc)) from None
        return Response(
            DeliveryOutputSerializer(delivery).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    @extend_schema(
        summary="List messages, newest first",
        parameters=[
            OpenApiParameter("status", str, enum=[s.value for s in Delivery.Status]),
            OpenApiParameter("channel", str, enum=["email", "push"]),
        ],
        responses=DeliveryOutputSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        paginator = self.pagination_class()
        qs = selectors.delivery_list(
            tenant=self.tenant,
            status=request.query_params.get("status", ""),
            channel=request.query_params.get("channel", ""),
        )
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(DeliveryOutputSerializer(page, many=True).data)


class MessageDetailAPI(TenantAPIView):
    @extend_schema(
        summary="A message and its status",
        parameters=[DELIVERY_ID],
        responses=DeliveryOutputSerializer,
    )
    def get(self, request: Request, public_id: str) -> Response:
        delivery = selectors.delivery_get(tenant=self.tenant, public_id=public_id)
        return Response(DeliveryOutputSerializer(delivery).data)


class TemplateListAPI(TenantAPIView):
    @extend_schema(
        summary="List message templates, by name",
        operation_id="message_templates_list",
        parameters=[OpenApiParameter("channel", str, enum=["email", "push"])],
        responses=TemplateListOutputSerializer,
    )
    def get(self, request: Request) -> Response:
        channel = request.query_params.get("channel", "")
        if channel and channel not in Channel.values:
            raise serializers.ValidationError({"channel": [f"One of {', '.join(Channel.values)}."]})
        templates = selectors.template_list(tenant=self.tenant, channel=channel)
        return Response({"results": TemplateOutputSerializer(templates, many=True).data})

    @extend_schema(
        summary="Create a template",
        description="An email needs `subject` and `html`, a web push `title` and `body`. "
        "Liquid that does not parse, or fails on a sample contact, is a 400 naming the field "
        "(and its line), so a template can never fail at send time.",
        request=TemplateInputSerializer,
        responses={201: TemplateOutputSerializer},
    )
    def post(self, request: Request) -> Response:
        payload = TemplateInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        template = services.template_save(tenant=self.tenant, **payload.validated_data)
        return Response(TemplateOutputSerializer(template).data, status=status.HTTP_201_CREATED)


class TemplateDetailAPI(TenantAPIView):
    @extend_schema(
        summary="A template", parameters=[TEMPLATE_ID], responses=TemplateOutputSerializer
    )
    def get(self, request: Request, public_id: str) -> Response:
        template = selectors.template_get(tenant=self.tenant, public_id=public_id)
        return Response(TemplateOutputSerializer(template).data)

    @extend_schema(
        summary="Change a template",
        description="Any of the fields, checked as on creation. Messages already decided keep "
        "the content they were decided with.",
        parameters=[TEMPLATE_ID],
        request=TemplateInputSerializer,
        responses=TemplateOutputSerializer,
    )
    def patch(self, request: Request, public_id: str) -> Response:
        template = selectors.template_get(tenant=self.tenant, public_id=public_id)
        payload = TemplateInputSerializer(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        template = services.template_save(
            tenant=self.tenant, template=template, **payload.validated_data
        )
        return Response(TemplateOutputSerializer(template).data)

    @extend_schema(
        summary="Delete a template that no campaign or journey uses",
        description="409 `in_use`, naming the campaigns and journeys that use it, otherwise.",
        parameters=[TEMPLATE_ID],
        responses={204: None, 409: API_ERROR},
    )
    def delete(self, request: Request, public_id: str) -> Response:
        template = selectors.template_get(tenant=self.tenant, public_id=public_id)
        try:
            services.template_delete(tenant=self.tenant, template=template)
        except services.TemplateInUse as exc:
            raise TemplateInUse(str(exc)) from None
        return Response(status=status.HTTP_204_NO_CONTENT)


class SenderIdentityAPI(TenantAPIView):
    @extend_schema(
        summary="Who the team's messages come from, and its web push public key",
        responses=SenderIdentityOutputSerializer,
    )
    def get(self, request: Request) -> Response:
        identity = selectors.sender_identity_get(tenant=self.tenant)
        return Response(SenderIdentityOutputSerializer(identity).data)
