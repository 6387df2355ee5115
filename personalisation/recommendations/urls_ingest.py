"""Recommendations: Browser endpoints (write key, CORS), mounted under /v1/."""

from __future__ import annotations

from django.urls import URLPattern, path

from personalisation.recommendations import edge_views

urlpatterns: list[URLPattern] = [
    path("recommendations", edge_views.recommendations_edge, name="recommendations_edge"),
]
