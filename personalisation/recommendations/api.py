"""GET /api/v1/recommendations/: the servers' door (secret key), the browser endpoint's answer
for a contact named by its id, user id or anonymous id (docs/personalisation/recommendations.md).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from audience.models import MAX_ID_LENGTH, Contact
from audience.selectors import contact_for_visitor, contact_get
from audience.services import visitor_settle
from core.openapi import API_ERROR
from personalisation.recommendations import services
from tenants.api import TenantAPIView


class RecommendationQuerySerializer(serializers.Serializer):
    strategy = serializers.ChoiceField(
        choices=services.STRATEGY_CHOICES,
        default=services.RECOMMENDATION_AUTO,
        help_text="auto blends back_in_stock, bought_together, similar and trending.",
    )
    placement = serializers.RegexField(
        services.PLACEMENT_PATTERN,
        default=services.DEFAULT_PLACEMENT,
        max_length=100,
        help_text="Where the products are shown (e.g. product-page), for the report.",
    )
    product = serializers.CharField(
        required=False, max_length=100, help_text="The sku the page shows; `similar` needs it."
    )
    limit = serializers.IntegerField(
        min_value=1, max_value=services.MAX_LIMIT, default=services.DEFAULT_LIMIT
    )
    contact = serializers.UUIDField(required=False, help_text="The contact's id.")
    user_id = serializers.CharField(required=False, max_length=MAX_ID_LENGTH)
    anonymous_id = serializers.CharField(required=False, max_length=MAX_ID_LENGTH)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not (attrs.get("contact") or attrs.get("user_id") or attrs.get("anonymous_id")):
            raise serializers.ValidationError(
                {"contact": "Name the visitor: contact, user_id or anonymous_id."}
            )
        if attrs["strategy"] in services.NEEDS_PRODUCT and not attrs.get("product"):
            raise serializers.ValidationError(
                {"product": f"The {attrs['strategy']} strategy needs a product (its sku)."}
            )
        return attrs


class RecommendationProductSerializer(serializers.Serializer):
    sku = serializers.CharField()
    name = serializers.CharField()
    url = serializers.CharField()
    imageUrl = serializers.CharField()
    price = serializers.FloatField(allow_null=True)
    currency = serializers.CharField()
    category = serializers.CharField()
    inStock = serializers.BooleanField()


class RecommendationOutputSerializer(serializers.Serializer):
    recommendationId = serializers.UUIDField(
        help_text="Send it back with the `Recommendation Clicked` event of a click."
    )
    strategy = serializers.CharField()
    placement = serializers.CharField()
    products = RecommendationProductSerializer(many=True)


class RecommendationsAPI(TenantAPIView):
    @extend_schema(
        summary="Recommend products to a contact",
        description="Products by strategy for the contact named by `contact`, `user_id` or "
        "`anonymous_id` (an id not seen yet gets the answers of a new visitor), never one out of "
        "stock or bought. Each answer is recorded as the contact's `Recommendation Served` "
        "event; a click on one is their `Recommendation Clicked` (docs/personalisation/"
        "recommendations.md).",
        parameters=[RecommendationQuerySerializer],
        responses={200: RecommendationOutputSerializer, 404: API_ERROR},
    )
    def get(self, request: Request) -> Response:
        query = RecommendationQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        q = query.validated_data
        user_id, anonymous_id = q.get("user_id") or None, q.get("anonymous_id") or None
        contact: Contact | None
        if q.get("contact"):
            contact = contact_get(tenant=self.tenant, public_id=q["contact"])
            user_id = anonymous_id = None  # recorded on the contact itself
        else:
            visitor_settle(tenant=self.tenant, user_id=user_id, anonymous_id=anonymous_id)
            contact = contact_for_visitor(
                tenant=self.tenant, user_id=user_id, anonymous_id=anonymous_id
            )
        served = services.recommendation_serve(
            tenant=self.tenant,
            strategy=q["strategy"],
            placement=q["placement"],
            limit=q["limit"],
            product=q.get("product") or None,
            contact=contact,
            user_id=user_id,
            anonymous_id=anonymous_id,
        )
        return Response(served.as_json(), headers={"Cache-Control": "no-store"})
