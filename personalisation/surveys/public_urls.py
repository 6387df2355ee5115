"""Surveys' hosted pages (no sign-in: a signed link from a message), mounted under /s/."""

from __future__ import annotations

from django.urls import path

from personalisation.surveys import public_views

urlpatterns = [
    path("<str:token>/", public_views.survey_page, name="survey_page"),
]
