"""Row-level security: which tenant's rows the database lets this connection see (PostgreSQL).

Every tenant-owned table carries a policy (installed by tenants/rls.py after each `migrate`):
a row is visible and writable only when its `tenant_id` equals the connection's
`wayfarer.tenant_id` setting, or when `wayfarer.scope` is `all` (the system scope). With neither
set, a query sees nothing and an insert is refused. It is a second wall behind the application's
own `tenant=` filters, so a forgotten filter fails closed instead of leaking another tenant's rows.

Who sets what:
- the edge, once it knows the tenant: `tenant_set(id)` (TenantMiddleware, API-key authentication,
  signed message links, ESP webhooks);
- code that legitimately spans tenants, around exactly that work: `with system_scope():` (the
  edge's own key and slug look-ups, a user's list of teams, sign-up, the admin);
- trusted processes as their default: `process_default_set(SYSTEM)` (Celery workers and beat,
  management commands, migrations). RLS guards the web edge; workers are our own code.

Why a session setting and not `SET LOCAL`: Django runs in autocommit, so one request is many
short transactions and `SET LOCAL` would be gone after the first statement; wrapping every request
in one transaction would hold a snapshot across whole pages and streamed exports, and move every
`on_commit` to the end of the request. So the setting is made for the session, and kept right by
one rule: no statement runs on a connection whose server-side setting differs from the scope its
thread wants. An execute wrapper on every connection (and `core.db.raw_cursor`) checks before
each statement and sends `set_config` first when they differ. Every request starts with no scope
(`request_started`) and gives back the one it found (`request_finished`, which also runs after a
streamed response closes). The value last sent is remembered per server connection (psycopg's
connection object), so a persistent or pooled connection that a request left scoped to its tenant
is reset before the next request's first statement, wherever that connection went meanwhile, and
nothing is sent while nothing changes (a tracking call with a cached key costs one statement).
PostgreSQL undoes a setting made inside a transaction or savepoint that rolls back, so a value
sent inside one is trusted only while that atomic block is open.

Behind a pooler in transaction mode (`DATABASE_POOLER=pgbouncer`) a session setting is wrong
twice over: it stays on a server connection that the pooler hands to another client after the
transaction, and the client's next transaction may run on a server connection that never saw
it. So in that mode the scope is transaction-local (`set_config(…, true)`), sent at the start of
every transaction, with the server settings that direct connections get at start-up
(settings.DATABASE_SERVER_SETTINGS), in one statement. A statement outside an atomic block would
be a transaction of its own, without them: it runs inside a short one instead (`BEGIN` and the
settings in one round trip, the statement, `COMMIT`). Statements PostgreSQL refuses inside a
transaction (`VACUUM`, `… CONCURRENTLY`, `CREATE DATABASE`) run bare; they read no tenant rows.
Nothing then outlives its transaction, so nothing can leak to the pooler's next client. The
direct mode is untouched: the execute wrapper of each mode is installed when a connection opens.

On SQLite everything here is a no-op: SQLite has no row-level security.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import psycopg
from django.conf import settings
from django.core.signals import request_finished, request_started
from django.db import DatabaseError, connection
from django.db.backends.signals import connection_created
from psycopg.pq import TransactionStatus

TENANT_SETTING = "wayfarer.tenant_id"
SCOPE_SETTING = "wayfarer.scope"
SYSTEM_SCOPE_VALUE = "all"


@dataclass(frozen=True)
class Scope:
    tenant_id: int | None = None
    system: bool = False

    def settings(self) -> tuple[str, str]:
        # Empty strings, not NULL: a custom setting once set cannot go back to unset; the
        # policy reads '' as "none" (NULLIF).
        return (
            "" if self.tenant_id is None else str(self.tenant_id),
            SYSTEM_SCOPE_VALUE if self.system else "",
        )


NONE = Scope()
SYSTEM = Scope(system=True)
_UNKNOWN = Scope(tenant_id=-1)  # never wanted: whatever the server holds is sent over

_process_default: Scope = NONE
_scope: ContextVar[Scope | None] = ContextVar("wayfarer_rls_scope", default=None)
_before_request: ContextVar[Scope | None] = ContextVar("wayfarer_rls_before", default=None)
_sending: ContextVar[bool] = ContextVar("wayfarer_rls_sending", default=False)
# On psycopg's connection object: (the scope last sent, the atomic block it was sent in).
_APPLIED = "_wayfarer_rls_applied"


def current() -> Scope:
    scope = _scope.get()
    return _process_default if scope is None else scope


def process_default_set(scope: Scope) -> None:
    """The scope of this process outside requests (SYSTEM for workers, beat and commands)."""
    global _process_default
    _process_default = scope


def tenant_set(tenant_id: int) -> None:
    """The edge knows the tenant: from now on this request sees only its rows."""
    _scope.set(Scope(tenant_id=tenant_id))


def system_set() -> None:
    """Span tenants until the scope is changed again (an admin request)."""
    _scope.set(SYSTEM)


def restore(value: Scope) -> None:
    """Go back to a scope read earlier with `current()` (a task's start and end)."""
    _scope.set(value)


def restore_default() -> None:
    """Forget every scope set in this thread: the process default applies."""
    _scope.set(None)


@contextmanager
def scope(value: Scope) -> Iterator[None]:
    """Run the block in `value`, then go back to the scope before it."""
    before = current()
    _scope.set(value)
    try:
        yield
    finally:
        _scope.set(before)


def system_scope() -> Any:
    """`with system_scope():` — the block spans tenants."""
    return scope(SYSTEM)


def tenant_scope(tenant_id: int) -> Any:
    return scope(Scope(tenant_id=tenant_id))


@contextmanager
def edge_lookup() -> Iterator[None]:
    """The edge finding its tenant: the block runs in the system scope and ends by narrowing it
    with `tenant_set()`. If it raises, or finds no tenant, the scope goes back to what it was."""
    before = current()
    _scope.set(SYSTEM)
    try:
        yield
    except BaseException:
        _scope.set(before)
        raise
    if current() == SYSTEM:
        _scope.set(before)


def _innermost_block() -> object | None:
    # A test's own outer transaction is left out: it only rolls back at the end of the test, and
    # the tests' fixture (conftest.py) forgets what was sent then.
    for block in reversed(connection.atomic_blocks):
        if not getattr(block, "_from_testcase", False):
            return block
    return None


def _applied(raw: Any) -> Scope:
    # A server connection never scoped has neither setting: NONE.
    sent, block = getattr(raw, _APPLIED, (NONE, None))
    if block is not None and not any(b is block for b in connection.atomic_blocks):
        return _UNKNOWN  # its transaction or savepoint ended, perhaps rolled back
    return sent


def sync() -> None:
    """Make the open connection's setting the scope this thread wants, if it is not already.
    Call it before using psycopg directly (Django's cursors do it themselves: the execute
    wrapper). Under transaction pooling it can only scope the transaction that is open (there is
    nothing to scope between transactions): use `core.db.raw_cursor`, whose statements scope
    themselves."""
    raw = connection.connection
    if not transaction_pooling():
        _sync_session()
    elif (
        raw is not None
        and connection.vendor == "postgresql"
        and raw.info.transaction_status == TransactionStatus.INTRANS
    ):
        _pooled_scope_sync(raw)


def _sync_session() -> None:
    """The direct mode: the scope as a session setting, sent when it differs (module docstring)."""
    if _sending.get() or connection.connection is None or connection.vendor != "postgresql":
        return
    raw = connection.connection
    wanted = current()
    if _applied(raw) == wanted or connection.needs_rollback:
        return  # (an aborted transaction runs nothing until it is rolled back)
    tenant, system = wanted.settings()
    token = _sending.set(True)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT set_config(%s, %s, false), set_config(%s, %s, false)",
                [TENANT_SETTING, tenant, SCOPE_SETTING, system],
            )
    except DatabaseError:
        setattr(raw, _APPLIED, (_UNKNOWN, None))
        raise
    finally:
        _sending.reset(token)
    setattr(raw, _APPLIED, (wanted, _innermost_block()))


