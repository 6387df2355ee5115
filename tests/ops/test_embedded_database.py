"""The embedded default's SQLite is set up for several processes writing in turn: writers wait
for each other (long enough for any transaction Wayfarer runs) instead of failing with
"database is locked". The import's short transactions: tests/audience/test_csv_import_slices.py;
the whole under load: tests/e2e/test_embedded_soak.py."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest
from django.db import connection, transaction

from core.sqlite import give_writers_a_turn
from ops.models import Heartbeat
from ops.services import heartbeat_record

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "sqlite", reason="the embedded default's SQLite"),
]


def pragma(name: str) -> object:
    with connection.cursor() as cursor:
        cursor.execute(f"PRAGMA {name}")
        return cursor.fetchone()[0]


def test_it_runs_sqlite_in_wal_mode_with_a_long_busy_timeout() -> None:
    assert pragma("journal_mode") == "wal"
    assert pragma("busy_timeout") >= 20_000  # ms; Python's default of 5 s was too short
    assert pragma("synchronous") == 1  # NORMAL: safe in WAL mode, no disk wait per commit
    assert connection.transaction_mode == "IMMEDIATE"


def test_it_waits_for_another_writer_instead_of_failing() -> None:
    held = threading.Event()

    def hold_the_write_lock() -> None:
        other = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        held.set()
        time.sleep(1.0)
        other.execute("COMMIT")
        other.close()

    writer = threading.Thread(target=hold_the_write_lock)
    writer.start()
    held.wait(5)
    started = time.monotonic()
    with transaction.atomic():  # BEGIN IMMEDIATE: waits its turn
        heartbeat_record(process=Heartbeat.Process.WORKER)
    writer.join()
    assert time.monotonic() - started >= 0.5
    assert Heartbeat.objects.filter(process="worker").exists()


def hold_the_lock_chunk_after_chunk(*, seconds: float, turns: bool) -> threading.Thread:
    """A loop of back-to-back write transactions, like an import (in its own connection)."""
    started = threading.Event()

    def loop() -> None:
        other = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            other.execute("BEGIN IMMEDIATE")
            started.set()
            time.sleep(0.2)  # a chunk's work
            other.execute("COMMIT")
            if turns:
                give_writers_a_turn()
        other.close()

    thread = threading.Thread(target=loop)
    thread.start()
    started.wait(5)
    return thread


@pytest.mark.parametrize("turns", [True, False], ids=["with turns", "without"])
def test_a_page_gets_its_turn_between_the_chunks_of_a_long_loop(turns: bool) -> None:
    loop = hold_the_lock_chunk_after_chunk(seconds=3.0, turns=turns)
    began = time.monotonic()
    heartbeat_record(process=Heartbeat.Process.WORKER)  # a page saving something
    waited = time.monotonic() - began
    loop.join()
    if turns:
        assert waited < 1.0, f"waited {waited:.1f} s"
    else:  # what happened before: the page waited for the whole loop
        assert waited > 2.0, f"waited only {waited:.1f} s"
