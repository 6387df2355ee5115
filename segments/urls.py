"""Segments UI, mounted by config/urls.py under /t/<tenant_slug>/ (TenantMiddleware resolves
it); URL names: see docs/architecture.md (e.g. "segment_list", "segment_detail")."""

from __future__ import annotations

from django.urls import path

from segments import views

urlpatterns = [
    path("segments/", views.segment_list, name="segment_list"),
    path("segments/new/", views.segment_new, name="segment_new"),
    path("segments/builder/", views.segment_builder, name="segment_builder"),
    path("segments/presets/", views.segment_presets, name="segment_presets"),
    path("segments/<uuid:segment_id>/", views.segment_detail, name="segment_detail"),
    path("segments/<uuid:segment_id>/members.csv", views.segment_export, name="segment_export"),
    path("segments/<uuid:segment_id>/edit/", views.segment_edit, name="segment_edit"),
    path(
        "segments/<uuid:segment_id>/builder/",
        views.segment_builder,
        name="segment_builder_edit",
    ),
    path("segments/<uuid:segment_id>/delete/", views.segment_delete, name="segment_delete"),
]
