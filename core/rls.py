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

On SQLite everything here is a no-op: SQLite has no row-level security.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from django.core.signals import request_finished, request_started
from django.db import DatabaseError, connection
from django.db.backends.signals import connection_created

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
    Runs before every statement (the execute wrapper); call it before using psycopg directly."""
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
        sync()
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
    if connection.vendor == "postgresql" and _before_each_statement not in (
        connection.execute_wrappers
    ):
        connection.execute_wrappers.insert(0, _before_each_statement)


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
