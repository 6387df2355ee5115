from __future__ import annotations

from django.apps import AppConfig


class PlacementsConfig(AppConfig):
    name = "personalisation.placements"
    label = "placements"
    verbose_name = "Onsite placements"

    def ready(self) -> None:
        from personalisation.placements.selectors import segment_users
        from segments.registry import segment_users_register

        # Deleting a segment that a variant targets is refused, naming the placement.
        segment_users_register(segment_users)
