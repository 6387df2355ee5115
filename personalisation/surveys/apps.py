from __future__ import annotations

from django.apps import AppConfig


class SurveysConfig(AppConfig):
    name = "personalisation.surveys"
    label = "surveys"
    verbose_name = "Surveys"
