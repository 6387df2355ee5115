"""Segments REST API under /api/v1/. The contact's segments live here, not in audience: audience
never imports segments."""

from __future__ import annotations

from django.urls import path

from segments import api

urlpatterns = [
    path("segments/", api.SegmentListAPI.as_view(), name="api_segment_list"),
    # Fixed words before <public_id>, which would otherwise take them.
    path("segments/count/", api.RulesCountAPI.as_view(), name="api_rules_count"),
    path("segments/presets/", api.PresetListAPI.as_view(), name="api_preset_list"),
    path("segments/presets/<str:key>/", api.PresetAddAPI.as_view(), name="api_preset_add"),
    path("segments/<str:public_id>/", api.SegmentDetailAPI.as_view(), name="api_segment_detail"),
    path(
        "segments/<str:public_id>/members/",
        api.SegmentMembersAPI.as_view(),
        name="api_segment_members",
    ),
    path(
        "contacts/<str:public_id>/segments/",
        api.ContactSegmentsAPI.as_view(),
        name="api_contact_segments",
    ),
]
