"""Campaigns REST API, mounted by config/urls.py under /api/v1/."""

from __future__ import annotations

from django.urls import path

from campaigns import api

CAMPAIGN = "campaigns/<str:public_id>"

urlpatterns = [
    path("campaigns/", api.CampaignListAPI.as_view(), name="api_campaign_list"),
    # Fixed words before <public_id>, which would otherwise take them.
    path(
        "campaigns/audience/",
        api.CampaignAudienceEstimateAPI.as_view(),
        name="api_campaign_audience_estimate",
    ),
    path(f"{CAMPAIGN}/", api.CampaignDetailAPI.as_view(), name="api_campaign_detail"),
    path(f"{CAMPAIGN}/schedule/", api.CampaignScheduleAPI.as_view(), name="api_campaign_schedule"),
    path(
        f"{CAMPAIGN}/unschedule/",
        api.CampaignUnscheduleAPI.as_view(),
        name="api_campaign_unschedule",
    ),
    path(f"{CAMPAIGN}/pause/", api.CampaignPauseAPI.as_view(), name="api_campaign_pause"),
    path(f"{CAMPAIGN}/resume/", api.CampaignResumeAPI.as_view(), name="api_campaign_resume"),
    path(f"{CAMPAIGN}/cancel/", api.CampaignCancelAPI.as_view(), name="api_campaign_cancel"),
    path(
        f"{CAMPAIGN}/duplicate/",
        api.CampaignDuplicateAPI.as_view(),
        name="api_campaign_duplicate",
    ),
    path(f"{CAMPAIGN}/audience/", api.CampaignAudienceAPI.as_view(), name="api_campaign_audience"),
    path(
        f"{CAMPAIGN}/occurrences/",
        api.CampaignOccurrencesAPI.as_view(),
        name="api_campaign_occurrences",
    ),
    path(f"{CAMPAIGN}/stats/", api.CampaignStatsAPI.as_view(), name="api_campaign_stats"),
]
