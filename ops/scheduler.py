"""django-celery-beat's database scheduler, recording a heartbeat on each tick for /healthz."""

from __future__ import annotations

import logging
import time
from typing import Any

from django.db import DatabaseError, close_old_connections
from django_celery_beat.schedulers import DatabaseScheduler

from ops.models import Heartbeat
from ops.services import heartbeat_record

logger = logging.getLogger(__name__)
HEARTBEAT_EVERY_SECONDS = 10.0


class HeartbeatDatabaseScheduler(DatabaseScheduler):
    _last_heartbeat = 0.0

    def tick(self, *args: Any, **kwargs: Any) -> float:
        now = time.monotonic()
        if now - self._last_heartbeat >= HEARTBEAT_EVERY_SECONDS:
            try:
                close_old_connections()
                heartbeat_record(process=Heartbeat.Process.BEAT)
                self._last_heartbeat = now
            except DatabaseError:  # the database being away must not stop the clock
                logger.exception("Could not record the beat heartbeat")
        interval = super().tick(*args, **kwargs)
        # Wake up at least as often as the heartbeat is due.
        return min(interval, HEARTBEAT_EVERY_SECONDS)
