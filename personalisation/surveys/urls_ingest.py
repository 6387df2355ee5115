"""Surveys: Browser endpoints (write key, CORS), mounted under /v1/."""

from __future__ import annotations

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
