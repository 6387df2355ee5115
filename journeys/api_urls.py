"""Journeys REST API, mounted by config/urls.py under /api/v1/."""

from __future__ import annotations

from django.urls import path

from journeys import api

ENROLLMENT = "journeys/<str:public_id>/enrollments/<str:enrollment_id>"

urlpatterns = [
    path("journeys/", api.JourneyListAPI.as_view(), name="api_journey_list"),
    # Fixed words before <public_id>, which would otherwise take them.
    path("journeys/presets/", api.PresetListAPI.as_view(), name="api_journey_preset_list"),
    path(
        "journeys/presets/<str:key>/",
        api.PresetCreateAPI.as_view(),
        name="api_journey_preset_create",
    ),
    path("journeys/<str:public_id>/", api.JourneyDetailAPI.as_view(), name="api_journey_detail"),
    path(
        "journeys/<str:public_id>/graph/", api.JourneyGraphAPI.as_view(), name="api_journey_graph"
    ),
    path(
        "journeys/<str:public_id>/publish/",
        api.JourneyPublishAPI.as_view(),
        name="api_journey_publish",
    ),
    path(
        "journeys/<str:public_id>/pause/", api.JourneyPauseAPI.as_view(), name="api_journey_pause"
    ),
    path(
        "journeys/<str:public_id>/resume/",
        api.JourneyResumeAPI.as_view(),
        name="api_journey_resume",
    ),
    path(
        "journeys/<str:public_id>/archive/",
        api.JourneyArchiveAPI.as_view(),
        name="api_journey_archive",
    ),
    path(
        "journeys/<str:public_id>/stats/", api.JourneyStatsAPI.as_view(), name="api_journey_stats"
    ),
    path(
        "journeys/<str:public_id>/enrollments/",
        api.JourneyEnrollmentsAPI.as_view(),
        name="api_journey_enrollments",
    ),
    path(
        f"{ENROLLMENT}/retry/",
        api.EnrollmentRetryAPI.as_view(),
        name="api_journey_enrollment_retry",
    ),
    path(
        "journeys/<str:public_id>/enroll/",
        api.JourneyEnrollAPI.as_view(),
        name="api_journey_enroll",
    ),
]
