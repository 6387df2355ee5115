"""Rule tree → one SQL query. `Compiler.q()` turns a validated tree into a Q over Contact (each
condition's part from its kind, segments/registry.py), so a segment's count, sample and
membership are all one query (event conditions become
`id IN (SELECT contact_id FROM audience_event … GROUP BY … HAVING …)` subqueries served by the
(tenant, name, occurred_at) index). Never a per-contact Python loop.

`scope` (contact ids) narrows the event subqueries too, so re-evaluating a segment for the
contacts one ingested batch touched costs index probes, not a scan of the tenant's events.
RFM quintiles are the exception: they rank every customer of the tenant whatever the scope.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Q, QuerySet

from audience.models import Contact, Event, Order
from segments import registry
from segments.registry import Context
from tenants.models import Tenant


class Compiler(Context):
    """A rule tree's query. Each condition's Q comes from its kind (segments/registry.py),
    compiled with this compiler as the context; the tree's logic (groups, negation, and the
    set-wise counting of an "all" group) is here."""

    def __init__(
        self, *, tenant: Tenant, scope: Sequence[int] | None = None, now: datetime | None = None
    ) -> None:
        super().__init__(tenant=tenant, scope=scope, now=now)

    # --- entry points ---------------------------------------------------------------------------
    def q(self, node: dict[str, Any]) -> Q:
        if node["type"] == "group":
            if not node["children"]:
                q = Q()  # the builder's empty root: everyone
            else:
                parts = [self.q(child) for child in node["children"]]
                q = parts[0]
                for part in parts[1:]:
                    q = q & part if node["match"] == "all" else q | part
            return ~q if node["negate"] and node["children"] else q
        return registry.get(node["type"]).q(node, self)

    def contacts(self, tree: dict[str, Any]) -> QuerySet[Contact]:
        qs = Contact.objects.filter(tenant=self.tenant)
        if self.scope is not None:
            qs = qs.filter(pk__in=self.scope)
        return qs.filter(self.q(tree))

    def count(self, tree: dict[str, Any]) -> int:
        """How many contacts match. Counted as `contacts(tree)` are selected, or, for an "all"
        group with an aggregate over events among its conditions, set-wise
        (`_pushed_down_sql`, else `_intersection_sql`) when that saves work
        (`_intersect_pays`)."""
        parts = self.intersection_parts(tree) if connection.vendor == "postgresql" else None
        if parts is not None and any(map(_aggregate, parts[0])) and self._intersect_pays(*parts):
            sql, params = self._pushed_down_sql(*parts) or self._intersection_sql(*parts)
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                return int(cursor.fetchone()[0])
        return self.contacts(tree).count()

    def _intersect_pays(self, sets: list[QuerySet[Any]], rows: list[Q]) -> bool:
        """A parallel join builds each set once per process (PostgreSQL's hash joins are not
        shared here), reading every event row behind it each time; the intersection builds it
        once but groups the ids of every part, the contacts' part included. With PostgreSQL's
        estimates: worth it when the extra builds would read more rows than it groups — the
        aggregate over a year of orders, yes; the few contacts who added to their cart today
        beside every contact with a cart, no (the join then starts from those few)."""
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('max_parallel_workers_per_gather')::int")
            workers = int(cursor.fetchone()[0])
        if workers == 0:  # no parallel plans: a join builds each set once too
            return False
        plans = [_plan(*subquery.query.sql_with_params()) for subquery in sets]
        grouped = sum(plan["Plan Rows"] for plan in plans)
        if rows:
            contacts = Contact.objects.filter(tenant=self.tenant).filter(*rows).values("pk")
            grouped += _plan(*contacts.query.sql_with_params())["Plan Rows"]
        rebuilt = workers * sum(_leaf_rows(plan) for plan in plans)
        return rebuilt > grouped

    def intersection_parts(
        self, tree: dict[str, Any]
    ) -> tuple[list[QuerySet[Any]], list[Q]] | None:
        """For an "all" group (not negated, no scope) with event-like conditions: their contact
        id subqueries, and the other conditions (tests on the contact's row). None when the
        tree is not worth counting that way."""
        if self.scope is not None or tree["type"] != "group":
            return None
        if tree["match"] != "all" or tree["negate"]:
            return None
        sets: list[QuerySet[Any]] = []
        rows: list[Q] = []
        for child in tree["children"]:
            q = self.q(child)
            subquery = _positive_subquery(q)
            if subquery is None:
                rows.append(q)
            else:
                sets.append(subquery)
        return (sets, rows) if sets and len(sets) + bool(rows) >= 2 else None

    def _pushed_down_sql(
        self, sets: list[QuerySet[Any]], rows: list[Q]
    ) -> tuple[str, list[Any]] | None:
        """With exactly one aggregate over events ("2+ orders in 365 days") and conditions on the
        contact's row, the aggregate is taken over the events of the contacts that pass those
        conditions only: a per-contact aggregate is the same whichever contacts are left out.
        PostgreSQL hashes the passing contacts once, shared by its workers (Parallel Hash), and
        aggregates a tenth of the events instead of all of them."""
        grouped = [s for s in sets if _aggregate(s)]
        if len(grouped) != 1 or not rows:
            return None
        others = [Q(pk__in=s) for s in sets if s is not grouped[0]]
        contacts = Contact.objects.filter(tenant=self.tenant).filter(*rows, *others).values("pk")
        pushed = grouped[0].filter(contact_id__in=contacts)
        sql, params = pushed.query.sql_with_params()
        return f"SELECT count(*) FROM ({sql}) AS matching", list(params)

    def _intersection_sql(self, sets: list[QuerySet[Any]], rows: list[Q]) -> tuple[str, list[Any]]:
        """Counts the contacts in every set (each a subquery of distinct contact ids) and
        passing every row condition: the parts go under one UNION ALL, and a contact counts
        when it appears in all of them. PostgreSQL's Parallel Append runs each part once,
        beside the scan of the contacts, where a join builds each set once per worker."""
        parts: list[str] = []
        params: list[Any] = []
        if rows:
            contacts = Contact.objects.filter(tenant=self.tenant).filter(*rows).values("pk")
            sql, p = contacts.query.sql_with_params()
            parts.append(f"SELECT part.id FROM ({sql}) AS part(id)")
            params += p
        for subquery in sets:
            sql, p = subquery.query.sql_with_params()
            distinct = "" if subquery.query.group_by else "DISTINCT "  # GROUP BY: unique already
            parts.append(f"SELECT {distinct}part.id FROM ({sql}) AS part(id)")
            params += p
        union = " UNION ALL ".join(parts)
        return (
            f"SELECT count(*) FROM (SELECT u.id FROM ({union}) AS u(id)"
            f" GROUP BY u.id HAVING count(*) = {len(parts)}) AS matching",
            params,
        )


def _plan(sql: str, params: Sequence[Any]) -> dict[str, Any]:
    """PostgreSQL's plan of `sql` (planned, not run), as EXPLAIN (FORMAT JSON) gives it."""
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        explained = cursor.fetchone()[0]
    explained = json.loads(explained) if isinstance(explained, str) else explained
    return explained[0]["Plan"]


def _leaf_rows(plan: dict[str, Any]) -> float:
    """The rows a plan reads: what its scans (the nodes without inputs) return."""
    children = plan.get("Plans") or []
    return sum(map(_leaf_rows, children)) if children else float(plan["Plan Rows"])


def _aggregate(subquery: QuerySet[Any]) -> bool:
    """Whether a set is an aggregate over events or orders (counts, sums, last dates per
    contact): the sets a parallel join rebuilds at a real cost. A plain list of contact ids is
    cheap to hash again, so sets without one keep the join."""
    return subquery.model in (Event, Order) and bool(subquery.query.group_by)


def _positive_subquery(q: Q) -> QuerySet[Any] | None:
    """The contact-id subquery of a condition compiled to exactly `Q(pk__in=<subquery>)`
    (event, metric, segment membership…), else None."""
    if q.negated or len(q.children) != 1 or not isinstance(q.children[0], tuple):
        return None
    lookup, value = q.children[0]
    return value if lookup == "pk__in" and isinstance(value, QuerySet) else None


def segment_count(*, tenant: Tenant, rules: dict[str, Any], now: datetime | None = None) -> int:
    """How many of the tenant's contacts match a validated rule tree."""
    return Compiler(tenant=tenant, now=now).count(rules)


def segment_contacts(
    *,
    tenant: Tenant,
    rules: dict[str, Any],
    scope: Sequence[int] | None = None,
    now: datetime | None = None,
) -> QuerySet[Contact]:
    """The tenant's contacts (within `scope`, if given) that match a validated rule tree."""
    return Compiler(tenant=tenant, scope=scope, now=now).contacts(rules)
