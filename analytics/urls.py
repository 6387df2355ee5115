"""Analytics UI, mounted under /t/<tenant_slug>/: the dashboard (the team's home page) and its
dashboards, the journey map, journey funnels and campaign results."""

from __future__ import annotations

from django.urls import include, path

urlpatterns = [
    path("", include("analytics.urls_dashboard")),
    path("", include("analytics.urls_map")),
]
