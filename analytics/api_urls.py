"""Analytics REST API, mounted under /api/v1/."""

from __future__ import annotations

from django.urls import path

from analytics import api

urlpatterns = [
    path("analytics/metrics/", api.MetricsAPI.as_view(), name="api_metrics"),
    path("analytics/stages/", api.StagesAPI.as_view(), name="api_stages"),
]
