"""A real PgBouncer in transaction pooling in front of the test database, for the tests that run
the product behind one (tests/core/test_rls_pooled.py, tests/e2e/test_pgbouncer.py).

Debian's package (1.18 on Debian 12; no prepared statements in transaction mode). Each test gets
its own process on a free loopback port, its own ini and user list in a temporary folder, and
a pool of its own size; it logs to its output, which a failing test's report shows.

`pooled_connection` points this test process's Django connection at it too, as
DATABASE_POOLER=pgbouncer does in config/settings.py (no prepare threshold, no startup options,
no server-side cursors).
"""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from django.db import connection
from django.test.utils import override_settings

from tests.e2e.conftest import REPO_ROOT, ManagedProcess, ProcessRunner, free_port, wait_for

BINARY_PLACES = ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer", "/usr/local/bin/pgbouncer")
INSTALL_HINT = "apt-get install -y pgbouncer (.ci/run installs it)"


def pgbouncer_binary() -> str:
    """The pgbouncer executable. Skips the test when there is none, except under CI
    (WAYFARER_REQUIRE_SERVICES=1), where a missing PgBouncer fails it."""
    found = shutil.which("pgbouncer") or next(
        (p for p in BINARY_PLACES if os.access(p, os.X_OK)), None
    )
    if found:
        return found
    if os.environ.get("WAYFARER_REQUIRE_SERVICES") == "1":
        pytest.fail(f"PgBouncer is required here but not installed: {INSTALL_HINT}", pytrace=False)
    pytest.skip(f"PgBouncer is not installed: {INSTALL_HINT}")


def require_postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("PgBouncer pools PostgreSQL connections; this run uses SQLite")


@dataclass
class PgBouncer:
    port: int
    dbname: str
    user: str
    password: str
    pool_size: int
    process: ManagedProcess
    folder: Path  # its ini and user list
    server: dict[str, Any]  # psycopg.connect() arguments for PostgreSQL itself

    def database_url(self, **query: str) -> str:
        """A DATABASE_URL for the test database through PgBouncer."""
        credentials = quote(self.user, safe="")
        if self.password:
            credentials += ":" + quote(self.password, safe="")
        url = f"postgres://{credentials}@127.0.0.1:{self.port}/{quote(self.dbname, safe='')}"
        return url + ("?" + "&".join(f"{k}={quote(v)}" for k, v in query.items()) if query else "")

    def connect(self, **kwargs: Any) -> psycopg.Connection[Any]:
        """A plain client of the pool (no Django), autocommit."""
        return psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            dbname=self.dbname,
            user=self.user,
            password=self.password or None,
            autocommit=True,
            **kwargs,
        )

    def show(self, what: str) -> list[dict[str, Any]]:
        """`SHOW <what>` on PgBouncer's admin console (CLIENTS, SERVERS, POOLS, STATS), as dicts."""
        with (
            psycopg.connect(
                host="127.0.0.1",
                port=self.port,
                dbname="pgbouncer",
                user=self.user,
                password=self.password or None,
                autocommit=True,
            ) as admin,
            admin.cursor() as cursor,
        ):
            cursor.execute(f"SHOW {what}")  # the console speaks the simple protocol only
            names = [c.name for c in cursor.description or []]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _readable_by(path: Path, user: str | None) -> None:
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def pgbouncer_start(
    runner: ProcessRunner, settings_dict: dict[str, Any], *, pool_size: int
) -> PgBouncer:
    """PgBouncer in transaction mode for `settings_dict`'s database, at most `pool_size` server
    connections for all its clients together (so that they share them)."""
    binary = pgbouncer_binary()
    dbname, user = settings_dict["NAME"], settings_dict.get("USER") or pwd.getpwuid(os.getuid())[0]
    password = settings_dict.get("PASSWORD") or ""
    host = settings_dict.get("HOST") or "127.0.0.1"
    server_port = settings_dict.get("PORT") or 5432
    # PgBouncer refuses to run as root: it then switches to `nobody`, which must read its files
    # (pytest's own temporary folders are private to their user).
    run_as = "nobody" if os.geteuid() == 0 else None
    folder = Path(tempfile.mkdtemp(prefix="wayfarer-pgbouncer-"))
    port = free_port()
    server = f"host={host} port={server_port} dbname={dbname}"
    if password:
        server += f" password={password}"
    ini, users = folder / "pgbouncer.ini", folder / "users.txt"
    users.write_text(f'"{user}" "{password}"\n')
    ini.write_text(
        "\n".join(
            [
                "[databases]",
                f"{dbname} = {server}",
                "[pgbouncer]",
                "listen_addr = 127.0.0.1",
                f"listen_port = {port}",
                "unix_socket_dir =",
                "auth_type = trust",
                f"auth_file = {users}",
                f"admin_users = {user}",
                "pool_mode = transaction",
                f"default_pool_size = {pool_size}",
                f"max_db_connections = {pool_size}",
                "min_pool_size = 0",
                "reserve_pool_size = 0",
                "max_client_conn = 200",
                # Startup parameters are refused as PgBouncer ships (no ignore_startup_parameters):
                # the app must not send `options` in this mode.
                "logfile =",
                "pidfile =",
                "",
            ]
        )
    )
    for path in (folder, ini, users):
        path.chmod(0o700 if path == folder else 0o600)
        _readable_by(path, run_as)
    argv = [binary, *(["-u", run_as] if run_as else []), str(ini)]
    process = runner.start("pgbouncer", argv, env=dict(os.environ), cwd=REPO_ROOT)
    direct = {"host": host, "port": server_port, "dbname": dbname, "user": user}
    direct["password"] = password or None
    bouncer = PgBouncer(port, dbname, user, password, pool_size, process, folder, direct)

    def answers() -> bool:
        try:
            bouncer.show("VERSION")
        except psycopg.OperationalError:
            return False
        return True

    wait_for(answers, timeout=20, what="PgBouncer to accept connections", runner=runner)
    return bouncer


