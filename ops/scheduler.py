"""django-celery-beat's database scheduler, with one leader among beat processes and a
heartbeat on each of the leader's ticks for /healthz.

Only one beat may dispatch a schedule: two would send every periodic task twice (every task is
safe to run twice, but the work doubles: two refreshes of every time-relative segment at once).
Each tick first takes or renews a lease in the database (ops.services.scheduler_lease_take); a
beat that does not hold it dispatches nothing and asks again a third of a lease later. If the
leader dies, another beat takes over once the lease has run out (BEAT_LEASE_SECONDS), reading
the schedule afresh from the database (each entry's last run as the old leader last saved it,
so a task may run once early at a takeover).
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from typing import Any

from django.conf import settings
from django.db import DatabaseError, close_old_connections
from django_celery_beat.schedulers import DatabaseScheduler

from ops.models import Heartbeat
from ops.services import heartbeat_record, scheduler_lease_release, scheduler_lease_take

logger = logging.getLogger(__name__)
HEARTBEAT_EVERY_SECONDS = 10.0


def lease_seconds() -> float:
    return max(3.0, float(getattr(settings, "BEAT_LEASE_SECONDS", 30)))


class HeartbeatDatabaseScheduler(DatabaseScheduler):
    _last_heartbeat = 0.0
    _leading = False
    _busy = False  # in a database call (see close())

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.holder = f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"[:255]
        super().__init__(*args, **kwargs)

    def tick(self, *args: Any, **kwargs: Any) -> float:
        self._busy = True
        try:
            return self._tick(*args, **kwargs)
        finally:
            self._busy = False

    def _do_sync(self) -> None:  # beat's periodic save of the schedule, between ticks too
        self._busy = True
        try:
            super()._do_sync()
        finally:
            self._busy = False

    def _tick(self, *args: Any, **kwargs: Any) -> float:
        lease = lease_seconds()
        if not self._lead(lease):
            return lease / 3  # standing by: ask again well before a dead leader's lease ends
        now = time.monotonic()
        if now - self._last_heartbeat >= HEARTBEAT_EVERY_SECONDS:
            try:
                heartbeat_record(process=Heartbeat.Process.BEAT)
                self._last_heartbeat = now
            except DatabaseError:  # the database being away must not stop the clock
                logger.exception("Could not record the beat heartbeat")
        interval = super().tick(*args, **kwargs)
        # Wake up at least as often as the heartbeat is due and the lease must be renewed.
        return min(interval, HEARTBEAT_EVERY_SECONDS, lease / 3)

    def close(self) -> None:
        # Beat's SIGTERM/SIGINT handler calls close() (which saves the schedule) in the middle
        # of whatever the process was doing, a database call of ours or the handler's own
        # close() for an earlier signal (a supervisor may send two). A second call on the same
        # connection would wait for ever on psycopg's connection lock: a beat that never stops.
        # Skip it then: beat calls close() again once the signal's SystemExit has unwound.
        if self._busy:
            return
        self._busy = True
        try:
            super().close()
            if self._leading:
                try:
                    close_old_connections()
                    scheduler_lease_release(holder=self.holder)
                except DatabaseError:  # it runs out on its own
                    logger.exception("Could not release the beat lease")
                self._leading = False
        finally:
            self._busy = False

    def _lead(self, lease: float) -> bool:
        try:
            close_old_connections()
            leading = scheduler_lease_take(holder=self.holder, seconds=lease)
        except DatabaseError:
            # Without the database no beat can show it leads, and no task could run anyway.
            logger.exception("Could not renew the beat lease; dispatching nothing meanwhile")
            self._leading = False
            return False
        if leading and not self._leading:
            logger.info("This beat (%s) leads: it dispatches the periodic tasks", self.holder)
            # Another beat may have dispatched until now: start from the saved schedule.
            self._initial_read = True
            self._heap_invalidated = True
        elif self._leading and not leading:
            logger.warning("Another beat leads now; this one (%s) stands by", self.holder)
        self._leading = leading
        return leading
