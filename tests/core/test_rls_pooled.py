"""Row-level security behind PgBouncer in transaction pooling (DATABASE_POOLER=pgbouncer;
core/rls.py): a real PgBouncer with ONE server connection, shared by every client, so that
whatever a client left on it the next one would meet.

A session setting would leak there twice: to the client whose transaction runs next on that
server connection, and away from the client whose next transaction runs on another. These tests
show neither happens: the scope (and the server settings) live exactly as long as a transaction.

They need a role that row-level security applies to (CI's `wayfarer`); the superuser sees every
row whatever its scope, so they skip under one.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction
from psycopg.pq import TransactionStatus

from audience.models import Contact, Product
from core import rls
from core.db import prepare_allowed, raw_cursor
from tests.e2e import conftest as e2e
from tests.e2e import pgbouncer as bouncers
from tests.e2e.conftest import REPO_ROOT
from tests.e2e.pgbouncer import PgBouncer

pytestmark = pytest.mark.django_db(transaction=True)

# The fixtures (tests/e2e/pgbouncer.py): PgBouncer runs as a process of the test.
processes, pgbouncer, pooled_connection = (
    e2e.processes,
    bouncers.pgbouncer,
    bouncers.pooled_connection,
)


@pytest.fixture
def pgbouncer_pool_size() -> int:
    return 1  # every client shares one server connection


@pytest.fixture
def contacts(pooled_connection: PgBouncer, world: Any) -> dict[int, int]:
    """Contacts of both tenants, committed; {tenant id: count}. Skips under a superuser."""
    if rls.role_bypasses_rls():
        pytest.skip("row-level security never applies to a superuser: connect as an ordinary role")
    for tenant, n in ((world.acme, 3), (world.globex, 2)):
        for i in range(n):
            Contact.objects.create(tenant=tenant, email=f"c{i}@{tenant.slug}.example")
    return {world.acme.pk: 3, world.globex.pk: 2}


def _tenants_seen() -> set[int]:
    return set(Contact.objects.values_list("tenant_id", flat=True))


def _backend() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


class _Client(threading.Thread):
    """`target` in a thread of its own: a client of its own (Django's connections are per
    thread), whose connection is closed when it ends."""

    def __init__(self, target: Callable[[], Any]) -> None:
        super().__init__()
        self.work = target
        self.outcome: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.outcome = self.work()
        except BaseException as exc:
            self.error = exc
        finally:
            connection.close()

    def result(self) -> Any:
        self.join(timeout=120)
        assert not self.is_alive(), "the client hung"
        if self.error is not None:
            raise self.error
        return self.outcome


def _in_thread(target: Callable[[], Any]) -> Any:
    client = _Client(target)
    client.start()
    return client.result()


def test_two_tenants_interleaving_on_one_server_connection_see_only_their_rows(
    contacts: dict[int, int], world: Any
) -> None:
    acme, globex = world.acme.pk, world.globex.pk
    turns = {acme: threading.Semaphore(1), globex: threading.Semaphore(0)}
    other = {acme: globex, globex: acme}
    seen: dict[int, list[set[int]]] = {acme: [], globex: []}
    backends: set[int] = set()

    def client(tenant_id: int) -> None:
        rls.tenant_set(tenant_id)  # as the edge does
        for round_ in range(8):
            assert turns[tenant_id].acquire(timeout=30)
            try:
                if round_ % 2:  # a transaction of several statements…
                    with transaction.atomic():
                        seen[tenant_id].append(_tenants_seen())
                        Contact.objects.create(tenant_id=tenant_id, email=f"r{round_}@x.example")
                        assert Contact.objects.count() == contacts[tenant_id] + round_ // 2 + 1
                        backends.add(_backend())
                else:  # …and statements outside any (autocommit)
                    seen[tenant_id].append(_tenants_seen())
                    backends.add(_backend())
            finally:
                turns[other[tenant_id]].release()

    clients = [_Client(functools.partial(client, t)) for t in turns]
    for c in clients:
        c.start()
    for c in clients:
        c.result()
    assert seen[acme] == [{acme}] * 8
    assert seen[globex] == [{globex}] * 8
    assert len(backends) == 1, "the clients did not share the server connection"
    with rls.system_scope():
        assert Contact.objects.filter(tenant_id=acme).count() == 3 + 4
        assert Contact.objects.filter(tenant_id=globex).count() == 2 + 4


def test_a_scope_never_reaches_the_next_client(
    contacts: dict[int, int], world: Any, pooled_connection: PgBouncer
) -> None:
    def acme_client() -> int:
        rls.tenant_set(world.acme.pk)
        assert _tenants_seen() == {world.acme.pk}
        with transaction.atomic():
            assert _tenants_seen() == {world.acme.pk}
            return _backend()

    acme_backend = _in_thread(acme_client)

    def unscoped_client() -> tuple[int, int]:
        rls.restore(rls.NONE)  # a request before its edge knows the tenant
        return Contact.objects.count(), _backend()

    assert _in_thread(unscoped_client) == (0, acme_backend)

    # A client that is not Wayfarer at all meets the server connection as PostgreSQL made it.
    with psycopg.connect(**pooled_connection.server, autocommit=True) as direct:
        defaults = direct.execute("SELECT current_setting('jit'), current_setting('work_mem')")
        default_settings = defaults.fetchone()
    with pooled_connection.connect() as plain:
        row = plain.execute(
            "SELECT current_setting('wayfarer.tenant_id', true),"
            " current_setting('wayfarer.scope', true),"
            " current_setting('jit'), current_setting('work_mem'),"
            " (SELECT count(*) FROM audience_contact), pg_backend_pid()"
        ).fetchone()
    assert row is not None
    tenant, scope, jit, work_mem, visible, backend = row
    assert backend == acme_backend
    assert tenant in ("", None) and scope in ("", None)
    assert (jit, work_mem) == default_settings
    assert visible == 0


def test_a_statement_outside_a_transaction_sees_its_tenants_rows_and_settings(
    contacts: dict[int, int], world: Any
) -> None:
    with rls.tenant_scope(world.acme.pk):
        assert Contact.objects.count() == 3
        assert connection.connection.info.transaction_status == TransactionStatus.IDLE
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT current_setting('work_mem'), current_setting('jit'),"
                " current_setting('plan_cache_mode')"
            )
            assert cursor.fetchone() == ("64MB", "off", "force_custom_plan")
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('work_mem'), current_setting('jit')")
            assert cursor.fetchone() == ("64MB", "off")

        # The hot paths' raw cursors: scoped too, and nothing prepared (PgBouncer 1.18 would
        # send the next execution to a server connection that does not know the statement).
        assert prepare_allowed() is False
        for _ in range(3):
            with connection.wrap_database_errors, raw_cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM audience_contact WHERE email LIKE %s",
                    ["%@%"],
                    prepare=True,
                )
                assert cursor.fetchone() == (3,)
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_prepared_statements")
            assert cursor.fetchone() == (0,)
        assert connection.connection.info.transaction_status == TransactionStatus.IDLE


def test_a_failed_statement_outside_a_transaction_leaves_the_connection_usable(
    contacts: dict[int, int], world: Any
) -> None:
    with rls.tenant_scope(world.acme.pk):
        Product.objects.create(tenant=world.acme, sku="tent", name="Tent")
        with pytest.raises(IntegrityError):
            Product.objects.create(tenant=world.acme, sku="tent", name="Tent again")
        assert connection.connection.info.transaction_status == TransactionStatus.IDLE
        with pytest.raises(DatabaseError), connection.cursor() as cursor:
            cursor.execute("SELECT 1 / 0")
        assert connection.connection.info.transaction_status == TransactionStatus.IDLE
        assert Product.objects.count() == 1
        assert Contact.objects.count() == 3
        # And a statement PostgreSQL refuses inside a transaction runs bare.
        with connection.cursor() as cursor:
            cursor.execute("VACUUM audience_product")


def test_a_scope_changed_inside_a_transaction_follows_savepoints(
    contacts: dict[int, int], world: Any
) -> None:
    acme, globex = world.acme.pk, world.globex.pk

    class Undo(Exception):
        pass

    with rls.tenant_scope(acme), transaction.atomic():
        assert _tenants_seen() == {acme}
        with rls.tenant_scope(globex):
            assert _tenants_seen() == {globex}
        assert _tenants_seen() == {acme}
        with pytest.raises(Undo), transaction.atomic():
            with rls.tenant_scope(globex):
                assert _tenants_seen() == {globex}
            assert _tenants_seen() == {acme}
            with rls.tenant_scope(globex):
                assert _tenants_seen() == {globex}
                raise Undo
        assert _tenants_seen() == {acme}
    with rls.tenant_scope(globex):
        assert _tenants_seen() == {globex}


def _settings_of(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    code = (
        "import json, django; from django.conf import settings; django.setup();"
        "d = settings.DATABASES['default'];"
        "print(json.dumps({'options': d['OPTIONS'], 'server_side_cursors':"
        " not d.get('DISABLE_SERVER_SIDE_CURSORS', False), 'pooler': settings.DATABASE_POOLER}))"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.django_db(transaction=False)
def test_the_pooler_setting_leaves_out_what_transaction_pooling_cannot_carry() -> None:
    url = "postgres://wayfarer@127.0.0.1:6432/wayfarer"
    pooled = _settings_of({"DATABASE_URL": url, "DATABASE_POOLER": "pgbouncer"})
    assert pooled.returncode == 0, pooled.stderr
    assert json.loads(pooled.stdout) == {
        "options": {"prepare_threshold": None},
        "server_side_cursors": False,
        "pooler": "pgbouncer",
    }
    direct = _settings_of({"DATABASE_URL": url, "DATABASE_POOLER": ""})
    assert json.loads(direct.stdout) == {
        "options": {
            "prepare_threshold": 5,
            "options": "-c plan_cache_mode=force_custom_plan -c jit=off -c work_mem=64MB",
        },
        "server_side_cursors": True,
        "pooler": "",
    }
    for wrong in (
        {"DATABASE_URL": url, "DATABASE_POOLER": "pgpool"},
        {"DATABASE_URL": "sqlite:////tmp/x.sqlite3", "DATABASE_POOLER": "pgbouncer"},
    ):
        refused = _settings_of(wrong)
        assert refused.returncode != 0
        assert "DATABASE_POOLER" in refused.stderr
