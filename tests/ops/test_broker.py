"""The embedded default's file-system broker (ops/broker.py): a reader never sees half a message,
nothing is lost or taken twice by concurrent writers and readers, and what a killed worker held
goes back to the queue. kombu's own transport fails the first and the last."""

from __future__ import annotations

import multiprocessing
import os
import queue as queue_module
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from kombu import Connection
from kombu.transport import filesystem

from ops import broker

QUEUE = "jobs"


@pytest.fixture(autouse=True)
def fresh_broker_state() -> None:
    """kombu keeps the bindings it declared in a per-process global and does not write them
    again to another test's control folder."""
    broker.Transport.global_state.clear()


def options(root: Path) -> dict[str, Any]:
    folders = {name: root / name for name in ("queue", "processed", "control", "claimed")}
    for folder in folders.values():
        folder.mkdir(exist_ok=True)
    return {
        "data_folder_in": str(folders["queue"]),
        "data_folder_out": str(folders["queue"]),
        "processed_folder": str(folders["processed"]),
        "control_folder": str(folders["control"]),
        "claimed_folder": str(folders["claimed"]),
        "polling_interval": 0.01,
    }


def connect(root: Path, transport: type = broker.Transport) -> Connection:
    return Connection("filesystem://", transport=transport, transport_options=options(root))


def torn_message(root: Path) -> Path:
    """What a reader finds while kombu's writer is between creating a message file under its
    final name and writing it: an empty file (the first in the queue's order)."""
    options(root)  # the folders
    path = root / "queue" / f"1_torn.{QUEUE}.msg"
    path.write_bytes(b"")
    return path


def test_kombus_own_transport_dies_on_a_half_written_message(tmp_path: Path) -> None:
    torn_message(tmp_path)
    with connect(tmp_path, filesystem.Transport) as conn:
        channel = conn.default_channel
        with pytest.raises(ValueError):  # JSONDecodeError: the worker's "Unrecoverable error"
            channel._get(QUEUE)
    assert not list((tmp_path / "queue").iterdir()), "and the message is gone for good"


def test_it_skips_a_half_written_message_until_it_is_complete(tmp_path: Path) -> None:
    torn = torn_message(tmp_path)
    with connect(tmp_path) as conn:
        channel = conn.default_channel
        channel._put(QUEUE, {"n": "whole"})

        assert channel._get(QUEUE) == {"n": "whole"}  # the torn one was left in the queue
        with pytest.raises(queue_module.Empty):
            channel._get(QUEUE)

        torn.write_bytes(b'{"n": "late"}')  # its writer finishes
        assert channel._get(QUEUE) == {"n": "late"}


def test_it_sets_aside_a_message_that_stays_unreadable(tmp_path: Path, caplog) -> None:
    torn = torn_message(tmp_path)
    os.utime(torn, (1, 1))  # long past the grace period
    with connect(tmp_path) as conn, pytest.raises(queue_module.Empty):
        conn.default_channel._get(QUEUE)
    assert [p.name for p in (tmp_path / "claimed" / "unreadable").iterdir()] == [torn.name]
    assert "unreadable broker message" in caplog.text


def test_it_never_shows_a_message_file_before_it_is_complete(tmp_path: Path, monkeypatch) -> None:
    seen: list[list[str]] = []
    real_replace = os.replace

    def replace(source: str, destination: str) -> None:
        seen.append(sorted(os.listdir(tmp_path / "queue")))  # what a reader could list now
        real_replace(source, destination)

    monkeypatch.setattr(broker.os, "replace", replace)
    with connect(tmp_path) as conn:
        conn.default_channel._put(QUEUE, {"n": 1})
    [listing] = seen
    assert all(not name.endswith(".msg") for name in listing)


def test_it_deletes_a_message_only_once_it_is_acknowledged(tmp_path: Path) -> None:
    with connect(tmp_path) as conn:
        inbox = conn.SimpleQueue(QUEUE)
        inbox.put({"n": 1})
        message = inbox.get(timeout=2)
        claimed = list((tmp_path / "claimed").rglob(f"*.{QUEUE}.msg"))
        assert len(claimed) == 1, "taken, but kept until the task has run"
        message.ack()
        assert not list((tmp_path / "claimed").rglob(f"*.{QUEUE}.msg"))
        inbox.close()


def _take_one_and_die(root: str) -> None:
    with connect(Path(root)) as conn:
        conn.SimpleQueue(QUEUE).get(timeout=5)  # received, never acknowledged
        os.kill(os.getpid(), signal.SIGKILL)


def test_it_gives_a_killed_workers_messages_to_the_next_one(tmp_path: Path) -> None:
    with connect(tmp_path) as conn:
        conn.SimpleQueue(QUEUE).put({"n": "held by the killed one"})
    child = multiprocessing.get_context("spawn").Process(
        target=_take_one_and_die, args=(str(tmp_path),)
    )
    child.start()
    child.join(30)
    assert child.exitcode == -signal.SIGKILL
    assert not list((tmp_path / "queue").glob("*.msg")), "the killed worker had taken it"

    with connect(tmp_path) as conn:
        message = conn.SimpleQueue(QUEUE).get(timeout=5)
        assert message.payload == {"n": "held by the killed one"}
        message.ack()


def test_it_keeps_the_claims_of_a_live_worker(tmp_path: Path) -> None:
    with connect(tmp_path) as first, connect(tmp_path) as second:
        first.SimpleQueue(QUEUE).put({"n": 1})
        held = first.SimpleQueue(QUEUE).get(timeout=2)
        with pytest.raises(queue_module.Empty):
            second.SimpleQueue(QUEUE).get(timeout=0.5)
        held.ack()


WRITERS, READERS, PER_WRITER = 4, 4, 250


def _write(root: str, writer: int) -> None:
    with connect(Path(root)) as conn:
        producer = conn.SimpleQueue(QUEUE)
        for n in range(PER_WRITER):
            producer.put({"id": f"{writer}-{n}"})


def _read(root: str, out: str, stop_after_idle: float) -> None:
    got = []
    with connect(Path(root)) as conn:
        consumer = conn.SimpleQueue(QUEUE)
        while True:
            try:
                message = consumer.get(timeout=stop_after_idle)
            except queue_module.Empty:
                break
            got.append(message.payload["id"])
            message.ack()
    Path(out).write_text("\n".join(got))


def test_it_loses_and_repeats_nothing_with_many_writers_and_readers(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    with connect(tmp_path) as conn:
        conn.SimpleQueue(QUEUE).close()  # declare the queue once
    readers = [
        context.Process(target=_read, args=(str(tmp_path), str(tmp_path / f"r{n}"), 3.0))
        for n in range(READERS)
    ]
    writers = [context.Process(target=_write, args=(str(tmp_path), n)) for n in range(WRITERS)]
    for process in readers + writers:
        process.start()
    for process in writers + readers:
        process.join(120)
        assert process.exitcode == 0, "a reader or writer died"

    received = Counter(
        line for n in range(READERS) for line in (tmp_path / f"r{n}").read_text().splitlines()
    )
    expected = {f"{w}-{n}" for w in range(WRITERS) for n in range(PER_WRITER)}
    assert set(received) == expected, "lost messages"
    assert max(received.values()) == 1, "messages taken twice"


def test_filesystem_broker_urls_use_this_transport() -> None:
    from kombu.transport import get_transport_cls

    import config.celery  # noqa: F401  (the alias is set where the Celery app is made)

    assert get_transport_cls("filesystem") is broker.Transport
    assert Connection("filesystem://").transport_cls == "filesystem"
    assert isinstance(Connection("filesystem://").transport, broker.Transport)