def _before_each_statement(
    execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
) -> Any:
    if context["connection"].alias == "default":
        _sync_session()
    return execute(sql, params, many, context)


# --- Transaction pooling (module docstring, last paragraph) ---------------------------------

POOLER_PGBOUNCER = "pgbouncer"

# What PostgreSQL refuses to run inside a transaction block.
_BARE = re.compile(
    r"\s*(?:VACUUM|CREATE\s+DATABASE|DROP\s+DATABASE|ALTER\s+SYSTEM|(?:CREATE|DROP)\s+TABLESPACE"
    r"|(?:CREATE|DROP|REINDEX|ALTER)\s[^;]*\bCONCURRENTLY\b)",
    re.IGNORECASE,
)


def transaction_pooling() -> bool:
    """Whether the app reaches PostgreSQL through a pooler in transaction mode
    (`DATABASE_POOLER=pgbouncer`): a server connection is this client's for one transaction."""
    return getattr(settings, "DATABASE_POOLER", "") == POOLER_PGBOUNCER


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _set_local_sql(values: list[tuple[str, str]]) -> str:
    # Literals, not parameters: a statement without parameters travels by the simple protocol,
    # which lets BEGIN share its round trip. The values are a tenant id, two constants and
    # settings.DATABASE_SERVER_SETTINGS.
    calls = (f"set_config({_literal(name)}, {_literal(value)}, true)" for name, value in values)
    return "SELECT " + ", ".join(calls)


