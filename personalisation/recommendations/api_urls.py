"""Recommendations: REST API (secret key), mounted under /api/v1/."""

from __future__ import annotations

from django.urls import URLPattern, path

from personalisation.recommendations import api

urlpatterns: list[URLPattern] = [
    path("recommendations/", api.RecommendationsAPI.as_view(), name="api_recommendations"),
]
