"""Operators' view of search: the teams' synonyms and query tallies (read-mostly)."""

from __future__ import annotations

from django.contrib import admin

from personalisation.search.models import SearchQueryDay, Synonym
from tenants.admin import TenantScopedAdmin


@admin.register(Synonym)
class SynonymAdmin(TenantScopedAdmin):
    list_display = ("term", "alternatives", "tenant", "updated_at")
    search_fields = ("term",)


@admin.register(SearchQueryDay)
class SearchQueryDayAdmin(TenantScopedAdmin):
    list_display = ("query", "day", "searches", "zero_results", "tenant")
    list_filter = ("day",)
    search_fields = ("query",)
