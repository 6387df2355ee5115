"""Operators' view of surveys (scoped to the teams they manage), read-only: the team changes
its surveys on its pages or through the API, whose service checks them."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from personalisation.surveys.models import Survey, SurveyAnswer
from tenants.admin import TenantScopedAdmin


class _ReadOnly(TenantScopedAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Survey)
class SurveyAdmin(_ReadOnly):
    list_display = ("name", "tenant", "kind", "key", "active", "created_at")
    list_filter = ("kind", "active")
    search_fields = ("name", "key")


@admin.register(SurveyAnswer)
class SurveyAnswerAdmin(_ReadOnly):
    list_display = ("survey", "tenant", "channel", "score", "created_at")
    list_filter = ("channel",)
    raw_id_fields = ("survey", "contact")
