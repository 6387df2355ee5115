"""REST input and output of outbound webhooks: endpoints and their messages."""

from __future__ import annotations

from rest_framework import serializers

from webhooks.models import EventType, WebhookEndpoint, WebhookMessage


class WebhookEndpointInputSerializer(serializers.Serializer):
    """An endpoint's fields. Whether the URL may be called (https, a public host) is the
    service's to say (a 400 naming `url`)."""

    url = serializers.CharField(
        max_length=2000, help_text="https:// URL that receives the events (POST, JSON)."
    )
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=EventType.choices),
        min_length=1,
        max_length=len(EventType.values),
        help_text="The event types it receives: " + ", ".join(EventType.values) + ".",
    )
    description = serializers.CharField(
        max_length=200, required=False, allow_blank=True, default=""
    )
    enabled = serializers.BooleanField(
        required=False, default=True, help_text="false: nothing is sent to it."
    )


class WebhookEndpointOutputSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    secret_masked = serializers.CharField(
        read_only=True,
        help_text="The last characters of the signing secret; the whole secret is in the "
        "answer to creating the endpoint or rotating its secret, only there.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "url",
            "description",
            "event_types",
            "enabled",
            "secret_masked",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class WebhookEndpointSecretOutputSerializer(WebhookEndpointOutputSerializer):
    secret = serializers.CharField(
        read_only=True,
        help_text="The signing secret (`whsec_…`) for verifying `webhook-signature`: store it "
        "now, it is not shown again.",
    )

    class Meta(WebhookEndpointOutputSerializer.Meta):
        fields = [*WebhookEndpointOutputSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class WebhookMessageOutputSerializer(serializers.ModelSerializer):
    id = serializers.CharField(
        source="webhook_id", read_only=True, help_text="The `webhook-id` header it is sent with."
    )
    response_code = serializers.IntegerField(
        source="last_response_code",
        read_only=True,
        allow_null=True,
        help_text="The HTTP status of the last attempt; null: no answer.",
    )
    error = serializers.CharField(
        source="last_error", read_only=True, help_text="Why the last attempt failed."
    )

    class Meta:
        model = WebhookMessage
        fields = [
            "id",
            "type",
            "status",
            "attempts",
            "next_attempt_at",
            "last_attempt_at",
            "response_code",
            "error",
            "payload",
            "created_at",
        ]
        read_only_fields = fields
