"""Surveys: Browser endpoints (write key, CORS), mounted under /v1/."""

from __future__ import annotations

from django.urls import path

from personalisation.surveys import ingest_views

urlpatterns = [
    path("surveys/<str:survey_id>", ingest_views.survey_read, name="survey_read"),
    path("surveys/<str:survey_id>/answers", ingest_views.survey_answer, name="survey_answer"),
]
