"""Redis and PostgreSQL servers of a test's own, on free loopback ports, that the test may crash
and restart: the machine's shared services are used by other test processes at the same time.

Both run under the test's ProcessRunner (tests/e2e/conftest.py), so they are stopped whatever
happens and their logs are attached to a failing test's report.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import ManagedProcess, ProcessRunner, free_port, wait_for


class PrivateRedis:
    """`redis-server` without persistence (`--save "" --appendonly no`), as the machine's and
    many deployments' brokers run: a restart loses whatever was queued."""

    def __init__(self, processes: ProcessRunner, directory: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed: the broker-restart test needs its own")
        self.binary, self.processes, self.directory = binary, processes, directory
        self.port = free_port()
        self.process: ManagedProcess | None = None
        directory.mkdir(parents=True, exist_ok=True)

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        argv = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--appendonly", "no", "--dir", str(self.directory)]
        self.process = self.processes.start("redis", argv, env=dict(os.environ), cwd=self.directory)
        wait_for(lambda: _alive(self.process) and self.ping(), timeout=30, what="redis-server")

    def ping(self) -> bool:
        import redis

        try:
            return bool(redis.Redis.from_url(self.url(), socket_connect_timeout=1).ping())
        except redis.RedisError:
            return False

    def crash(self) -> None:
        """SIGKILL: everything it held in memory (queued and unacknowledged tasks) is gone."""
        assert self.process is not None
        os.kill(self.process.popen.pid, signal.SIGKILL)
        self.process.popen.wait(timeout=10)


class PrivatePostgres:
    """A PostgreSQL cluster of the test's own (`initdb` in a temporary directory). initdb
    refuses to run as root, as CI does: then the cluster belongs to the `postgres` system user
    and its commands run through `runuser`. Its superuser is `postgres`, trust auth on
    loopback: nobody else can reach a cluster on a random port that lives for one test."""

    def __init__(self, processes: ProcessRunner) -> None:
        candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
        found = shutil.which("postgres")
        self.bin = candidates[-1].parent if candidates else Path(found).parent if found else None
        if self.bin is None:
            pytest.skip("no PostgreSQL server binaries (postgres, initdb) on this machine")
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            runuser = shutil.which("runuser")
            if runuser is None:
                pytest.skip("running as root without runuser: initdb would refuse to run")
            self.as_user = [runuser, "-u", "postgres", "--"]
        self.processes = processes
        self.port = free_port()
        # Not under pytest's tmp_path: that is private to root, and the server runs as postgres.
        self.root = Path(tempfile.mkdtemp(prefix="wayfarer-faults-pg-"))
        self.data = self.root / "data"
        if self.as_user:
            shutil.chown(self.root, user="postgres")
        self.process: ManagedProcess | None = None
        initdb = [*self.as_user, str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres"]
        initdb += ["--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions"]
        done = subprocess.run(initdb, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            self.remove()
            pytest.skip(f"initdb failed, no private PostgreSQL cluster: {done.stderr[-500:]}")

    def url(self, name: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def start(self) -> None:
        argv = [*self.as_user, str(self.bin / "postgres"), "-D", str(self.data)]
        argv += ["-p", str(self.port), "-k", str(self.root), "-c", "listen_addresses=127.0.0.1"]
        # No fsync: a crash of the server (not of the machine) keeps what it wrote, so this
        # changes nothing the test proves. synchronous_commit stays on: an acknowledged commit
        # must survive the crash.
        argv += ["-c", "fsync=off"]
        self.process = self.processes.start("postgres", argv, env=dict(os.environ), cwd=self.root)
        wait_for(lambda: _alive(self.process) and self.ready(), timeout=60, what="PostgreSQL")

    def ready(self) -> bool:
        import psycopg

        try:
            psycopg.connect(self.url("postgres"), connect_timeout=2).close()
        except psycopg.OperationalError:
            return False
        return True

    def create_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')

    def _postmaster(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])

    def crash(self) -> None:
        """`pg_ctl stop -m immediate`: SIGQUIT to the postmaster, every backend is gone at once
        and the next start replays the WAL (what a crash of the server looks like)."""
        assert self.process is not None
        os.kill(self._postmaster(), signal.SIGQUIT)
        self.process.popen.wait(timeout=30)

    def stop(self) -> None:
        """A fast shutdown (SIGINT), if it runs."""
        if self.process is not None and self.process.is_running():
            with contextlib.suppress(OSError, ValueError):
                os.kill(self._postmaster(), signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.popen.wait(timeout=30)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _alive(process: ManagedProcess | None) -> bool:
    """Fails at once (with its output) if the server exited instead of listening."""
    assert process is not None
    assert process.is_running(), f"{process.name} exited:\n{process.output()[-3000:]}"
    return True


@contextlib.contextmanager
def private_postgres(processes: ProcessRunner) -> Iterator[PrivatePostgres]:
    cluster = PrivatePostgres(processes)
    try:
        yield cluster
    finally:
        cluster.stop()
        deadline = time.monotonic() + 10
        while cluster.process is not None and cluster.process.survivors():
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        cluster.remove()
