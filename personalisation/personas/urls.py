"""Personas: UI, mounted under /t/<tenant_slug>/personalisation/personas/."""

from __future__ import annotations

from django.urls import path

from personalisation.personas import views

RUN = "<uuid:run_id>"

urlpatterns = [
    path("", views.persona_list, name="persona_list"),
    path("run/", views.persona_run_create, name="persona_run_create"),
    path(f"{RUN}/", views.persona_run_detail, name="persona_run_detail"),
    path(f"{RUN}/<int:index>/save/", views.persona_save, name="persona_save"),
]
