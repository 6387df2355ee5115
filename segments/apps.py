from __future__ import annotations

from django.apps import AppConfig


class SegmentsConfig(AppConfig):
    name = "segments"
    verbose_name = "Segments"

    def ready(self) -> None:
        from segments import conditions, receivers  # noqa: F401
        # (conditions: registers segments' condition kinds; receivers: connects to audience's
        # signals)
