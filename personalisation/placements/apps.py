from __future__ import annotations

from django.apps import AppConfig


class PlacementsConfig(AppConfig):
    name = "personalisation.placements"
    label = "placements"
    verbose_name = "Onsite placements"
