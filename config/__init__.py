from __future__ import annotations

# Load the Celery app whenever Django starts, so that @shared_task and on_commit(...delay) use it.
from config.celery import app as celery_app

__all__ = ["celery_app"]
