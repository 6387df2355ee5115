from __future__ import annotations

from django.apps import AppConfig


class CoreConfig(AppConfig):
    """The bottom of the stack (see core/__init__.py): no models, and no imports of other apps."""

    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from core import rls  # noqa: F401  (connects the row-level security scope's signals)
