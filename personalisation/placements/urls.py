"""Onsite placements: UI, mounted under /t/<tenant_slug>/personalisation/placements/."""

from __future__ import annotations

from django.urls import path

from personalisation.placements import views

PLACEMENT = "<uuid:placement_id>"
VARIANT = f"{PLACEMENT}/variants/<uuid:variant_id>"

urlpatterns = [
    path("", views.placement_list, name="placement_list"),
    path("new/", views.placement_create, name="placement_create"),
    path(f"{PLACEMENT}/", views.placement_detail, name="placement_detail"),
    path(f"{PLACEMENT}/edit/", views.placement_edit, name="placement_edit"),
    path(f"{PLACEMENT}/variants/new/", views.variant_create, name="variant_create"),
    path(f"{PLACEMENT}/variants/preview/", views.variant_preview, name="variant_preview"),
    path(f"{VARIANT}/edit/", views.variant_edit, name="variant_edit"),
    path(f"{VARIANT}/move/", views.variant_move, name="variant_move"),
    path(f"{VARIANT}/toggle/", views.variant_toggle, name="variant_toggle"),
]
