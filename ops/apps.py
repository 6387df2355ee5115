from __future__ import annotations

from django.apps import AppConfig


class OpsConfig(AppConfig):
    """Operations: health checks, process heartbeats, demo data and error pages. It sits at the
    top of the app stack, so it may call into every other app."""

    name = "ops"
    verbose_name = "Operations"
