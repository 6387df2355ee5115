"""REST API for the audience: contacts, events, products (secret key; see docs/api.md)."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from audience import catalog, selectors, services
from audience.models import Identity, LifecycleStage
from audience.serializers import (
    ContactDetailOutputSerializer,
    ContactOutputSerializer,
    ContactUpsertInputSerializer,
    EventOutputSerializer,
    ProductBulkInputSerializer,
    ProductSerializer,
)
from core.openapi import API_ERROR
from core.pagination import NewestFirstPagination
from core.storable import parse_iso_datetime
from tenants.api import TenantAPIView

RECENT_EVENTS = 20


class EventPagination(NewestFirstPagination):
    ordering = "-occurred_at"


def _with_identities(qs: QuerySet[Any]) -> QuerySet[Any]:
    # tenancy: ok (the identities of contacts that the tenant's own query selected)
    return qs.prefetch_related(Prefetch("identities", queryset=Identity.objects.order_by("pk")))


def _datetime_param(request: Request, name: str) -> Any:
    raw = request.query_params.get(name)
    # An impossible date (2026-02-30) or one outside the window the database reads back is a
    # 400 naming the parameter (core/storable.py), never a 500.
    return parse_iso_datetime(raw, field=name) if raw else None


class ContactListAPI(TenantAPIView):
    pagination_class = NewestFirstPagination

    @extend_schema(
        summary="List contacts, newest first",
        parameters=[
            OpenApiParameter("search", str, description="start of email or name, or a user id"),
            OpenApiParameter("email", str),
            OpenApiParameter("user_id", str),
            OpenApiParameter("lifecycle_stage", str, enum=LifecycleStage.values),
        ],
        responses=ContactOutputSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        stage = request.query_params.get("lifecycle_stage", "")
        if stage and stage not in LifecycleStage.values:
            raise serializers.ValidationError(
                {"lifecycle_stage": f"Use one of {', '.join(LifecycleStage.values)}."}
            )
        qs = selectors.contact_list(
            tenant=self.tenant,
            search=request.query_params.get("search", ""),
            email=request.query_params.get("email", ""),
            user_id=request.query_params.get("user_id", ""),
            lifecycle_stage=stage,
        )
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(_with_identities(qs), request, view=self)
        return paginator.get_paginated_response(ContactOutputSerializer(page, many=True).data)

    @extend_schema(
        summary="Create or update a contact by user_id (or else email)",
        request=ContactUpsertInputSerializer,
        responses={200: ContactOutputSerializer, 201: ContactOutputSerializer},
    )
    def post(self, request: Request) -> Response:
        payload = ContactUpsertInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = dict(payload.validated_data)
        contact, created = services.contact_upsert(
            tenant=self.tenant,
            user_id=data.pop("user_id", ""),
            email=data.get("email", ""),
            fields=data,
            source="api",
        )
        contact = _with_identities(type(contact).objects.filter(pk=contact.pk)).get()
        return Response(
            ContactOutputSerializer(contact).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class ContactDetailAPI(TenantAPIView):
    @extend_schema(
        summary="A contact with its recent events", responses=ContactDetailOutputSerializer
    )
    def get(self, request: Request, public_id: str) -> Response:
        contact = selectors.contact_get(tenant=self.tenant, public_id=public_id)
        contact = _with_identities(type(contact).objects.filter(pk=contact.pk)).get()
        events = selectors.event_list(tenant=self.tenant, contact=contact).order_by("-occurred_at")[
            :RECENT_EVENTS
        ]
        return Response(
            ContactDetailOutputSerializer(contact, context={"recent_events": events}).data
        )

    @extend_schema(
        summary="Erase a contact (GDPR): the profile, its ids, events and messages",
        responses={204: None},
    )
    def delete(self, request: Request, public_id: str) -> Response:
        contact = selectors.contact_get(tenant=self.tenant, public_id=public_id)
        services.contact_erase(tenant=self.tenant, contact=contact)
        return Response(status=status.HTTP_204_NO_CONTENT)


class EventListAPI(TenantAPIView):
    pagination_class = EventPagination

    @extend_schema(
        summary="List events, newest first",
        parameters=[
            OpenApiParameter("contact", OpenApiTypes.UUID, description="a contact's id"),
            OpenApiParameter("name", str),
            OpenApiParameter("since", OpenApiTypes.DATETIME),
            OpenApiParameter("until", OpenApiTypes.DATETIME),
        ],
        responses={200: EventOutputSerializer(many=True), 404: API_ERROR},
    )
    def get(self, request: Request) -> Response:
        contact_id = request.query_params.get("contact")
        contact = (
            selectors.contact_get(tenant=self.tenant, public_id=contact_id) if contact_id else None
        )
        qs = selectors.event_list(
            tenant=self.tenant,
            contact=contact,
            name=request.query_params.get("name", ""),
            since=_datetime_param(request, "since"),
            until=_datetime_param(request, "until"),
        )
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(EventOutputSerializer(page, many=True).data)


class ProductListAPI(TenantAPIView):
    pagination_class = NewestFirstPagination

    @extend_schema(
        summary="List products",
        parameters=[OpenApiParameter("category", str), OpenApiParameter("in_stock", bool)],
        responses=ProductSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        in_stock = request.query_params.get("in_stock")
        if in_stock not in (None, "true", "false"):
            raise serializers.ValidationError({"in_stock": "Use true or false."})
        qs = selectors.product_list(
            tenant=self.tenant,
            category=request.query_params.get("category", ""),
            in_stock=None if in_stock is None else in_stock == "true",
        )
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(ProductSerializer(page, many=True).data)

    @extend_schema(
        summary="Create or update up to 1,000 products by sku",
        description="A lower price or a return to stock records `Product Price Dropped` / "
        "`Product Back in Stock` events on every contact with that product in wishlist or cart.",
        request=ProductBulkInputSerializer,
        responses={200: OpenApiTypes.OBJECT},
    )
    def post(self, request: Request) -> Response:
        payload = ProductBulkInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        change = catalog.products_upsert(
            tenant=self.tenant, items=payload.validated_data["products"]
        )
        return Response(
            {
                "created": change.created,
                "updated": change.updated,
                "unchanged": change.unchanged,
                "price_dropped": [sku for sku, _, _ in change.price_dropped],
                "back_in_stock": change.back_in_stock,
            }
        )
