"""Personas: REST API (secret key), mounted under /api/v1/."""

from __future__ import annotations

from django.urls import path

from personalisation.personas import api

RUN = "personas/runs/<str:public_id>"

urlpatterns = [
    path("personas/runs/", api.PersonaRunListAPI.as_view(), name="api_persona_run_list"),
    path(f"{RUN}/", api.PersonaRunDetailAPI.as_view(), name="api_persona_run_detail"),
    path(
        f"{RUN}/personas/<int:index>/segment/",
        api.PersonaSegmentAPI.as_view(),
        name="api_persona_segment",
    ),
]
