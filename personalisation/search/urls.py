"""Product search: UI, mounted under /t/<tenant_slug>/personalisation/."""

from __future__ import annotations

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
