"""Onsite placements: REST API (secret key), mounted under /api/v1/."""

from __future__ import annotations

from django.urls import path

from personalisation.placements import api

PLACEMENT = "placements/<str:public_id>"

urlpatterns = [
    path("placements/", api.PlacementListAPI.as_view(), name="api_placement_list"),
    path(f"{PLACEMENT}/", api.PlacementDetailAPI.as_view(), name="api_placement_detail"),
    path(f"{PLACEMENT}/variants/", api.VariantListAPI.as_view(), name="api_variant_list"),
    path(
        f"{PLACEMENT}/variants/<str:variant_id>/",
        api.VariantDetailAPI.as_view(),
        name="api_variant_detail",
    ),
]
