"""Counting the SQL statements a piece of code sends, for the tests that pin hot paths whose cost
must not grow with the size of their input (tests/*/test_query_counts.py).

Django's query log (`django_assert_num_queries`) sees only statements sent through Django's
cursors. The set-based write paths also send statements on psycopg cursors of the same
connection (`raw_cursor()`: prepared statements, COPY), so on PostgreSQL the count is taken one
level lower, on psycopg's cursor class, which Django's cursors subclass too. On SQLite every
statement goes through Django, and its execute wrappers see them all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from django.db import connection


@contextmanager
def statements() -> Iterator[list[str]]:
    """The statements sent inside the block, in order (an `executemany` counts one per set of
    parameters, a COPY counts one)."""
    sent: list[str] = []
    if connection.vendor == "postgresql":
        with _psycopg_counted(sent):
            yield sent
    else:

        def wrapper(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
            if many:
                params = list(params)
                sent.extend([sql] * len(params))
            else:
                sent.append(sql)
            return execute(sql, params, many, context)

        with connection.execute_wrapper(wrapper):
            yield sent


@contextmanager
def _psycopg_counted(sent: list[str]) -> Iterator[None]:
    cursor = psycopg.Cursor
    execute, executemany, copy = cursor.execute, cursor.executemany, cursor.copy

    def counted_execute(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(_text(query))
        return execute(self, query, *args, **kwargs)

    def counted_executemany(self: Any, query: Any, params_seq: Any, *args: Any, **kw: Any) -> Any:
        params_seq = list(params_seq)
        sent.extend([_text(query)] * len(params_seq))
        return executemany(self, query, params_seq, *args, **kw)

    def counted_copy(self: Any, statement: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(_text(statement))
        return copy(self, statement, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cursor, "execute", counted_execute)
        patch.setattr(cursor, "executemany", counted_executemany)
        patch.setattr(cursor, "copy", counted_copy)
        yield


def _text(query: Any) -> str:
    return query if isinstance(query, str) else repr(query)


def statements_by_size(
    prepare: Callable[[int], Callable[[], object]], sizes: tuple[int, ...]
) -> dict[int, list[str]]:
    """For each size, `prepare(size)` sets the scene (not counted) and returns the step whose
    statements are counted."""
    found = {}
    for size in sizes:
        step = prepare(size)
        with statements() as sent:
            step()
        found[size] = list(sent)
    return found


def rls_statements(n: int) -> int:
    """The statements that set the row-level security scope on a path (core/rls.py): `n` on
    PostgreSQL, none on SQLite, which has no row-level security."""
    return n if connection.vendor == "postgresql" else 0


def assert_same_statements(
    found: dict[int, list[str]], *, pinned: dict[str, int], fewer_up_to: int = 0
) -> None:
    """Every size sent as many statements as the others, and that many is the number pinned for
    this database (`pinned` is by vendor; a vendor missing from it is only compared across
    sizes). Sizes up to `fewer_up_to` may send fewer, never more: a path with a fast lane for a
    few rows (events_insert's single INSERT … RETURNING instead of a sequence read and a COPY).
    On failure, the statements of the smallest and the largest size are shown: what repeats is
    what grows."""
    counts = {size: len(sent) for size, sent in found.items()}
    small, large = min(found), max(found)
    listing = "\n".join([f"-- size {small}:", *found[small], f"-- size {large}:", *found[large]])
    steady = {counts[size] for size in found if size > fewer_up_to}
    assert len(steady) == 1 and all(n <= counts[large] for n in counts.values()), (
        f"statements by input size: {counts}; they should not grow.\n{listing}"
    )
    expected = pinned.get(connection.vendor)
    if expected is not None:
        assert counts[large] == expected, (
            f"{counts[large]} statements whatever the size, pinned at {expected} on"
            f" {connection.vendor}: update the pin if the change is intended.\n{listing}"
        )
