"""Sharing SQLite's single write lock fairly (the embedded default; a no-op on PostgreSQL).

A writer that finds the lock taken does not queue: SQLite's busy handler sleeps and tries again,
at growing intervals that reach 100 ms. A loop that commits and at once begins its next
transaction (a CSV import, an inbox drain) takes the lock back within microseconds, so a page
waiting to save something keeps finding it taken, chunk after chunk, until its busy timeout
runs out. Such loops pause between their transactions, long enough for a waiting writer's next
try to find the lock free.
"""

from __future__ import annotations

import time

from django.db import connection

TURN_SECONDS = 0.12  # a little over the busy handler's longest sleep


def give_writers_a_turn() -> None:
    """Call between two write transactions of a long loop, outside any transaction."""
    if connection.vendor == "sqlite" and not connection.in_atomic_block:
        time.sleep(TURN_SECONDS)
