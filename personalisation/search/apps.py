from __future__ import annotations

from django.apps import AppConfig


class SearchConfig(AppConfig):
    name = "personalisation.search"
    label = "search"
    verbose_name = "Product search"
