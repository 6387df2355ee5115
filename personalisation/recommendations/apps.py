from __future__ import annotations

from django.apps import AppConfig


class RecommendationsConfig(AppConfig):
    name = "personalisation.recommendations"
    label = "recommendations"
    verbose_name = "Recommendations"
