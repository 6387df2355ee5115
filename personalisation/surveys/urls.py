"""Surveys: UI, mounted under /t/<tenant_slug>/personalisation/surveys/."""

from __future__ import annotations

from django.urls import path

from personalisation.surveys import views

SURVEY = "<uuid:survey_id>"

urlpatterns = [
    path("", views.survey_list, name="survey_list"),
    path("new/", views.survey_create, name="survey_create"),
    path(f"{SURVEY}/", views.survey_detail, name="survey_detail"),
    path(f"{SURVEY}/edit/", views.survey_edit, name="survey_edit"),
    path(f"{SURVEY}/delete/", views.survey_delete, name="survey_delete"),
]
