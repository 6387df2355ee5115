"""Personalisation's REST API (secret key), mounted under /api/v1/."""

from __future__ import annotations

from django.urls import include, path

urlpatterns = [
    path("", include("personalisation.recommendations.api_urls")),
    path("", include("personalisation.search.api_urls")),
    path("", include("personalisation.placements.api_urls")),
    path("", include("personalisation.surveys.api_urls")),
    path("", include("personalisation.personas.api_urls")),
]
