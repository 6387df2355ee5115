"""Raw database access for hot paths that Django's cursors make slow (PostgreSQL only).

Django's cursors bind parameters on the client side and never prepare statements. Set-based
writes and reads whose statement is the same for every batch go through `raw_cursor` and pass
`prepare=True`; many values travel as one JSON document (`json_text`) that PostgreSQL unpacks
(`jsonb_array_elements_text`, `jsonb_to_recordset`): one text parameter costs psycopg nothing to
send, where an array of a hundred strings costs about a millisecond of Python quoting.

Behind a pooler in transaction mode (`DATABASE_POOLER=pgbouncer`, core/rls.py) nothing is
prepared: a prepared statement lives on one server connection, and the next transaction may run
on another (PgBouncer before 1.21 does not track them). psycopg then ignores `prepare=True`
(config/settings.py sets no prepare threshold); `prepare_allowed()` says which mode is on.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import psycopg
from django.db import connection

from core import rls


def prepare_allowed() -> bool:
    """Whether statements may be prepared on the server: PostgreSQL, reached directly (not
    through a pooler in transaction mode)."""
    return connection.vendor == "postgresql" and not rls.transaction_pooling()


class _PooledCursor(psycopg.Cursor[Any]):
    """A cursor for transaction pooling: each statement runs with this thread's row-level
    security scope, inside a short transaction when none is open (core/rls.py)."""

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> _PooledCursor:
        with rls.pooled_statement(query):
            super().execute(query, params, **kwargs)
        return self

    def executemany(self, query: Any, params_seq: Any, **kwargs: Any) -> None:
        with rls.pooled_statement(query):
            super().executemany(query, params_seq, **kwargs)

    @contextmanager
    def copy(self, statement: Any, params: Any = None, **kwargs: Any) -> Iterator[Any]:
        with rls.pooled_statement(statement), super().copy(statement, params, **kwargs) as copy:
            yield copy


def raw_cursor() -> psycopg.Cursor[Any]:
    """A psycopg cursor with server-side binding on Django's connection (same transaction), to
    use inside `connection.wrap_database_errors`. Statements run with `prepare=True` are planned
    once per connection (not under transaction pooling: `prepare_allowed()`)."""
    connection.ensure_connection()
    if rls.transaction_pooling():
        return _PooledCursor(connection.connection)
    rls.sync()  # Django's execute wrappers do not see this cursor (core/rls.py)
    return psycopg.Cursor(connection.connection)


def json_text(value: object) -> str:
    """`value` as JSON text for one SQL parameter or COPY column."""
    # orjson writes datetimes as ISO 8601 with their microseconds (DjangoJSONEncoder would cut
    # them to milliseconds); anything else it does not know (Decimal) as its string.
    return orjson.dumps(value, default=str).decode()
