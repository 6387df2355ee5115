"""Raw database access for hot paths that Django's cursors make slow (PostgreSQL only).

Django's cursors bind parameters on the client side and never prepare statements. Set-based
writes and reads whose statement is the same for every batch go through `raw_cursor` and pass
`prepare=True`; many values travel as one JSON document (`json_text`) that PostgreSQL unpacks
(`jsonb_array_elements_text`, `jsonb_to_recordset`): one text parameter costs psycopg nothing to
send, where an array of a hundred strings costs about a millisecond of Python quoting.
"""

from __future__ import annotations

from typing import Any

import orjson
import psycopg
from django.db import connection

from core import rls


def raw_cursor() -> psycopg.Cursor[Any]:
    """A psycopg cursor with server-side binding on Django's connection (same transaction), to
    use inside `connection.wrap_database_errors`. Statements run with `prepare=True` are planned
    once per connection."""
    connection.ensure_connection()
    rls.sync()  # Django's execute wrappers do not see this cursor (core/rls.py)
    return psycopg.Cursor(connection.connection)


def json_text(value: object) -> str:
    """`value` as JSON text for one SQL parameter or COPY column."""
    # orjson writes datetimes as ISO 8601 with their microseconds (DjangoJSONEncoder would cut
    # them to milliseconds); anything else it does not know (Decimal) as its string.
    return orjson.dumps(value, default=str).decode()
