"""The process supervisor of `make run`: starts every process of the Procfile, restarts one that
dies (after a pause that grows while it keeps dying), and leaves the others running.

honcho, used before, stops everything when one process exits: a worker that died took the web
server down with it. Restarts are written to a state file in the var dir that /healthz reads
(ops/selectors.py), so an operator sees "worker restarted 2 times, last at …".

Production runs each process under its own service manager (systemd, Kubernetes), which does
the same; this is for the embedded default on a laptop.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

FIRST_PAUSE_SECONDS = 1.0  # before the first restart; doubled for each quick death after it
MAX_PAUSE_SECONDS = 30.0
STABLE_AFTER_SECONDS = 30.0  # a process that ran this long starts again from the first pause
STOP_GRACE_SECONDS = 15.0  # a Celery worker's warm shutdown finishes its task first
STATE_FILE_NAME = "supervisor.json"


def read_procfile(path: Path) -> list[tuple[str, str]]:
    """(name, command) of each `name: command` line; blank lines and # comments are skipped."""
    programs = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, command = line.partition(":")
        if not sep or not name.strip() or not command.strip():
            raise ValueError(f"{path}: not a `name: command` line: {line!r}")
        programs.append((name.strip(), command.strip()))
    return programs


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class Program:
    name: str
    command: str
    popen: subprocess.Popen[bytes] | None = None
    started_at: str | None = None
    restarts: int = 0
    last_exit_code: int | None = None
    last_restart_at: str | None = None
    quick_deaths: int = 0
    next_start: float = 0.0  # monotonic time it may start (again)
    _started_monotonic: float = field(default=0.0, repr=False)

    def state(self) -> dict[str, Any]:
        running = self.popen is not None and self.popen.poll() is None
        return {
            "running": running,
            "pid": self.popen.pid if running and self.popen else None,
            "started_at": self.started_at,
            "restarts": self.restarts,
            "last_exit_code": self.last_exit_code,
            "last_restart_at": self.last_restart_at,
        }


class Supervisor:
    def __init__(
        self,
        programs: list[tuple[str, str]],
        *,
        state_file: Path,
        env: dict[str, str] | None = None,
        out: TextIO = sys.stdout,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.programs = [Program(name, command) for name, command in programs]
        self.state_file = state_file
        self.env = env if env is not None else dict(os.environ)
        self.out = out
        self.clock = clock
        self.stopping = False

    def say(self, message: str) -> None:
        print(f"supervisor | {message}", file=self.out, flush=True)

    # --- the loop ----------------------------------------------------------------------------

    def run(self, poll_seconds: float = 0.2) -> int:
        """Run until SIGTERM or SIGINT, then stop every process and return 0."""

        def stop(signum: int, frame: object) -> None:
            self.stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        try:
            while not self.stopping:
                self.step()
                time.sleep(poll_seconds)
        finally:
            self.shutdown()
        return 0

    def step(self) -> None:
        """Notice processes that exited, and start those that are due."""
        changed = False
        for program in self.programs:
            if program.popen is not None and program.popen.poll() is not None:
                self._exited(program)
                changed = True
            if program.popen is None and self.clock() >= program.next_start:
                self._start(program)
                changed = True
        if changed:
            self.write_state()

    def _start(self, program: Program) -> None:
        if program.started_at is not None:
            program.restarts += 1
            program.last_restart_at = _now_iso()
        # Its own session: a signal to the group reaches its children too (gunicorn's workers),
        # and Ctrl-C in the terminal reaches only us, who stop everything in order.
        program.popen = subprocess.Popen(
            ["/bin/sh", "-c", f"exec {program.command}"],
            env=self.env,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        program.started_at = _now_iso()
        program._started_monotonic = self.clock()
        verb = f"restarted (restart {program.restarts})" if program.restarts else "started"
        self.say(f"{program.name} {verb}, pid {program.popen.pid}")

    def _exited(self, program: Program) -> None:
        assert program.popen is not None
        code = program.popen.returncode
        ran = self.clock() - program._started_monotonic
        program.popen = None
        program.last_exit_code = code
        program.quick_deaths = 0 if ran >= STABLE_AFTER_SECONDS else program.quick_deaths + 1
        pause = min(MAX_PAUSE_SECONDS, FIRST_PAUSE_SECONDS * 2 ** max(0, program.quick_deaths - 1))
        program.next_start = self.clock() + pause
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        self.say(f"{program.name} {how} after {ran:.0f} s; restarting it in {pause:.0f} s")

    def shutdown(self) -> None:
        """SIGTERM to every process group, SIGKILL to what is left after the grace period."""
        running = [p for p in self.programs if p.popen is not None and p.popen.poll() is None]
        for program in running:
            assert program.popen is not None
            self.say(f"stopping {program.name}")
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(program.popen.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for program in running:
            assert program.popen is not None
            try:
                program.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(f"{program.name} ignored SIGTERM; killing it")
            # Whatever is left in its group (a child that outlived its parent) goes too.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(program.popen.pid, signal.SIGKILL)
            program.popen.wait()
        with contextlib.suppress(FileNotFoundError):
            self.state_file.unlink()

    # --- what /healthz reads -----------------------------------------------------------------

    def write_state(self) -> None:
        state = {
            "pid": os.getpid(),
            "updated_at": _now_iso(),
            "processes": {p.name: p.state() for p in self.programs},
        }
        partial = self.state_file.with_name(f".{self.state_file.name}.{os.getpid()}")
        partial.write_text(json.dumps(state, indent=2))
        os.replace(partial, self.state_file)  # a reader sees the old state or the new one


def read_state(state_file: Path) -> dict[str, Any] | None:
    """The state a running supervisor wrote, or None (none runs: not started by `make run`)."""
    try:
        state = json.loads(state_file.read_text())
        os.kill(int(state["pid"]), 0)  # still alive? (a file left by a killed supervisor)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return state if isinstance(state, dict) else None
