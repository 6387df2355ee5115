"""Operators' view of persona runs (scoped to the teams they manage), read-only: a run is the
team's own record of what the clustering found."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from personalisation.personas.models import PersonaRun
from tenants.admin import TenantScopedAdmin


@admin.register(PersonaRun)
class PersonaRunAdmin(TenantScopedAdmin):
    list_display = ("public_id", "tenant", "status", "k", "contacts_total", "created_at")
    list_filter = ("status",)
    exclude = ("members",)  # up to 50,000 contact ids: not a thing to read in a form
    readonly_fields = (
        "tenant",
        "public_id",
        "status",
        "requested_by",
        "requested_k",
        "k",
        "contacts_total",
        "sample_size",
        "silhouette",
        "clusters",
        "message",
        "created_at",
        "started_at",
        "finished_at",
        "seconds",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
