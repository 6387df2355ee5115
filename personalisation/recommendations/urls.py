"""Recommendations: UI, mounted under /t/<tenant_slug>/personalisation/recommendations/."""

from __future__ import annotations

from django.urls import URLPattern, path

from personalisation.recommendations import views

urlpatterns: list[URLPattern] = [
    path("", views.recommendation_report, name="recommendation_report"),
]
