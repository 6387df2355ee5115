"""Surveys' hosted pages (no sign-in: a signed link from a message), mounted under /s/."""

from __future__ import annotations

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
