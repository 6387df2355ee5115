"""Operators' view of onsite placements (scoped to the teams they manage): placements and their
variants, read-only except a variant's `active` flag, so that an operator can take down a
variant that should not be shown (a marketer's decision in that team, as on its pages)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from personalisation.placements import services
from personalisation.placements.models import Placement, PlacementVariant
from tenants.admin import TenantScopedAdmin, operator_rank
from tenants.models import ROLE_RANK, Role


@admin.register(Placement)
class PlacementAdmin(TenantScopedAdmin):
    list_display = ("key", "name", "tenant", "created_at")
    search_fields = ("key", "name")
    readonly_fields = ("tenant", "public_id", "key", "name", "description", "created_at")
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the team deletes its placements (API)


@admin.register(PlacementVariant)
class PlacementVariantAdmin(TenantScopedAdmin):
    list_display = ("name", "placement", "tenant", "position", "active")
    list_filter = ("active",)
    search_fields = ("name", "title", "placement__key")
    list_select_related = ("placement", "tenant")
    readonly_fields = (
        "tenant",
        "placement",
        "public_id",
        "name",
        "title",
        "body",
        "image_url",
        "link_url",
        "link_text",
        "segment",
        "lifecycle_stage",
        "position",
        "created_at",
        "updated_at",
    )
    fields = (*readonly_fields, "active")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and operator_rank(request, obj.tenant_id) < ROLE_RANK[Role.MARKETER]:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(
        self, request: HttpRequest, obj: PlacementVariant, form: Any, change: bool
    ) -> None:
        services.variant_update(tenant=obj.tenant, variant=obj, active=obj.active)
