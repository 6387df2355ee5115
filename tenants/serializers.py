from __future__ import annotations

from rest_framework import serializers

from tenants.models import Tenant


class TenantOutputSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)

    class Meta:
        model = Tenant
        fields = [
            "id",
            "name",
            "slug",
            "timezone",
            "created_at",
        ]
        read_only_fields = fields
