"""Helpers shared by the benchmark scripts (bench/ingest.py, bench/segments.py); not a benchmark.

The scripts run as `.venv/bin/python bench/<name>.py`, so bench/ is first on sys.path and they
import this module as `common`.
"""

from __future__ import annotations

import os
import platform
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent

STARTED = time.monotonic()


def log(message: str) -> None:
    """Progress goes to stderr, so stdout holds only the report."""
    print(f"[{time.monotonic() - STARTED:7.1f}s] {message}", file=sys.stderr, flush=True)  # noqa: T201


class BenchError(Exception):
    """The benchmark cannot go on (or its figures cannot be trusted)."""


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def terminated(signum: int, _frame: object) -> None:
    """SIGTERM handler: exit through the finally blocks, so a `kill` still cleans up."""
    log(f"stopped by signal {signum}: cleaning up")
    sys.exit(128 + signum)


# --- the bench database --------------------------------------------------------------------------


class BenchDatabase:
    """A throwaway database on the local PostgreSQL. The URL is checked hard, because this class
    drops the database it names."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("postgres", "postgresql"):
            raise BenchError(f"--database-url must be postgres://…, not {parts.scheme}://")
        if parts.hostname != "127.0.0.1":
            raise BenchError("--database-url must point at 127.0.0.1 (the bench drops it)")
        name = parts.path.lstrip("/")
        if not re.fullmatch(r"[A-Za-z0-9_]+", name) or "bench" not in name.lower():
            raise BenchError(
                f"the bench database name must contain 'bench' (it is dropped), not {name!r}"
            )
        self.url, self.name = url, name

    def _admin(self) -> psycopg.Connection:
        conninfo = psycopg.conninfo.make_conninfo(self.url, dbname="postgres")
        return psycopg.connect(conninfo, autocommit=True)

    def connect(self, *, autocommit: bool = False) -> psycopg.Connection:
        return psycopg.connect(self.url, autocommit=autocommit)

    def claim(self) -> None:
        """Hold a PostgreSQL advisory lock for the whole run, so two runs on one server never
        drop each other's database; the lock goes with the connection, even on a crash."""
        self._lock = self._admin()
        got = self._lock.execute(
            "SELECT pg_try_advisory_lock(hashtext(%s))", [f"wayfarer-bench:{self.name}"]
        ).fetchone()
        if not got or not got[0]:
            self._lock.close()
            raise BenchError(
                f"another benchmark run is using the database {self.name}; wait for it or pass"
                " --database-url with another name"
            )

    def release(self) -> None:
        lock = getattr(self, "_lock", None)
        if lock is not None:
            lock.close()

    def recreate(self) -> None:
        self.drop()
        with self._admin() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))

    def drop(self) -> None:
        with self._admin() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name))
            )

    def server_version(self) -> str:
        with self._admin() as conn:
            return str(conn.execute("SHOW server_version").fetchone()[0])


# --- Django --------------------------------------------------------------------------------------


def django_environment(database: BenchDatabase, var_dir: Path) -> dict[str, str]:
    """The environment of `manage.py` and of Django in the script's own process: the project's
    default settings on the bench database, DEBUG off, a temporary WAYFARER_VAR_DIR."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database.url,
        "WAYFARER_VAR_DIR": str(var_dir),
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "WARNING",
    }


def manage(env: dict[str, str], *command: str) -> None:
    done = subprocess.run(
        [sys.executable, "manage.py", *command, "--no-input", "--verbosity", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"manage.py {command[0]} failed:\n{done.stdout}{done.stderr}")


def django_setup(env: dict[str, str]) -> None:
    os.environ.update(env)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from core import rls

    # The bench's own set-up spans tenants, like a management command (core/rls.py).
    rls.process_default_set(rls.SYSTEM)


@contextmanager
def django_on_bench_database(
    database: BenchDatabase, *, keep: bool, environment: Callable[[Path], dict[str, str]]
) -> Iterator[tuple[dict[str, str], Path]]:
    """Claims the bench database, recreates and migrates it, and sets Django up in this process
    on it with a temporary WAYFARER_VAR_DIR; yields (environment, var dir). Afterwards closes
    Django's connections, then drops the database and removes the var dir (both kept with
    `keep`). A database another run holds is never touched. Failures raise BenchError."""
    var_dir = Path(tempfile.mkdtemp(prefix="wayfarer-bench-"))
    (var_dir / "static").mkdir()  # STATIC_ROOT; WhiteNoise warns when it is missing
    claimed = django_ready = False
    try:
        try:
            database.claim()
        except psycopg.Error as exc:
            raise BenchError(str(exc)) from None
        claimed = True
        log(f"recreating database {database.name}")
        database.recreate()
        env = environment(var_dir)
        log("manage.py migrate")
        manage(env, "migrate")
        django_setup(env)
        django_ready = True
        yield env, var_dir
    finally:
        if django_ready:
            from django.db import connections

            connections.close_all()
        if claimed and keep:
            log(f"kept database {database.name} and {var_dir}")
        else:
            shutil.rmtree(var_dir, ignore_errors=True)
            if claimed:
                try:
                    database.drop()
                    log(f"dropped database {database.name}")
                except psycopg.Error as exc:
                    log(f"could not drop database {database.name}: {exc}")
        database.release()


# --- the report ----------------------------------------------------------------------------------


def machine_description(server_version: str, *, gunicorn: bool = False) -> str:
    """CPU, Python, Django (and gunicorn's version, when asked) and PostgreSQL's version."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import django

    parts = [
        f"nproc {cpu_count()} ({model})",
        f"Python {platform.python_version()}",
        f"Django {django.get_version()}",
    ]
    if gunicorn:
        import gunicorn as gunicorn_module

        parts.append(f"gunicorn {gunicorn_module.__version__}")
    parts.append(f"PostgreSQL {server_version}")
    return ", ".join(parts)


def python_speed() -> float:
    """Seconds for a fixed pure-Python loop: compares the CPU of two runs or two machines."""
    began = time.perf_counter()
    total = 0
    for i in range(2_000_000):
        total += i
    return time.perf_counter() - began


def conditions_lines(load_at_start: float, speed: float, slower: str) -> list[str]:
    """The report's `load avg` and `CPU speed` lines; `slower` says what a slower CPU does to
    the figures ("lower figures", "slower figures")."""
    before, after = load_at_start, os.getloadavg()[0]
    busy = (
        " (other work was running: figures are pessimistic)" if before > 0.5 * cpu_count() else ""
    )
    return [
        f"  load avg:   {before:.2f} at start, {after:.2f} at the end{busy}",
        f"  CPU speed:  {1000 * speed:.0f} ms for a 2M-iteration Python loop"
        f" (compare runs with it: slower CPU, {slower})",
    ]


def verdict(met: bool) -> str:
    return "MET" if met else "MISSED"
