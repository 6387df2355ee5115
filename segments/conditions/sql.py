"""SQL building blocks the condition kinds compile with: typed JSON keys, date tests in the
tenant's zone, the events or orders of a condition (narrowed to the context's scope and its
window) and per-contact aggregates over them.

The order event is read from the order ledger wherever a condition names it: retention removes
raw events after the team's months, the ledger keeps every order (audience/orders.py), and
"never ordered" must not come to mean "not since the retention cutoff"."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.db.models import (
    BooleanField,
    F,
    Model,
    Q,
    QuerySet,
    TextField,
    Value,
)
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce, Lower
from django.db.models.lookups import Lookup

from audience.models import Event, Order
from audience.selectors import ORDER_EVENT
from core.expressions import JSONNumber
from segments.registry import Context

NUMBER_LOOKUPS = {"gt": "gt", "gte": "gte", "lt": "lt", "lte": "lte", "equals": "exact"}


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


def date_q(ctx: Context, expression: str, operator: str, value: Any) -> Q:
    """Date tests on a datetime column (or aggregate alias); days count in the tenant's zone."""
    if operator == "within_last_days":
        return Q(**{f"{expression}__gte": ctx.now - timedelta(days=value)})
    if operator == "more_than_days_ago":
        return Q(**{f"{expression}__lt": ctx.now - timedelta(days=value)})
    day = date.fromisoformat(value)
    if operator in ("before", "lt"):
        return Q(**{f"{expression}__lt": ctx.start_of(day)})
    if operator in ("after", "gt"):
        return Q(**{f"{expression}__gte": ctx.start_of(day + timedelta(days=1))})
    if operator == "gte":
        return Q(**{f"{expression}__gte": ctx.start_of(day)})
    if operator == "lte":
        return Q(**{f"{expression}__lt": ctx.start_of(day + timedelta(days=1))})
    raise AssertionError(operator)


def events(
    ctx: Context, name: str, window: dict[str, Any] | None
) -> QuerySet[Event] | QuerySet[Order]:
    """The tenant's events called `name` within `window` (and of the scope's contacts). For the
    order event, its rows in the order ledger: they carry the event's contact, time and
    properties, one per event (dedupe by message id, as events'), so filters, windows, counts
    and first/last times mean the same, and they outlive retention."""
    if name == ORDER_EVENT:
        return orders(ctx, window)
    return in_window(ctx, Event.objects.filter(tenant=ctx.tenant, name=name), window)


def orders(ctx: Context, window: dict[str, Any] | None) -> QuerySet[Order]:
    """The tenant's orders within `window` (and of the scope's contacts): the order ledger,
    which outlives the raw "Order Completed" events (audience/orders.py)."""
    return in_window(ctx, Order.objects.filter(tenant=ctx.tenant), window)


def in_window[M: Model](
    ctx: Context, found: QuerySet[M], window: dict[str, Any] | None
) -> QuerySet[M]:
    """`found` (rows with a contact and an `occurred_at`) narrowed to the scope and `window`."""
    if ctx.scope is not None:
        found = found.filter(contact_id__in=ctx.scope)
    if window:
        if "last_days" in window:
            found = found.filter(occurred_at__gte=ctx.now - timedelta(days=window["last_days"]))
        if "after" in window:
            found = found.filter(occurred_at__gte=ctx.start_of(date.fromisoformat(window["after"])))
        if "before" in window:
            found = found.filter(occurred_at__lt=ctx.start_of(date.fromisoformat(window["before"])))
    return found


def json_q(column: str, key: str, operator: str, value: Any) -> Q:
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
        name = NUMBER_LOOKUPS.get(operator, "exact")  # equals / not_equals: exact
        q = Q(lookup(typed, name, value)) & Q(lookup(typed, "isnull", False))
        return ~q if operator == "not_equals" else q
    # The value as text (numbers and true/false spelled as in JSON), without regard to case.
    text = Coalesce(
        Cast(KeyTextTransform(key, column), TextField()), Value("", output_field=TextField())
    )
    if operator in ("equals", "not_equals"):
        q = Q(lookup(text, "iexact", value))
        return q if operator == "equals" else ~q
    if operator in ("contains", "not_contains"):
        q = Q(lookup(text, "icontains", str(value)))
        return q if operator == "contains" else ~q
    if operator == "starts_with":
        return Q(lookup(text, "istartswith", str(value)))
    if operator in ("in_list", "not_in_list"):
        lower = Lower(text)
        q = Q(lookup(lower, "in", [str(v).lower() for v in value]))
        return q if operator == "in_list" else ~q
    raise AssertionError(operator)


def grouped(ctx: Context, found: QuerySet[Any], aggregate: Any, operator: str, value: Any) -> Q:
    """Contacts whose aggregate over `found` (events or orders) passes the test (contacts
    without any are not in the subquery: the callers decide what they mean)."""
    per_contact = found.order_by().values("contact_id").annotate(metric=aggregate)
    if operator in NUMBER_LOOKUPS:
        per_contact = per_contact.filter(**{f"metric__{NUMBER_LOOKUPS[operator]}": value})
    else:
        per_contact = per_contact.filter(date_q(ctx, "metric", operator, value))
    return Q(pk__in=per_contact.values("contact_id"))


def of_contact[M: Model](found: QuerySet[M], contact_pk: int) -> QuerySet[M]:
    """`found` narrowed to one contact (evaluation reads that contact's events or orders alone,
    through their (tenant, contact, occurred_at) index)."""
    return found.filter(contact_id=contact_pk)


def lookup(expression: Any, name: str, value: Any) -> Lookup[Any]:
    """The lookup `name` of an expression, applied: `expression <name> value`."""
    found = expression.get_lookup(name)
    assert found is not None, name  # Django's own lookups, registered for these output fields
    return found(expression, value)
