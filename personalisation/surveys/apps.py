from __future__ import annotations

from django.apps import AppConfig


class SurveysConfig(AppConfig):
    name = "personalisation.surveys"
    label = "surveys"
    verbose_name = "Surveys"

    def ready(self) -> None:
        from messaging.registry import context_extender_register
        from personalisation.surveys.liquid import context_extend

        # {{ surveys.<key>.url }} in messages (personalisation/surveys/liquid.py).
        context_extender_register(context_extend)
