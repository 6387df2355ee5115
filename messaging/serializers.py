"""REST input and output of messaging: transactional sends and their deliveries, templates, and
the tenant's sender identity."""

from __future__ import annotations

from typing import Any

import orjson
from rest_framework import serializers

from core.body import has_nul
from messaging.models import TEMPLATE_FIELDS, Category, Delivery, SenderIdentity, Template

MAX_DATA_BYTES = 32 * 1024  # the Liquid data of one message, like Segment's message limit


class ContactRefSerializer(serializers.Serializer):
    """Who the message is for: exactly one of the contact's id, user id or email."""

    id = serializers.UUIDField(required=False)
    user_id = serializers.CharField(required=False, max_length=255)
    email = serializers.EmailField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if len(attrs) != 1:
            raise serializers.ValidationError("Give exactly one of id, user_id or email.")
        return attrs


class MessageInputSerializer(serializers.Serializer):
    template = serializers.UUIDField(help_text="The template's id.")
    contact = ContactRefSerializer()
    # DRF's metaclass takes declared fields off the class: `.data` stays the serializer's own.
    data = serializers.DictField(  # type: ignore[assignment]
        required=False, default=dict, help_text="Extra Liquid data, as `{{ data.… }}`."
    )
    category = serializers.ChoiceField(
        choices=Category.choices,
        default=Category.TRANSACTIONAL,
        help_text="transactional (receipts, resets) skips consent, the frequency cap and quiet "
        "hours; marketing honours them.",
    )

    def validate_data(self, value: dict[str, Any]) -> dict[str, Any]:
        try:
            encoded = orjson.dumps(value, default=str)
        except orjson.JSONEncodeError:
            raise serializers.ValidationError(
                "Numbers must fit in 64 bits and nesting be less than 255 deep."
            ) from None
        if b"\\u0000" in encoded and has_nul(value):
            raise serializers.ValidationError("Text must not contain NUL characters (\\u0000).")
        if len(encoded) > MAX_DATA_BYTES:
            raise serializers.ValidationError(f"At most {MAX_DATA_BYTES // 1024} KB of data.")
        return value


class TemplateRefSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)

    class Meta:
        model = Template
        fields = ["id", "name", "channel"]
        read_only_fields = fields


class DeliveryOutputSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    contact = serializers.SerializerMethodField()
    template = serializers.SerializerMethodField()

    class Meta:
        model = Delivery
        fields = [
            "id",
            "status",
            "reason",
            "channel",
            "category",
            "contact",
            "template",
            "source",
            "idempotency_key",
            "attempts",
            "last_error",
            "not_before",
            "created_at",
            "sent_at",
        ]
        read_only_fields = fields

    def get_contact(self, delivery: Delivery) -> dict[str, Any]:
        return {"id": str(delivery.contact.public_id), "email": delivery.contact.email}

    def get_template(self, delivery: Delivery) -> dict[str, Any]:
        return {"id": delivery.content.get("template"), "name": delivery.content.get("name")}


class TemplateOutputSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)

    class Meta:
        model = Template
        fields = ["id", *TEMPLATE_FIELDS, "created_at", "updated_at"]
        read_only_fields = fields


class TemplateListOutputSerializer(serializers.Serializer):
    results = TemplateOutputSerializer(many=True)


class PushActionSerializer(serializers.Serializer):
    """A button under a web push (browsers show at most two)."""

    action = serializers.CharField(max_length=40, required=False, help_text="Its name, any.")
    title = serializers.CharField(max_length=100)
    url = serializers.CharField(max_length=1000, help_text="Opened on click (Liquid allowed).")


class TemplateInputSerializer(serializers.ModelSerializer):
    """A template's fields. The channel's required fields, a taken name and Liquid that does
    not parse or fails on a sample contact are messaging.services.template_save's to refuse,
    each a 400 naming its field."""

    actions = PushActionSerializer(  # type: ignore[call-arg]  # DRF's, not in the stubs
        many=True, required=False, max_length=2
    )

    class Meta:
        model = Template
        fields = list(TEMPLATE_FIELDS)

    def get_unique_together_validators(self) -> list[Any]:
        return []  # a taken name is template_save's to refuse, by field


class SenderIdentityOutputSerializer(serializers.ModelSerializer):
    """Who the tenant's messages come from; the VAPID public key for subscribing browsers (the
    private key never leaves the server)."""

    class Meta:
        model = SenderIdentity
        fields = [
            "sender_name",
            "sender_email",
            "reply_to_email",
            "from_email",
            # A new From address waiting for someone at it to follow the link emailed to it.
            "pending_sender_email",
            "vapid_public_key",
        ]
        read_only_fields = fields
