"""Rule tree → one SQL query. `segment_q()` turns a validated tree into a Q over Contact, so a
segment's count, sample and membership are all one query (event conditions become
`id IN (SELECT contact_id FROM audience_event … GROUP BY … HAVING …)` subqueries served by the
(tenant, name, occurred_at) index). Never a per-contact Python loop.

`scope` (contact ids) narrows the event subqueries too, so re-evaluating a segment for the
contacts one ingested batch touched costs index probes, not a scan of the tenant's events.
RFM quintiles are the exception: they rank every customer of the tenant whatever the scope.
"""

from __future__ import annotations

import json
import operator as op
from collections.abc import Callable, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import (
    Avg,
    BooleanField,
    CharField,
    Count,
    Expression,
    F,
    Field,
    FloatField,
    Lookup,
    Max,
    Min,
    Q,
    QuerySet,
    Sum,
    TextField,
    Value,
    Window,
)
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce, Lower, Ntile
from django.utils import timezone

from audience.models import Consent, Contact, Event
from segments.models import Membership
from segments.rules import ORDER_EVENT, RFM_DIMENSIONS
from tenants.models import Tenant

NUMBER_LOOKUPS = {"gt": "gt", "gte": "gte", "lt": "lt", "lte": "lte", "equals": "exact"}
NUMBER_TESTS: dict[str, Callable[[float, float], bool]] = {
    "gt": op.gt,
    "gte": op.ge,
    "lt": op.lt,
    "lte": op.le,
    "equals": op.eq,
}
ORDER_VALUE_KEYS = ("total", "revenue", "value")


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


class JSONBoolean(JSONNumber):
    """A JSON object's key as true/false, or NULL when it holds anything else (the text
    "true" included, which SQLite's JSON key lookups would take for true)."""

    output_field = BooleanField()

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, tuple[str, ...]]:
        column = compiler.compile(F(self.column).resolve_expression(compiler.query))[0]
        if connection.vendor == "postgresql":
            return (
                f"(CASE WHEN jsonb_typeof({column} -> %s) = 'boolean'"
                f" THEN ({column} ->> %s)::boolean END)",
                (self.key, self.key),
            )
        path = '$."' + self.key.replace('"', "") + '"'
        return (
            f"(CASE json_type({column}, %s) WHEN 'true' THEN 1 WHEN 'false' THEN 0 END)",
            (path,),
        )


