"""Segments REST API under /api/v1/. The contact's segments live here, not in audience: audience
never imports segments."""

from __future__ import annotations

from django.urls import path

from segments import api

urlpatterns = [
    path("segments/", api.SegmentListAPI.as_view(), name="api-segments"),
    # Fixed words before <public_id>, which would otherwise take them.
    path("segments/count/", api.RulesCountAPI.as_view(), name="api-segments-count"),
    path("segments/presets/", api.PresetListAPI.as_view(), name="api-segment-presets"),
    path("segments/presets/<str:key>/", api.PresetAddAPI.as_view(), name="api-segment-preset"),
    path("segments/<str:public_id>/", api.SegmentDetailAPI.as_view(), name="api-segment"),
    path(
        "segments/<str:public_id>/members/",
        api.SegmentMembersAPI.as_view(),
        name="api-segment-members",
    ),
    path(
        "contacts/<str:public_id>/segments/",
        api.ContactSegmentsAPI.as_view(),
        name="api-contact-segments",
    ),
]
