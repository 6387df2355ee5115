"""metric and rfm: tests on a contact's orders.

    {"type": "metric", "metric": "orders_count" | "total_spent" | "average_order_value"
                                 | "last_order_date",
     "operator": "gt" | "gte" | "lt" | "lte" | "equals"        (numbers)
               | "within_last_days" | "more_than_days_ago" | "before" | "after" (last order),
     "value": …, "window": {"last_days": 365} (optional)}
    {"type": "rfm", "recency": [4, 5], "frequency": [1, 2, 3, 4, 5], "monetary": [5]}

Both read the order ledger (audience.models.Order: one row per "Order Completed" event,
written with it and kept when retention removes the raw events), so a customer's order history
counts in full whatever the tenant's retention. An order's value is the first of its total /
revenue / value properties that is a number (audience/orders.py); an order without one counts
as 0. RFM quintiles (1-5, 5 = best: the most recent last order, the most orders, the most
spent) rank every customer of the tenant; any of the three may be left out, not all; contacts
without orders are in no quintile.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db.models import Avg, Count, DecimalField, F, Max, Q, Sum, Value, Window
from django.db.models.functions import Coalesce, Ntile

from audience.models import Contact, Order
from segments import rules
from segments.conditions import builder, python, sql
from segments.registry import ConditionKind, Context, FormFields, register, require

METRIC_LABELS = {
    "orders_count": "Number of orders",
    "total_spent": "Total spent",
    "average_order_value": "Average order value",
    "last_order_date": "Last order date",
}
METRIC_OPERATORS = ["gt", "gte", "lt", "lte", "equals"]
RFM_HELP = {
    "recency": "5 = ordered most recently",
    "frequency": "5 = orders most often",
    "monetary": "5 = spends the most",
}
QUINTILES = ("1", "2", "3", "4", "5")


def order_value() -> Coalesce:
    """An order's value, 0 when it has none (so it counts in sums and averages as before)."""
    return Coalesce(F("value"), Value(Decimal(0)), output_field=DecimalField())


def metric_operators(metric: str) -> list[str]:
    if metric == "last_order_date":
        return builder.EVENT_TIME_OPERATORS
    return METRIC_OPERATORS if metric in rules.METRICS else []


