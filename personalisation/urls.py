"""Personalisation's UI, mounted under /t/<tenant_slug>/personalisation/."""

from __future__ import annotations

from django.urls import include, path

urlpatterns = [
    path("recommendations/", include("personalisation.recommendations.urls")),
    path("search/", include("personalisation.search.urls")),
    path("placements/", include("personalisation.placements.urls")),
    path("surveys/", include("personalisation.surveys.urls")),
    path("personas/", include("personalisation.personas.urls")),
]
