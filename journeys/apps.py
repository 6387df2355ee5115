from __future__ import annotations

from django.apps import AppConfig


class JourneysConfig(AppConfig):
    name = "journeys"
    verbose_name = "Journeys"

    def ready(self) -> None:
        from journeys import node_kinds, receivers  # noqa: F401
        from journeys.selectors import segment_users, template_users
        from messaging.registry import template_users_register
        from segments.registry import segment_users_register

        template_users_register(template_users)
        segment_users_register(segment_users)

        # (node_kinds: registers the node kinds; receivers: connects to audience's and
        # segments' announcements, which start and wake enrollments)
