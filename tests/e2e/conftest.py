"""Helpers for the end-to-end tests: real processes, always stopped, with their output attached to
the report of a failing test.

Every process gets its own session (so one signal reaches its whole group) and a unique marker
in an environment variable, which its children inherit. Some children leave the group on purpose
(the supervisor gives each Procfile entry a session of its own), so "did everything stop?" is
answered by looking for the marker in /proc/<pid>/environ, which also finds orphans whose parent
died first.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = REPO_ROOT / ".venv" / "bin"
MARKER_VARIABLE = "WAYFARER_E2E_PROCESS"
OUTPUT_TAIL_CHARS = 12_000


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pids_with_environ(variable: str, value: str) -> list[int]:
    """Live processes whose environment has variable=value (zombies have an empty environ)."""
    needle = f"{variable}={value}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone meanwhile, or another user's process
            continue
        if needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def _describe(pid: int) -> str:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        cmdline = "?"
    return f"{pid}: {cmdline.strip()[:200]}"


@dataclass
class ManagedProcess:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    marker: str

    def is_running(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        """Everything the process printed so far (stdout and stderr)."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def output(self) -> str:
        """The end of the log, for failure reports."""
        text = self.log()
        if len(text) > OUTPUT_TAIL_CHARS:
            text = "…\n" + text[-OUTPUT_TAIL_CHARS:]
        return text

    def survivors(self) -> list[int]:
        return pids_with_environ(MARKER_VARIABLE, self.marker)

    def terminate(self) -> None:
        if self.is_running():
            _signal_group(self.popen.pid, signal.SIGTERM)  # it passes the signal on, if it must
        else:
            for pid in self.survivors():  # orphans: nobody is left to pass it on
                _signal_pid(pid, signal.SIGTERM)

    def stop(self, grace_seconds: float = 20.0) -> list[str]:
        """SIGTERM to the process group, then SIGKILL to whatever still carries the marker.
        Returns the processes that needed SIGKILL (empty after a clean shutdown)."""
        self.terminate()
        deadline = time.monotonic() + grace_seconds
        while time.monotonic() < deadline and (self.is_running() or self.survivors()):
            time.sleep(0.1)
        killed = [_describe(pid) for pid in self.survivors()]
        if self.is_running() or killed:
            _signal_group(self.popen.pid, signal.SIGKILL)
            for pid in self.survivors():
                _signal_pid(pid, signal.SIGKILL)
        try:
            self.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            killed.append(f"{self.popen.pid}: {self.name} did not exit even after SIGKILL")
        deadline = time.monotonic() + 10
        while self.survivors() and time.monotonic() < deadline:
            time.sleep(0.1)
        return killed


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _signal_pid(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


class ProcessRunner:
    """Starts processes for one test; the fixture below stops them all, whatever happens."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[ManagedProcess] = []

    def start(
        self, name: str, argv: Sequence[str], *, env: dict[str, str], cwd: Path
    ) -> ManagedProcess:
        marker = uuid.uuid4().hex
        log_path = self.log_dir / f"{len(self.started)}-{name.replace(' ', '-')}.log"
        with log_path.open("wb") as log:
            popen = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env={**env, MARKER_VARIABLE: marker},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        process = ManagedProcess(name=name, popen=popen, log_path=log_path, marker=marker)
        self.started.append(process)
        return process

    def output(self) -> str:
        return "\n".join(
            f"----- {p.name} (exit code {p.popen.poll()}) -----\n{p.output()}" for p in self.started
        )

    def check_running(self) -> None:
        for process in self.started:
            if not process.is_running():
                last_lines = "\n".join(process.log().splitlines()[-15:])
                raise AssertionError(
                    f"{process.name} exited with code {process.popen.returncode}; its output "
                    f"ends with (all of it is in the report below):\n{last_lines}"
                )

    def stop_all(self) -> list[str]:
        for process in self.started:  # all at once: a Celery worker's warm shutdown takes seconds
            process.terminate()
        killed = []
        for process in reversed(self.started):
            killed += process.stop()
        return killed


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[ProcessRunner]:
    runner = ProcessRunner(log_dir=tmp_path)
    try:
        yield runner
    finally:
        killed = runner.stop_all()
        if killed:
            warnings.warn(f"SIGTERM did not stop these; they were killed: {killed}", stacklevel=1)


def wait_for[T](
    probe: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    runner: ProcessRunner | None = None,
    interval: float = 0.25,
) -> T:
    """Poll `probe` until it returns something truthy; fail after `timeout` seconds, or at once
    when one of the runner's processes has died (its output is in the report either way)."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if runner is not None:
            runner.check_running()
        if time.monotonic() > deadline:
            raise AssertionError(f"Gave up after {timeout:.0f} s waiting for {what}.")
        time.sleep(interval)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> pytest.TestReport:
    """Attach the output of every process the test started to its failure report."""
    report: pytest.TestReport = yield
    for name in ("processes", "services"):  # services: tests/e2e/test_faults.py's servers
        runner = getattr(item, "funcargs", {}).get(name)
        if report.failed and isinstance(runner, ProcessRunner) and runner.started:
            report.sections.append((f"Output of the {name} ({report.when})", runner.output()))
    return report
