from __future__ import annotations

from django.apps import AppConfig


class CoreConfig(AppConfig):
    """The bottom of the stack (see core/__init__.py): no models, and no imports of other apps."""

    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from core import lookups, rls  # noqa: F401  (rls connects its signals)

        lookups.register()
