"""Surveys: REST API (secret key), mounted under /api/v1/."""

from __future__ import annotations

from django.urls import path

from personalisation.surveys import api

urlpatterns = [
    path("surveys/", api.SurveyListAPI.as_view(), name="api_survey_list"),
    path("surveys/<str:public_id>/", api.SurveyDetailAPI.as_view(), name="api_survey_detail"),
    path(
        "surveys/<str:public_id>/answers/",
        api.SurveyAnswerListAPI.as_view(),
        name="api_survey_answer_list",
    ),
]
