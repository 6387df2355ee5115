"""See analytics/urls.py: the journey map, journey funnels and campaign results
(analytics/map_views.py)."""

from __future__ import annotations

from django.urls import path

from analytics import map_views

urlpatterns = [
    path("analytics/journey-map/", map_views.journey_map, name="journey_map"),
    path("analytics/journeys/", map_views.journey_funnel_list, name="journey_funnel_list"),
    path(
        "analytics/journeys/<uuid:journey_id>/",
        map_views.journey_funnel,
        name="journey_funnel",
    ),
    path("analytics/campaigns/", map_views.campaign_results_list, name="campaign_results_list"),
]
