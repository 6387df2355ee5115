from __future__ import annotations

import calendar
from typing import Any

from rest_framework import serializers

from audience.models import Consent, Contact, Event, Product
from tenants.models import validate_timezone


class EventOutputSerializer(serializers.ModelSerializer):
    contact = serializers.UUIDField(source="contact.public_id", read_only=True)

    class Meta:
        model = Event
        fields = [
            "id",
            "contact",
            "type",
            "name",
            "properties",
            "context",
            "occurred_at",
            "received_at",
            "message_id",
            "source",
        ]
        read_only_fields = fields


class ContactOutputSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    anonymous_ids = serializers.SerializerMethodField()

    class Meta:
        model = Contact
        fields = [
            "id",
            "user_id",
            "anonymous_ids",
            "email",
            "phone",
            "first_name",
            "last_name",
            "timezone",
            "locale",
            "birthday_month",
            "birthday_day",
            "birth_year",
            "attributes",
            "email_consent",
            "email_consent_at",
            "email_consent_source",
            "push_consent",
            "push_consent_at",
            "push_consent_source",
            "lifecycle_stage",
            "cart",
            "wishlist",
            "recently_viewed",
            "created_at",
            "last_seen_at",
        ]
        read_only_fields = fields

    def get_anonymous_ids(self, contact: Contact) -> list[str]:
        # Prefetched by the views as `identities`.
        return [i.value for i in contact.identities.all() if i.kind == "anonymous_id"]


class ContactDetailOutputSerializer(ContactOutputSerializer):
    recent_events = serializers.SerializerMethodField()

    class Meta(ContactOutputSerializer.Meta):
        fields = [*ContactOutputSerializer.Meta.fields, "recent_events"]
        read_only_fields = fields

    def get_recent_events(self, contact: Contact) -> list[dict[str, Any]]:
        events = self.context["recent_events"]
        return [
            {k: v for k, v in row.items() if k != "contact"}
            for row in EventOutputSerializer(events, many=True).data
        ]


class ContactUpsertInputSerializer(serializers.Serializer):
    user_id = serializers.CharField(max_length=255, required=False, allow_blank=True)
    email = serializers.EmailField(required=False, allow_blank=True)
    phone = serializers.CharField(max_length=40, required=False, allow_blank=True)
    first_name = serializers.CharField(max_length=120, required=False, allow_blank=True)
    last_name = serializers.CharField(max_length=120, required=False, allow_blank=True)
    timezone = serializers.CharField(
        max_length=64, required=False, allow_blank=True, validators=[validate_timezone]
    )
    locale = serializers.CharField(max_length=35, required=False, allow_blank=True)
    birthday_month = serializers.IntegerField(
        min_value=1, max_value=12, required=False, allow_null=True
    )
    birthday_day = serializers.IntegerField(
        min_value=1, max_value=31, required=False, allow_null=True
    )
    birth_year = serializers.IntegerField(
        min_value=1900, max_value=2100, required=False, allow_null=True
    )
    attributes = serializers.DictField(required=False)
    # Computed from behaviour by the team's rules (docs/lifecycle.md): refused with a reason,
    # rather than ignored, so a client that used to set it learns why it no longer sticks.
    lifecycle_stage = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="Not settable: the stage is computed from behaviour by the team's rules"
        " (docs/lifecycle.md). Sending it answers 400.",
    )
    email_consent = serializers.ChoiceField(choices=Consent.choices, required=False)
    push_consent = serializers.ChoiceField(choices=Consent.choices, required=False)

    def validate_lifecycle_stage(self, value: str) -> str:
        raise serializers.ValidationError(
            "The lifecycle stage is computed from the contact's behaviour by the team's stage"
            " rules (Settings → Lifecycle stages); it cannot be set."
        )

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        if not data.get("user_id") and not data.get("email"):
            raise serializers.ValidationError(
                {"user_id": "Give a user_id or an email to find or create the contact."}
            )
        month, day = data.get("birthday_month"), data.get("birthday_day")
        if (month is None) != (day is None) and (
            "birthday_month" in data or "birthday_day" in data
        ):
            raise serializers.ValidationError(
                {"birthday_day": "Give birthday_month and birthday_day together."}
            )
        # 2000 is a leap year, so 29 February is a valid birthday.
        if month and day and day > calendar.monthrange(2000, month)[1]:
            raise serializers.ValidationError({"birthday_day": f"Month {month} has no day {day}."})
        return data


class ProductSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    price = serializers.DecimalField(
        max_digits=12, decimal_places=2, required=False, allow_null=True, min_value=0
    )

    class Meta:
        model = Product
        fields = [
            "id",
            "sku",
            "name",
            "url",
            "image_url",
            "price",
            "currency",
            "in_stock",
            "category",
            "updated_at",
        ]
        read_only_fields = ["id", "updated_at"]
        # Uniqueness of sku is the upsert's business, not an error.
        validators: list[object] = []
        extra_kwargs: dict[str, dict[str, Any]] = {"sku": {"validators": []}}

    def validate_currency(self, value: str) -> str:
        if len(value) != 3 or not value.isalpha():
            raise serializers.ValidationError("Use a three-letter ISO 4217 code such as EUR.")
        return value.upper()


class ProductBulkInputSerializer(serializers.Serializer):
    # many=True makes a ListSerializer, which takes max_length (the stubs type the child's).
    products = ProductSerializer(many=True, allow_empty=False, max_length=1000)  # type: ignore[call-arg]

    def validate_products(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        seen: set[str] = set()
        for index, item in enumerate(items):
            if item["sku"] in seen:
                raise serializers.ValidationError(
                    f"sku “{item['sku']}” appears twice (item {index})."
                )
            seen.add(item["sku"])
        return items
