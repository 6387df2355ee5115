"""`make run`'s supervisor (ops/supervisor.py): a process that dies is restarted and the others
keep running (honcho stopped them all), and /healthz says what was restarted."""

from __future__ import annotations

import io
import json
import os
import signal
import time
from pathlib import Path

import pytest

from ops import supervisor
from ops.supervisor import Supervisor, read_procfile, read_state


@pytest.fixture
def quick_restarts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(supervisor, "FIRST_PAUSE_SECONDS", 0.0)


def wait_until(condition, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_it_reads_a_procfile(tmp_path: Path) -> None:
    procfile = tmp_path / "Procfile"
    procfile.write_text("# comment\nweb: gunicorn x --bind 127.0.0.1:${PORT:-8000}\n\nworker: w\n")
    assert read_procfile(procfile) == [
        ("web", "gunicorn x --bind 127.0.0.1:${PORT:-8000}"),
        ("worker", "w"),
    ]


def test_it_restarts_a_killed_process_and_leaves_the_others_alone(
    tmp_path: Path, quick_restarts: None
) -> None:
    state_file = tmp_path / "supervisor.json"
    out = io.StringIO()
    sup = Supervisor([("web", "sleep 60"), ("worker", "sleep 60")], state_file=state_file, out=out)
    try:
        sup.step()
        web, worker = sup.programs
        assert web.popen and worker.popen
        web_pid, worker_pid = web.popen.pid, worker.popen.pid

        os.kill(worker_pid, signal.SIGKILL)
        wait_until(lambda: worker.popen is not None and worker.popen.poll() is not None)
        sup.step()  # notices the death and, with no pause, starts it again
        assert worker.popen is not None and worker.popen.pid != worker_pid
        assert web.popen.pid == web_pid and web.popen.poll() is None, "web kept running"

        state = read_state(state_file)
        assert state is not None
        assert state["processes"]["worker"]["restarts"] == 1
        assert state["processes"]["worker"]["last_exit_code"] == -signal.SIGKILL
        assert state["processes"]["worker"]["running"] is True
        assert state["processes"]["web"]["restarts"] == 0
        assert "worker was killed by signal 9" in out.getvalue()
    finally:
        sup.shutdown()
    assert all(p.popen is not None and p.popen.poll() is not None for p in sup.programs)
    assert not state_file.exists()


def test_it_waits_longer_before_each_restart_of_a_process_that_keeps_dying(
    tmp_path: Path,
) -> None:
    now = [1000.0]
    sup = Supervisor(
        [("worker", "sh -c 'exit 3'")],
        state_file=tmp_path / "s.json",
        out=io.StringIO(),
        clock=lambda: now[0],
    )
    pauses = []
    for _ in range(7):
        sup.step()
        [worker] = sup.programs
        assert worker.popen is not None
        worker.popen.wait()
        sup.step()  # notices the exit
        pauses.append(worker.next_start - now[0])
        now[0] = worker.next_start
    assert pauses == [1, 2, 4, 8, 16, 30, 30]
    assert sup.programs[0].last_exit_code == 3
    sup.shutdown()


def test_it_ignores_the_state_of_a_supervisor_that_is_gone(tmp_path: Path) -> None:
    state_file = tmp_path / "supervisor.json"
    state_file.write_text(json.dumps({"pid": 2**22 + 12345, "processes": {}}))
    assert read_state(state_file) is None


@pytest.mark.django_db
def test_healthz_reports_restarts_and_a_process_that_is_down(client, settings, tmp_path) -> None:
    settings.VAR_DIR = tmp_path
    processes = {
        "web": {"running": True, "restarts": 0, "last_exit_code": None, "last_restart_at": None},
        "worker": {
            "running": True,
            "restarts": 2,
            "last_exit_code": -9,
            "last_restart_at": "2026-12-07T05:00:00+00:00",
        },
    }
    state = {"pid": os.getpid(), "processes": processes}
    (tmp_path / "supervisor.json").write_text(json.dumps(state))

    body = client.get("/healthz").json()
    assert body["processes"]["ok"] is True
    assert body["processes"]["worker"]["summary"] == (
        "worker running; restarted 2 times, last at 2026-12-07T05:00:00+00:00 "
        "(it had exited with code -9)"
    )
    assert body["processes"]["web"]["summary"] == "web running"

    processes["worker"]["running"] = False
    (tmp_path / "supervisor.json").write_text(json.dumps(state))
    body = client.get("/healthz").json()
    assert body["processes"]["ok"] is False
    assert body["status"] == "degraded"


@pytest.mark.django_db
def test_healthz_has_no_processes_without_a_supervisor(client, settings, tmp_path) -> None:
    settings.VAR_DIR = tmp_path
    assert "processes" not in client.get("/healthz").json()
