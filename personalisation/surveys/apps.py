from __future__ import annotations

from django.apps import AppConfig


class SurveysConfig(AppConfig):
    name = "personalisation.surveys"
    label = "surveys"
    verbose_name = "Surveys"

    def ready(self) -> None:
        from audience.registry import demo_survey_finder_register
        from messaging.registry import context_extender_register
        from personalisation.surveys import receivers  # noqa: F401  (connects them)
        from personalisation.surveys.liquid import context_extend
        from personalisation.surveys.selectors import demo_survey_id

        # {{ surveys.<key>.url }} in messages (personalisation/surveys/liquid.py).
        context_extender_register(context_extend)
        # The demo shop's home page embeds the newest NPS survey.
        demo_survey_finder_register(demo_survey_id)