def _pooled_send(raw: Any, *, begin: bool, server_settings: bool) -> None:
    """Send this thread's scope (and the server settings) for the current transaction; `begin`:
    open that transaction first, in the same round trip (autocommit)."""
    wanted = current()
    tenant, system = wanted.settings()
    values = [(TENANT_SETTING, tenant), (SCOPE_SETTING, system)]
    if server_settings:
        values += [
            (k, str(v)) for k, v in getattr(settings, "DATABASE_SERVER_SETTINGS", {}).items()
        ]
    sql = _set_local_sql(values)
    try:
        with connection.wrap_database_errors, psycopg.Cursor(raw) as cursor:
            cursor.execute(f"BEGIN; {sql}" if begin else sql)
    except DatabaseError:
        setattr(raw, _APPLIED, (_UNKNOWN, None))
        if begin:
            with contextlib.suppress(psycopg.Error):
                raw.rollback()
        raise
    setattr(raw, _APPLIED, (wanted, _innermost_block()))


def _pooled_scope_sync(raw: Any) -> None:
    """Inside an open transaction: send the scope again only if the thread's has changed."""
    if _applied(raw) != current() and not connection.needs_rollback:
        _pooled_send(raw, begin=False, server_settings=False)


@contextmanager
def pooled_statement(sql: object) -> Iterator[None]:
    """Transaction pooling: the block runs one statement on Django's connection, which then
    sees this thread's scope whether or not a transaction is open (core.db.raw_cursor's
    cursors and the execute wrapper use it)."""
    raw = connection.connection
    if _sending.get() or raw is None:
        yield
        return
    status = raw.info.transaction_status
    if status == TransactionStatus.INTRANS:
        _pooled_scope_sync(raw)
        yield
        return
    if status != TransactionStatus.IDLE or (isinstance(sql, str) and _BARE.match(sql)):
        yield  # an aborted transaction refuses it anyway; VACUUM & co. need no scope
        return
    if not raw.autocommit:  # an atomic block's first statement: psycopg sends BEGIN first
        _pooled_send(raw, begin=False, server_settings=True)
        yield
        return
    # Autocommit: the statement would be a transaction of its own, without the settings.
    _pooled_send(raw, begin=True, server_settings=True)
    try:
        yield
    except BaseException:
        with contextlib.suppress(psycopg.Error):
            raw.rollback()
        raise
    with connection.wrap_database_errors:
        raw.commit()  # (deferred constraints are checked here, as at the statement's end)


def _pooled_each_statement(
    execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
) -> Any:
    if context["connection"].alias != "default":
        return execute(sql, params, many, context)
    with pooled_statement(sql):
        return execute(sql, params, many, context)


def connection_state_forget() -> None:
    """Trust nothing about what the server holds: the next statement sends the scope first
    (tests, whose transaction rolls back under this module's feet)."""
    if connection.connection is not None and connection.vendor == "postgresql":
        setattr(connection.connection, _APPLIED, (_UNKNOWN, None))


def role_bypasses_rls() -> bool | None:
    """Whether the role the app connects as ignores row-level security (superuser or BYPASSRLS);
    None on SQLite."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user")
        row = cursor.fetchone()
    return bool(row and row[0])


def _connection_created(sender: Any, connection: Any, **kwargs: Any) -> None:
    # The wrapper of the mode in force when the connection opens (tests switch modes and
    # reconnect): the direct mode's costs nothing more than it did before pooling existed.
    if connection.vendor != "postgresql":
        return
    wrappers = connection.execute_wrappers
    wanted, other = (
        (_pooled_each_statement, _before_each_statement)
        if transaction_pooling()
        else (_before_each_statement, _pooled_each_statement)
    )
    if other in wrappers:
        wrappers.remove(other)
    if wanted not in wrappers:
        wrappers.insert(0, wanted)


def _request_started(sender: Any, **kwargs: Any) -> None:
    # A request starts seeing nothing; its edge narrows it to a tenant.
    _before_request.set(current())
    _scope.set(NONE)


def _request_finished(sender: Any, **kwargs: Any) -> None:
    # Back to what this thread had before: NONE in a web server (sent before the connection's
    # next statement, whichever request or thread that is), a test's own scope in tests.
    _scope.set(_before_request.get())
    _before_request.set(None)


connection_created.connect(_connection_created, dispatch_uid="core.rls.connection_created")
request_started.connect(_request_started, dispatch_uid="core.rls.request_started")
request_finished.connect(_request_finished, dispatch_uid="core.rls.request_finished")
