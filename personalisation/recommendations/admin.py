"""Operators' read-only view of what recommendations precompute per team (scoped to the teams
they manage): trending products and co-purchase counts. The hourly task rewrites them; nothing
here is edited by hand."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from audience.models import ProductPair, TrendingProduct
from tenants.admin import TenantScopedAdmin


class _ReadOnly(TenantScopedAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(TrendingProduct)
class TrendingProductAdmin(_ReadOnly):
    list_display = ("tenant", "category", "overall", "rank", "sku", "score", "computed_at")
    list_filter = ("overall",)
    search_fields = ("sku", "category")
    ordering = ("tenant", "overall", "category", "rank")


@admin.register(ProductPair)
class ProductPairAdmin(_ReadOnly):
    list_display = ("tenant", "sku", "other_sku", "orders", "computed_at")
    search_fields = ("sku", "other_sku")
    ordering = ("tenant", "sku", "-orders")
