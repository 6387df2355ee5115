"""Journeys UI, mounted by config/urls.py under /t/<tenant_slug>/ (TenantMiddleware resolves
it). The editor is `journey_editor`; every other URL under a journey is one of its parts or
changes (see journeys/views.py)."""

from __future__ import annotations

from django.urls import path

from journeys import views

J = "journeys/<uuid:journey_id>/"
N = J + "steps/<str:node_key>/"

urlpatterns = [
    path("journeys/", views.journey_list, name="journey_list"),
    path("journeys/new/", views.journey_new, name="journey_new"),
    path("journeys/presets/", views.journey_presets, name="journey_presets"),
    path(J, views.journey_editor, name="journey_editor"),
    path(J + "canvas/", views.journey_canvas, name="journey_canvas"),
    path(J + "counts/", views.journey_counts, name="journey_counts"),
    path(J + "steps/", views.journey_node_add, name="journey_node_add"),
    path(N, views.journey_node, name="journey_node"),
    path(N + "move/", views.journey_node_move, name="journey_node_move"),
    path(N + "connect/", views.journey_node_connect, name="journey_node_connect"),
    path(N + "delete/", views.journey_node_delete, name="journey_node_delete"),
    path(N + "people/", views.journey_node_people, name="journey_node_people"),
    path(J + "retry/", views.journey_retry, name="journey_retry"),
    path(J + "rename/", views.journey_rename, name="journey_rename"),
    path(J + "settings/", views.journey_settings, name="journey_settings"),
    path(J + "publish/", views.journey_publish, name="journey_publish"),
    path(J + "pause/", views.journey_pause, name="journey_pause"),
    path(J + "resume/", views.journey_resume, name="journey_resume"),
    path(J + "archive/", views.journey_archive, name="journey_archive"),
    path(J + "test-run/", views.journey_test_run, name="journey_test_run"),
    path(J + "test-run/send/", views.journey_test_send, name="journey_test_send"),
]
