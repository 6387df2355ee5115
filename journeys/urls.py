"""Journeys UI, mounted by config/urls.py under /t/<tenant_slug>/."""

from __future__ import annotations

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
