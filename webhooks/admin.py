"""Operators' view of outbound webhooks (scoped to the teams they manage): endpoints, which they
may disable or enable, and the message log, read-only."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from tenants.admin import TenantScopedAdmin, operator_rank
from tenants.models import ROLE_RANK, Role
from webhooks import services
from webhooks.models import WebhookEndpoint, WebhookMessage


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(TenantScopedAdmin):
    list_display = ("url", "tenant", "enabled", "created_at")
    list_filter = ("enabled",)
    search_fields = ("url", "description")
    # The secret is the team's, not the operator's: never shown. Everything else is the team's
    # to change (settings page or API, whose services check the URL against the guard).
    readonly_fields = (
        "tenant",
        "public_id",
        "url",
        "description",
        "event_types",
        "created_at",
        "updated_at",
    )
    fields = (*readonly_fields, "enabled")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Disabling a team's endpoint is an admin's decision in that team, as on its pages.
        if obj is not None and operator_rank(request, obj.tenant_id) < ROLE_RANK[Role.ADMIN]:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the team deletes its endpoints (settings page or API)

    def save_model(
        self, request: HttpRequest, obj: WebhookEndpoint, form: Any, change: bool
    ) -> None:
        services.endpoint_update(endpoint=obj, enabled=obj.enabled)


@admin.register(WebhookMessage)
class WebhookMessageAdmin(TenantScopedAdmin):
    list_display = (
        "public_id",
        "type",
        "tenant",
        "status",
        "attempts",
        "last_response_code",
        "created_at",
    )
    list_filter = ("status", "type")
    readonly_fields = (
        "tenant",
        "endpoint",
        "public_id",
        "type",
        "payload",
        "idempotency_key",
        "status",
        "attempts",
        "next_attempt_at",
        "last_attempt_at",
        "last_response_code",
        "last_error",
        "succeeded_at",
        "created_at",
    )
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
