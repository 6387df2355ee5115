"""REST input and output of product search (GET /api/v1/search/ and the synonyms)."""

from __future__ import annotations

from rest_framework import serializers

from audience.models import MAX_ID_LENGTH
from personalisation.search.forms import CATEGORY_MAX, LIMIT_DEFAULT, LIMIT_MAX, OFFSET_MAX
from personalisation.search.models import ALTERNATIVES_MAX, QUERY_MAX, TERM_MAX, Synonym


class SearchQuerySerializer(serializers.Serializer):
    q = serializers.CharField(max_length=QUERY_MAX, help_text="What the shopper typed.")
    limit = serializers.IntegerField(
        min_value=1, max_value=LIMIT_MAX, default=LIMIT_DEFAULT, help_text="Products per page."
    )
    offset = serializers.IntegerField(min_value=0, max_value=OFFSET_MAX, default=0)
    category = serializers.CharField(
        max_length=CATEGORY_MAX, required=False, default="", help_text="Only this category."
    )
    contact = serializers.UUIDField(
        required=False, help_text="The contact (its id) to rank for and record the search on."
    )
    user_id = serializers.CharField(max_length=MAX_ID_LENGTH, required=False, default="")
    anonymous_id = serializers.CharField(max_length=MAX_ID_LENGTH, required=False, default="")

    def validate_q(self, value: str) -> str:
        if not any(ch.isalnum() for ch in value):
            raise serializers.ValidationError("Type at least one letter or digit.")
        return value


class ProductOutputSerializer(serializers.Serializer):
    sku = serializers.CharField()
    name = serializers.CharField()
    url = serializers.CharField()
    imageUrl = serializers.CharField()
    price = serializers.FloatField(allow_null=True)
    currency = serializers.CharField()
    category = serializers.CharField()
    inStock = serializers.BooleanField()


class SearchOutputSerializer(serializers.Serializer):
    searchId = serializers.UUIDField(
        help_text="Send it back with `Product Clicked` {search_id, query, sku, position}."
    )
    query = serializers.CharField()
    corrected = serializers.CharField(
        allow_null=True, help_text="The query as the catalog spells it, when a typo was fixed."
    )
    total = serializers.IntegerField(help_text="Products found, over all pages.")
    products = ProductOutputSerializer(many=True)


class SynonymInputSerializer(serializers.Serializer):
    term = serializers.CharField(max_length=TERM_MAX, help_text="What shoppers type.")
    alternatives = serializers.ListField(
        child=serializers.CharField(max_length=TERM_MAX),
        min_length=1,
        max_length=ALTERNATIVES_MAX,
        help_text="What a search for the term also finds.",
    )


class SynonymOutputSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)

    class Meta:
        model = Synonym
        fields = ["id", "term", "alternatives", "created_at", "updated_at"]
        read_only_fields = fields