@pytest.fixture
def pgbouncer_pool_size() -> int:
    return 2


@pytest.fixture
def pgbouncer(
    transactional_db: None, processes: ProcessRunner, pgbouncer_pool_size: int
) -> Iterator[PgBouncer]:
    """PgBouncer (transaction pooling) in front of the test database; committed rows only.
    Stopped with the test's other processes (`processes`, tests/e2e/conftest.py)."""
    require_postgresql()
    bouncer = pgbouncer_start(processes, connection.settings_dict, pool_size=pgbouncer_pool_size)
    yield bouncer
    shutil.rmtree(bouncer.folder, ignore_errors=True)  # read at start; the process may run on


def _pooled(settings_dict: dict[str, Any], bouncer: PgBouncer) -> dict[str, Any]:
    # As config/settings.py makes it for DATABASE_POOLER=pgbouncer.
    options = {k: v for k, v in settings_dict.get("OPTIONS", {}).items() if k != "options"}
    options["prepare_threshold"] = None
    options["application_name"] = "test"  # (PgBouncer's SHOW CLIENTS)
    return {
        **settings_dict,
        "HOST": "127.0.0.1",
        "PORT": str(bouncer.port),
        "OPTIONS": options,
        "DISABLE_SERVER_SIDE_CURSORS": True,
    }


@pytest.fixture
def pooled_connection(pgbouncer: PgBouncer) -> Iterator[PgBouncer]:
    """This process's connections (every thread's) go through `pgbouncer` until the test ends,
    in the DATABASE_POOLER=pgbouncer mode; the test database's own tear-down goes direct."""
    shared = connection.settings_dict  # every thread's connection reads this very dict
    direct = dict(shared)
    connection.close()
    shared.clear()
    shared.update(_pooled(direct, pgbouncer))
    try:
        with override_settings(DATABASE_POOLER="pgbouncer"):
            yield pgbouncer
            connection.close()
    finally:
        connection.close()
        shared.clear()
        shared.update(direct)
