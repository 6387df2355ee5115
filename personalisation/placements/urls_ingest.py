"""Onsite placements: Browser endpoints (write key, CORS), mounted under /v1/."""

from __future__ import annotations

from django.urls import path

from personalisation.placements import edge

urlpatterns = [
    path("placements", edge.placements_serve, name="placements_serve"),
]