@register
class Metric(ConditionKind):
    name = "metric"
    label = "Order metric"
    order = 40
    template = "segments/conditions/metric.html"
    required_choices = (("metric", "choose a metric."), ("operator", "choose a comparison."))
    schema = {
        "type": "object",
        "required": ["metric", "operator", "value"],
        "properties": {
            "metric": {"type": "string", "enum": sorted(rules.METRICS)},
            "operator": {
                "type": "string",
                "enum": [
                    *METRIC_OPERATORS,
                    "within_last_days",
                    "more_than_days_ago",
                    "before",
                    "after",
                ],
            },
            "value": {"description": "a number, or for last_order_date a date or days"},
            "window": builder.WINDOW_SCHEMA,
        },
    }
    example = {
        "type": "metric",
        "metric": "total_spent",
        "operator": "gt",
        "value": 500,
        "window": {"last_days": 365},
    }

    def validate(self, raw: dict[str, Any], path: str) -> dict[str, Any]:
        metric = raw.get("metric")
        require(
            rules.among(metric, rules.METRICS),
            f"metric must be one of {', '.join(sorted(rules.METRICS))}.",
            path,
        )
        operator = raw.get("operator")
        if metric == "last_order_date":
            allowed = rules.DATE_OPERATORS - {"exists", "not_exists"}
        else:
            allowed = rules.NUMBER_OPERATORS | {"equals"}
        require(
            rules.among(operator, allowed),
            f"operator must be one of {', '.join(sorted(allowed))}.",
            path,
        )
        assert isinstance(operator, str)
        if metric == "last_order_date":
            value: object = rules.check_value("date", operator, raw.get("value"), path)
        else:
            value = rules.number(raw.get("value"), "value", path)
        return {
            "type": "metric",
            "metric": metric,
            "operator": operator,
            "value": value,
            "window": rules.window(raw.get("window"), path),
        }

    def describe(self, node: dict[str, Any], segment_names: dict[str, str]) -> str:
        subject = node["metric"].replace("_", " ")
        text = rules.comparison_words(subject, node["operator"], node["value"])
        return f"{text}{rules.window_words(node['window'])}"

    def q(self, node: dict[str, Any], ctx: Context) -> Q:
        orders = sql.orders(ctx, node["window"])
        metric, operator, value = node["metric"], node["operator"], node["value"]
        if metric == "last_order_date":
            return sql.grouped(ctx, orders, Max("occurred_at"), operator, value)
        if metric == "average_order_value":  # undefined without orders: never matches then
            return sql.grouped(ctx, orders, Avg(order_value()), operator, value)
        aggregate = Count("id") if metric == "orders_count" else Sum(order_value())
        matched = sql.grouped(ctx, orders, aggregate, operator, value)
        if python.NUMBER_TESTS[operator](0.0, float(value)):
            # Contacts without orders have 0 orders and spent 0.
            matched |= ~Q(pk__in=orders.values("contact_id"))
        return matched

    def evaluate(self, node: dict[str, Any], contact: Contact, ctx: Context) -> bool:
        orders = sql.of_contact(sql.orders(ctx, node["window"]), contact.pk)
        metric, operator, value = node["metric"], node["operator"], node["value"]
        if metric == "last_order_date":
            last = orders.aggregate(last=Max("occurred_at"))["last"]
            return python.date_test(ctx, last, operator, value)
        # The aggregate in SQL, as the compiled query takes it, so sums and averages of
        # fractions round alike.
        aggregate = {
            "orders_count": Count("id"),
            "total_spent": Sum(order_value()),
            "average_order_value": Avg(order_value()),
        }[metric]
        measured = orders.aggregate(measured=aggregate)["measured"]
        if measured is None:  # no orders: 0 spent, but no average
            if metric == "average_order_value":
                return False
            measured = 0.0
        return python.NUMBER_TESTS[operator](float(measured), value)

    def new(self) -> dict[str, Any]:
        return {"type": "metric", "metric": "orders_count", "operator": "gte", "value": ""}

    def from_form(self, fields: FormFields) -> dict[str, Any]:
        metric = fields.text("metric")
        operator = fields.text("operator")
        if operator not in metric_operators(metric):
            operator = ""
        return {
            "type": "metric",
            "metric": metric,
            "operator": operator,
            "value": builder.value_from(
                operator, fields.text("value"), numeric=metric != "last_order_date"
            ),
            "window": builder.window_from(fields),
        }

    def form_node(self, node: dict[str, Any], built: Any) -> None:
        metric = str(node.get("metric") or "")
        built.operators = [(o, builder.OPERATOR_LABELS[o]) for o in metric_operators(metric)]
        built.value_input, built.value_suffix = builder.value_input(
            str(node.get("operator") or ""), numeric=metric != "last_order_date"
        )
        built.values.update(builder.window_values(node.get("window")))

    def builder_choices(self, *, segments: list[tuple[str, str]]) -> dict[str, Any]:
        return {
            "metrics": [
                (key, builder.label(key, METRIC_LABELS))
                for key in [
                    *(k for k in METRIC_LABELS if k in rules.METRICS),
                    *sorted(rules.METRICS - set(METRIC_LABELS)),
                ]
            ],
            "windows": builder.WINDOW_CHOICES,
        }


def _quintiles(values: list[int]) -> str:
    """[4, 5] → '4-5', [1, 3, 5] → '1, 3, 5'."""
    if len(values) > 1 and values == list(range(values[0], values[-1] + 1)):
        return f"{values[0]}-{values[-1]}"
    return ", ".join(str(v) for v in values)


