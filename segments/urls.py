"""Segments UI, mounted by config/urls.py under /t/<tenant_slug>/ (TenantMiddleware resolves
it); URL names are global like the audience app's (e.g. "segments", "segment_detail")."""

from __future__ import annotations

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
