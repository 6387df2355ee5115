"""Lookups of our own, registered on text fields when core is ready.

`field__prefix=value`: the text starts with `value`, case-sensitively, like `startswith`. On
PostgreSQL it is `field ^@ value` (starts_with) rather than `LIKE 'value%'`: `^@` is leakproof,
so under row-level security (core/rls.py) the planner may still answer it from a
`text_pattern_ops` index, where a LIKE has to wait until the policy has filtered the rows.
Elsewhere it is `startswith`.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models.lookups import Lookup, StartsWith


class Prefix(Lookup):
    lookup_name = "prefix"

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, tuple[Any, ...]]:
        return StartsWith(self.lhs, self.rhs).as_sql(compiler, connection)

    def as_postgresql(self, compiler: Any, connection: Any) -> tuple[str, tuple[Any, ...]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} ^@ {rhs}", (*lhs_params, *rhs_params)


def register() -> None:
    models.CharField.register_lookup(Prefix)
    models.TextField.register_lookup(Prefix)