@register
class RFM(ConditionKind):
    """Recency / frequency / monetary quintiles over the tenant's customers' orders (ranked
    with NTILE(5)); 5 is the best fifth."""

    name = "rfm"
    label = "RFM group"
    order = 80
    template = "segments/conditions/rfm.html"
    schema = {
        "type": "object",
        "properties": {
            dimension: {
                "type": "array",
                "nullable": True,
                "items": {"type": "integer", "minimum": 1, "maximum": 5},
            }
            for dimension in rules.RFM_DIMENSIONS
        },
    }
    example = {"type": "rfm", "recency": [4, 5], "frequency": [4, 5], "monetary": None}

    def validate(self, raw: dict[str, Any], path: str) -> dict[str, Any]:
        node: dict[str, Any] = {"type": "rfm"}
        for dimension in rules.RFM_DIMENSIONS:
            value = raw.get(dimension)
            if value is None:
                node[dimension] = None
                continue
            ok = (
                isinstance(value, list)
                and 0 < len(value) <= 5
                and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
                and all(1 <= v <= 5 for v in value)
            )
            require(ok, f"{dimension} must list quintiles from 1 to 5.", path)
            node[dimension] = sorted(set(value))
        require(
            any(node[d] is not None for d in rules.RFM_DIMENSIONS),
            "choose quintiles for recency, frequency or monetary.",
            path,
        )
        return node

    def describe(self, node: dict[str, Any], segment_names: dict[str, str]) -> str:
        parts = [
            f"{dimension} {_quintiles(node[dimension])}"
            for dimension in rules.RFM_DIMENSIONS
            if node[dimension] is not None
        ]
        return f"RFM {', '.join(parts)}"

    def time_relative(self, node: dict[str, Any]) -> bool:
        # Quintiles are relative: one customer's order moves other customers' ranks, but an
        # incremental refresh re-evaluates only the contacts it was given; the scheduled
        # refresh brings the others along.
        return True

    def q(self, node: dict[str, Any], ctx: Context) -> Q:
        """Customers (contacts with an order) ranked into fifths by last order time, order count
        and total spent, with NTILE(5) over every customer of the tenant: `scope` narrows only
        the contacts tested (in the compiler's `contacts()`), never the ranking, or a contact's
        quintile would depend on which batch it was refreshed with. Ties are split by contact
        id (NTILE's way), so equal customers may straddle a boundary, but always the same way;
        and with fewer than five customers only the lower quintiles have anyone in them."""
        orders = Order.objects.filter(tenant=ctx.tenant)
        ranked = (
            orders.order_by()
            .values("contact_id")
            .annotate(last_order=Max("occurred_at"), orders=Count("id"), spent=Sum(order_value()))
        )
        measures = {"recency": "last_order", "frequency": "orders", "monetary": "spent"}
        ranked = ranked.annotate(
            **{
                f"{dimension}_quintile": Window(
                    Ntile(5), order_by=[F(measures[dimension]).asc(), F("contact_id").asc()]
                )
                for dimension in rules.RFM_DIMENSIONS
                if node[dimension] is not None
            }
        )
        ranked = ranked.filter(
            **{
                f"{dimension}_quintile__in": node[dimension]
                for dimension in rules.RFM_DIMENSIONS
                if node[dimension] is not None
            }
        )
        return Q(pk__in=ranked.values("contact_id"))

    def evaluate(self, node: dict[str, Any], contact: Contact, ctx: Context) -> bool:
        # A quintile is a rank among every customer: no query over one contact's orders can
        # tell it, so this is the compiled test for the one contact (one query, as costly as
        # the ranking).
        one = Contact.objects.filter(tenant=ctx.tenant, pk=contact.pk)
        return one.filter(self.q(node, ctx)).exists()

    def new(self) -> dict[str, Any]:
        return {"type": "rfm", **dict.fromkeys(rules.RFM_DIMENSIONS)}

    def from_form(self, fields: FormFields) -> dict[str, Any]:
        node: dict[str, Any] = {"type": "rfm"}
        for dimension in rules.RFM_DIMENSIONS:
            quintiles = [int(v) for v in fields.texts(dimension) if v in QUINTILES]
            node[dimension] = quintiles or None  # nothing ticked: any quintile
        return node

    def form_node(self, node: dict[str, Any], built: Any) -> None:
        for dimension in rules.RFM_DIMENSIONS:
            chosen = node.get(dimension)
            built.rfm.append(
                {
                    "dimension": dimension,
                    "help": RFM_HELP.get(dimension, ""),
                    "chosen": [str(v) for v in chosen] if isinstance(chosen, list) else [],
                }
            )

    def builder_choices(self, *, segments: list[tuple[str, str]]) -> dict[str, Any]:
        return {"quintiles": QUINTILES}