class Compiler:
    def __init__(
        self, *, tenant: Tenant, scope: Sequence[int] | None = None, now: datetime | None = None
    ) -> None:
        self.tenant = tenant
        self.scope = list(scope) if scope is not None else None
        self.now = now or timezone.now()
        self.today = self.now.astimezone(ZoneInfo(tenant.timezone or "UTC")).date()

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
        return getattr(self, f"_{node['type']}")(node)

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

    # --- helpers --------------------------------------------------------------------------------
    def _start_of(self, day: date) -> datetime:
        tz = ZoneInfo(self.tenant.timezone or "UTC")
        return datetime.combine(day, time.min, tzinfo=tz)

    def _date_q(self, expression: str, operator: str, value: Any) -> Q:
        """Date tests on a datetime column (or aggregate alias); days count in the tenant's zone."""
        if operator == "within_last_days":
            return Q(**{f"{expression}__gte": self.now - timedelta(days=value)})
        if operator == "more_than_days_ago":
            return Q(**{f"{expression}__lt": self.now - timedelta(days=value)})
        day = date.fromisoformat(value)
        if operator in ("before", "lt"):
            return Q(**{f"{expression}__lt": self._start_of(day)})
        if operator in ("after", "gt"):
            return Q(**{f"{expression}__gte": self._start_of(day + timedelta(days=1))})
        if operator == "gte":
            return Q(**{f"{expression}__gte": self._start_of(day)})
        if operator == "lte":
            return Q(**{f"{expression}__lt": self._start_of(day + timedelta(days=1))})
        raise AssertionError(operator)

    def _events(self, name: str, window: dict[str, Any] | None) -> QuerySet[Event]:
        events = Event.objects.filter(tenant=self.tenant, name=name)
        if self.scope is not None:
            events = events.filter(contact_id__in=self.scope)
        if window:
            if "last_days" in window:
                events = events.filter(
                    occurred_at__gte=self.now - timedelta(days=window["last_days"])
                )
            if "after" in window:
                events = events.filter(
                    occurred_at__gte=self._start_of(date.fromisoformat(window["after"]))
                )
            if "before" in window:
                events = events.filter(
                    occurred_at__lt=self._start_of(date.fromisoformat(window["before"]))
                )
        return events

    @staticmethod
    def _json_q(column: str, key: str, operator: str, value: Any) -> Q:
        """Tests on one key of a JSON column (contact attributes, event properties). Every test is
        true or false, never SQL NULL (a missing key reads as "" for text tests and as no number
        for number tests), so "is not" and a negated group are exact complements."""
        if operator == "exists":
            return Q(**{f"{column}__has_key": key})
        if operator == "not_exists":
            return ~Q(**{f"{column}__has_key": key})
        if operator in ("gt", "gte", "lt", "lte") or (
            operator in ("equals", "not_equals") and not isinstance(value, str)
        ):
            # A number (or true/false) compares with JSON numbers (booleans) alone: 3 equals
            # 3.0, never "3" or true.
            typed = JSONBoolean(column, key) if isinstance(value, bool) else JSONNumber(column, key)
            lookup = NUMBER_LOOKUPS.get(operator, "exact")  # equals / not_equals: exact
            q = Q(_lookup(typed, lookup, value)) & Q(_lookup(typed, "isnull", False))
            return ~q if operator == "not_equals" else q
        # The value as text (numbers and true/false spelled as in JSON), without regard to case.
        text = Coalesce(
            Cast(KeyTextTransform(key, column), TextField()), Value("", output_field=TextField())
        )
        if operator in ("equals", "not_equals"):
            q = Q(_lookup(text, "iexact", value))
            return q if operator == "equals" else ~q
        if operator in ("contains", "not_contains"):
            q = Q(_lookup(text, "icontains", str(value)))
            return q if operator == "contains" else ~q
        if operator == "starts_with":
            return Q(_lookup(text, "istartswith", str(value)))
        if operator in ("in_list", "not_in_list"):
            lower = Lower(text)
            q = Q(_lookup(lower, "in", [str(v).lower() for v in value]))
            return q if operator == "in_list" else ~q
        raise AssertionError(operator)

    def _grouped(self, events: QuerySet[Event], aggregate: Any, operator: str, value: Any) -> Q:
        """Contacts whose aggregate over `events` passes the test (contacts without events are
        not in the subquery: the callers decide what they mean)."""
        grouped = events.order_by().values("contact_id").annotate(metric=aggregate)
        if operator in NUMBER_LOOKUPS:
            grouped = grouped.filter(**{f"metric__{NUMBER_LOOKUPS[operator]}": value})
        else:
            grouped = grouped.filter(self._date_q("metric", operator, value))
        return Q(pk__in=grouped.values("contact_id"))

    # --- condition kinds ------------------------------------------------------------------------
    def _attribute(self, node: dict[str, Any]) -> Q:
        field, operator, value = node["field"], node["operator"], node["value"]
        if field.startswith("attributes."):
            return self._json_q("attributes", field.removeprefix("attributes."), operator, value)
        if field == "birthday":
            return self._birthday(operator, value)
        if field in ("cart", "wishlist"):
            q = Q(**{field: []})
            return ~q if operator == "exists" else q
        if field in ("created_at", "last_seen_at"):
            if operator == "exists":
                return Q(**{f"{field}__isnull": False})
            if operator == "not_exists":
                return Q(**{f"{field}__isnull": True})
            return self._date_q(field, operator, value)
        if operator == "exists":
            return ~Q(**{field: ""})
        if operator == "not_exists":
            return Q(**{field: ""})
        if operator in ("equals", "not_equals"):
            q = Q(**{f"{field}__iexact": value})
            return q if operator == "equals" else ~q
        if operator in ("contains", "not_contains"):
            q = Q(**{f"{field}__icontains": value})
            return q if operator == "contains" else ~q
        if operator == "starts_with":
            return Q(**{f"{field}__istartswith": value})
        if operator in ("in_list", "not_in_list"):
            if field == "email":  # stored in lower case: compare as is, so the index serves
                q = Q(email__in=[v.lower() for v in value])
            else:  # without regard to case, as `equals`
                lower = Lower(field, output_field=CharField())
                q = Q(_lookup(lower, "in", [v.lower() for v in value]))
            return q if operator == "in_list" else ~q
        raise AssertionError(operator)

    def _birthday(self, operator: str, value: Any) -> Q:
        if operator == "exists":
            return Q(birthday_month__isnull=False, birthday_day__isnull=False)
        if operator == "not_exists":
            return Q(birthday_month__isnull=True) | Q(birthday_day__isnull=True)
        if operator == "this_month":
            return Q(birthday_month=self.today.month)
        # in_next_days: the (month, day) pairs from today to today + N, grouped by month.
        days = min(int(value), 366)
        by_month: dict[int, set[int]] = {}
        for offset in range(days + 1):
            day = self.today + timedelta(days=offset)
            by_month.setdefault(day.month, set()).add(day.day)
            if day.month == 2 and day.day == 28 and not _leap(day.year):
                by_month[2].add(29)  # a 29 February birthday is celebrated on the 28th
        q = Q(pk__in=[])
        for month, month_days in sorted(by_month.items()):
            q |= Q(birthday_month=month, birthday_day__in=sorted(month_days))
        return q

    def _event(self, node: dict[str, Any]) -> Q:
        events = self._events(node["event"], node["window"])
        for item in node["where"]:
            events = events.filter(
                self._json_q("properties", item["property"], item["operator"], item["value"])
            )
        count = node["count"]
        n = count["value"]
        if count["operator"] == "at_least":
            did = (
                Q(pk__isnull=False)  # everyone; an empty Q() would vanish when negated or OR-ed
                if n == 0
                else (
                    Q(pk__in=events.values("contact_id"))
                    if n == 1
                    else self._grouped(events, Count("id"), "gte", n)
                )
            )
        elif count["operator"] == "at_most":  # zero times counts as at most n
            did = ~self._grouped(events, Count("id"), "gt", n)
        else:  # exactly
            did = (
                ~Q(pk__in=events.values("contact_id"))
                if n == 0
                else self._grouped(events, Count("id"), "equals", n)
            )
        return did if node["did"] else ~did

    def _event_time(self, node: dict[str, Any]) -> Q:
        events = self._events(node["event"], None)
        aggregate = Min("occurred_at") if node["which"] == "first" else Max("occurred_at")
        return self._grouped(events, aggregate, node["operator"], node["value"])

    def _metric(self, node: dict[str, Any]) -> Q:
        orders = self._events(ORDER_EVENT, node["window"])
        metric, operator, value = node["metric"], node["operator"], node["value"]
        if metric == "last_order_date":
            return self._grouped(orders, Max("occurred_at"), operator, value)
        order_value = _order_value()
        if metric == "average_order_value":  # undefined without orders: never matches then
            return self._grouped(orders, Avg(order_value), operator, value)
        aggregate = Count("id") if metric == "orders_count" else Sum(order_value)
        matched = self._grouped(orders, aggregate, operator, value)
        if NUMBER_TESTS[operator](0.0, float(value)):
            # Contacts without orders have 0 orders and spent 0.
            matched |= ~Q(pk__in=orders.values("contact_id"))
        return matched

    def _rfm(self, node: dict[str, Any]) -> Q:
        """Customers (contacts with an order) ranked into fifths by last order time, order count
        and total spent, with NTILE(5) over every customer of the tenant: `scope` narrows only
        the contacts tested (in `contacts()`), never the ranking, or a contact's quintile would
        depend on which batch it was refreshed with. Ties are split by contact id (NTILE's
        way), so equal customers may straddle a boundary, but always the same way; and with
        fewer than five customers only the lower quintiles have anyone in them."""
        orders = Event.objects.filter(tenant=self.tenant, name=ORDER_EVENT)
        ranked = (
            orders.order_by()
            .values("contact_id")
            .annotate(last_order=Max("occurred_at"), orders=Count("id"), spent=Sum(_order_value()))
        )
        measures = {"recency": "last_order", "frequency": "orders", "monetary": "spent"}
        ranked = ranked.annotate(
            **{
                f"{dimension}_quintile": Window(
                    Ntile(5), order_by=[F(measures[dimension]).asc(), F("contact_id").asc()]
                )
                for dimension in RFM_DIMENSIONS
                if node[dimension] is not None
            }
        )
        ranked = ranked.filter(
            **{
                f"{dimension}_quintile__in": node[dimension]
                for dimension in RFM_DIMENSIONS
                if node[dimension] is not None
            }
        )
        return Q(pk__in=ranked.values("contact_id"))

    def _reachable(self, node: dict[str, Any]) -> Q:
        if node["channel"] == "email":
            q = ~Q(email="") & ~Q(email_consent=Consent.REVOKED)
        else:
            q = Q(push_consent=Consent.GRANTED)
        return q if node["reachable"] else ~q

    def _lifecycle(self, node: dict[str, Any]) -> Q:
        q = Q(lifecycle_stage__in=node["value"])
        return q if node["operator"] == "in" else ~q

    def _segment(self, node: dict[str, Any]) -> Q:
        members = Membership.objects.filter(tenant=self.tenant, segment__public_id=node["segment"])
        if self.scope is not None:
            members = members.filter(contact_id__in=self.scope)
        q = Q(pk__in=members.values("contact_id"))
        return q if node["member"] else ~q


def _lookup(expression: Any, name: str, value: Any) -> Lookup[Any]:
    """The lookup `name` of an expression, applied: `expression <name> value`."""
    lookup = expression.get_lookup(name)
    assert lookup is not None, name  # Django's own lookups, registered for these output fields
    return lookup(expression, value)


def _order_value() -> Coalesce:
    """An order's value: the first of its total / revenue / value properties that is a number."""
    return Coalesce(*(JSONNumber("properties", key) for key in ORDER_VALUE_KEYS), Value(0.0))


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


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
    """Whether a set is an aggregate over events (counts, sums, last dates per contact): the
    sets a parallel join rebuilds at a real cost. A plain list of contact ids is cheap to
    hash again, so sets without one keep the join."""
    return subquery.model is Event and bool(subquery.query.group_by)


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
