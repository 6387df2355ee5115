"""Personalisation's browser endpoints (write key, CORS, the tracker's), mounted under /v1/."""

from __future__ import annotations

from django.urls import include, path

urlpatterns = [
    path("", include("personalisation.recommendations.urls_ingest")),
    path("", include("personalisation.search.urls_ingest")),
    path("", include("personalisation.placements.urls_ingest")),
    path("", include("personalisation.surveys.urls_ingest")),
]
