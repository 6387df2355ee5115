"""Query expressions every app may use (both databases)."""

from __future__ import annotations

from typing import Any

from django.db.models import F, Field, FloatField
from django.db.models.expressions import Expression


class JSONNumber(Expression):
    """A JSON object's key as a number, or NULL when it holds anything else (so a stray string
    never breaks the query, as a plain cast would)."""

    output_field: Field[Any, Any] = FloatField()

    def __init__(self, column: str, key: str) -> None:
        super().__init__()
        self.column, self.key = column, key

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, tuple[str, ...]]:
        column = compiler.compile(F(self.column).resolve_expression(compiler.query))[0]
        if connection.vendor == "postgresql":
            return (
                f"(CASE WHEN jsonb_typeof({column} -> %s) = 'number'"
                f" THEN ({column} ->> %s)::double precision END)",
                (self.key, self.key),
            )
        path = '$."' + self.key.replace('"', "") + '"'
        return (
            f"(CASE WHEN json_type({column}, %s) IN ('integer', 'real')"
            f" THEN json_extract({column}, %s) END)",
            (path, path),
        )
