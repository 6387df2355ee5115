"""event and event_time: what a contact did, and when it first or last did it.

    {"type": "event", "event": "Order Completed", "did": true,
     "where": [{"property": "total", "operator": "gt", "value": 100}],
     "count": {"operator": "at_least" | "at_most" | "exactly", "value": 1},
     "window": {"last_days": 30} | {"after": "2026-01-01", "before": "2026-02-01"}}
    {"type": "event_time", "event": "…", "which": "first" | "last",
     "operator": "before" | "after" | "within_last_days" | "more_than_days_ago",
     "value": "2026-01-01" | 30}

Both compile to `id IN (SELECT contact_id FROM audience_event … [GROUP BY … HAVING …])`
(served by the (tenant, name, occurred_at) index) and evaluate with one small query over the
contact's own events. The order event ("Order Completed") reads the order ledger instead
(audience_order, one row per order event with its contact, time and properties: sql.events),
which keeps every order when retention removes the raw events, so "did not order" still means
never.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Max, Min, Q

from audience.models import Contact
from segments import rules
from segments.conditions import builder, python, sql
from segments.registry import ConditionKind, Context, FormFields, register, require

PROPERTY_OPERATORS = ["equals", "not_equals", "contains", "gt", "gte", "lt", "lte", "exists"]
COUNT_LABELS = {"at_least": "at least", "at_most": "at most", "exactly": "exactly"}
MAX_WHERE = 5
# Suggested (not required) event names: Segment's e-commerce spec, which ingestion speaks, and
# the events segments themselves record.
EVENT_SUGGESTIONS = [
    "Product Viewed",
    "Products Searched",
    "Product Added",
    "Product Removed",
    "Product Added to Wishlist",
    "Checkout Started",
    "Order Completed",
    "Segment Entered",
    "Segment Exited",
]


def _times_pass(times: int, count: dict[str, Any]) -> bool:
    n = count["value"]
    return {"at_least": times >= n, "at_most": times <= n, "exactly": times == n}[count["operator"]]


@register
class EventCondition(ConditionKind):
    name = "event"
    label = "Did an event"
    order = 20
    template = "segments/conditions/event.html"
    template_rows = True
    schema = {
        "type": "object",
        "required": ["event"],
        "properties": {
            "event": {"type": "string", "maxLength": 200},
            "did": {"type": "boolean", "default": True},
            "where": {
                "type": "array",
                "maxItems": 5,
                "items": {
                    "type": "object",
                    "properties": {
                        "property": {"type": "string"},
                        "operator": {"type": "string", "enum": sorted(rules.PROPERTY_OPERATORS)},
                        "value": {"description": "text, a number or true/false"},
                    },
                },
            },
            "count": {
                "type": "object",
                "properties": {
                    "operator": {"type": "string", "enum": sorted(rules.COUNT_OPERATORS)},
                    "value": {"type": "integer", "minimum": 0},
                },
            },
            "window": builder.WINDOW_SCHEMA,
        },
    }
    example = {"type": "event", "event": "Order Completed", "window": {"last_days": 30}}

    # --- the rule ------------------------------------------------------------------------------
    def validate(self, raw: dict[str, Any], path: str) -> dict[str, Any]:
        event = rules.text(raw.get("event"), "event", path)
        did = raw.get("did", True)
        require(isinstance(did, bool), "did must be true or false.", path)
        where = []
        raw_where = raw.get("where") or []
        require(
            isinstance(raw_where, list) and len(raw_where) <= 5,
            "where takes up to 5 filters.",
            path,
        )
        for item in raw_where:
            require(isinstance(item, dict), "each where filter must be an object.", path)
            prop = rules.text(item.get("property"), "where.property", path, max_length=100)
            op = item.get("operator")
            require(
                rules.among(op, rules.PROPERTY_OPERATORS),
                f"where.operator “{op}” is unknown.",
                path,
            )
            value = None
            if op in rules.NUMBER_OPERATORS:
                value = rules.number(item.get("value"), "where.value", path)
            elif op != "exists":
                v = item.get("value")
                ok = rules.scalar(v)
                require(ok, "where.value must be text, a number or true/false.", path)
                value = v
            where.append({"property": prop, "operator": op, "value": value})
        count = raw.get("count") or {"operator": "at_least", "value": 1}
        require(isinstance(count, dict), "count must be an object.", path)
        require(
            rules.among(count.get("operator"), rules.COUNT_OPERATORS),
            "count.operator must be at_least, at_most or exactly.",
            path,
        )
        count_value = rules.whole(count.get("value"), "count.value", path, low=0, high=100_000)
        return {
            "type": "event",
            "event": event,
            "did": did,
            "where": where,
            "count": {"operator": count["operator"], "value": count_value},
            "window": rules.window(raw.get("window"), path),
        }

    def describe(self, node: dict[str, Any], segment_names: dict[str, str]) -> str:
        count = node["count"]
        filters = " and ".join(
            f"{w['property']} {rules.OPERATOR_WORDS[w['operator']]}"
            + ("" if w["value"] is None else f" {rules.shown(w['value'])}")
            for w in node["where"]
        )
        body = f"“{node['event']}”" + (f" where {filters}" if filters else "")
        when = rules.window_words(node["window"])
        if not node["did"]:
            return f"did not do {body}{when}"
        if count == {"operator": "at_least", "value": 1}:
            return f"did {body}{when}"
        n = count["value"]
        how_often = "once" if n == 1 else f"{n} times"
        return f"did {body} {COUNT_LABELS[count['operator']]} {how_often}{when}"

    # --- answering -----------------------------------------------------------------------------
    def _events(self, node: dict[str, Any], ctx: Context) -> Any:
        found = sql.events(ctx, node["event"], node["window"])
        for item in node["where"]:
            found = found.filter(
                sql.json_q("properties", item["property"], item["operator"], item["value"])
            )
        return found

    def q(self, node: dict[str, Any], ctx: Context) -> Q:
        found = self._events(node, ctx)
        n = node["count"]["value"]
        operator = node["count"]["operator"]
        if operator == "at_least":
            did = (
                Q(pk__isnull=False)  # everyone; an empty Q() would vanish when negated or OR-ed
                if n == 0
                else (
                    Q(pk__in=found.values("contact_id"))
                    if n == 1
                    else sql.grouped(ctx, found, Count("id"), "gte", n)
                )
            )
        elif operator == "at_most":  # zero times counts as at most n
            did = ~sql.grouped(ctx, found, Count("id"), "gt", n)
        else:  # exactly
            did = (
                ~Q(pk__in=found.values("contact_id"))
                if n == 0
                else sql.grouped(ctx, found, Count("id"), "equals", n)
            )
        return did if node["did"] else ~did

    def evaluate(self, node: dict[str, Any], contact: Contact, ctx: Context) -> bool:
        count = node["count"]
        if count == {"operator": "at_least", "value": 0}:
            did = True
        else:
            found = sql.of_contact(self._events(node, ctx), contact.pk)
            if count["operator"] == "at_least" and count["value"] == 1:
                did = found.exists()
            else:
                # Counting stops one past what the test needs to know.
                times = found.order_by()[: count["value"] + 1].count()
                did = _times_pass(times, count)
        return did == node["did"]

    # --- the builder ---------------------------------------------------------------------------
    def new(self) -> dict[str, Any]:
        return {"type": "event", "event": "", "did": True, "where": [], "window": None}

    def from_form(self, fields: FormFields) -> dict[str, Any]:
        where = []
        for i in fields.indexes(r"where-(\d+)-operator")[:MAX_WHERE]:
            operator = fields.text(f"where-{i}-operator")
            text = fields.text(f"where-{i}-value")
            where.append(
                {
                    "property": fields.text(f"where-{i}-property"),
                    "operator": operator,
                    "value": None
                    if operator == "exists"
                    else builder.value_from(operator, text, numeric=False),
                }
            )
        return {
            "type": "event",
            "event": fields.text("event"),
            "did": fields.text("did", "yes") != "no",
            "where": where,
            "count": {
                "operator": fields.text("count_operator", "at_least"),
                "value": builder.int_or_text(fields.text("count_value", "1")),
            },
            "window": builder.window_from(fields),
        }

    def form_node(self, node: dict[str, Any], built: Any) -> None:
        count = node.get("count") if isinstance(node.get("count"), dict) else {}
        assert isinstance(count, dict)
        built.values["did"] = "yes" if node.get("did", True) else "no"
        built.values["count_operator"] = builder.text_of(count.get("operator") or "at_least")
        built.values["count_value"] = builder.text_of(count.get("value", 1))
        built.values.update(builder.window_values(node.get("window")))
        for item in node.get("where") or []:
            op = str(item.get("operator") or "")
            built.where.append(
                {
                    "property": builder.text_of(item.get("property")),
                    "operator": op,
                    "value": builder.text_of(item.get("value")),
                    "value_input": "" if op == "exists" else "text",
                }
            )
        built.max_where = MAX_WHERE

    def form_action(self, node: dict[str, Any], verb: str, extra: str) -> str | None:
        if verb == "add_where" and len(node["where"]) < MAX_WHERE:
            node["where"].append({"property": "", "operator": "equals", "value": ""})
            return f"where-{len(node['where']) - 1}-property"
        if verb == "remove_where" and extra.isdigit() and int(extra) < len(node["where"]):
            node["where"].pop(int(extra))
            return "add_where"
        return None

    def builder_choices(self, *, segments: list[tuple[str, str]]) -> dict[str, Any]:
        return {
            "property_operators": [(o, builder.OPERATOR_LABELS[o]) for o in PROPERTY_OPERATORS],
            "count_operators": list(COUNT_LABELS.items()),
            "windows": builder.WINDOW_CHOICES,
            "events": EVENT_SUGGESTIONS,
        }


@register
class EventTime(ConditionKind):
    name = "event_time"
    label = "When an event first/last happened"
    order = 30
    template = "segments/conditions/event_time.html"
    required_choices = (("operator", "choose a comparison."),)
    schema = {
        "type": "object",
        "required": ["event", "which", "operator", "value"],
        "properties": {
            "event": {"type": "string", "maxLength": 200},
            "which": {"type": "string", "enum": ["first", "last"]},
            "operator": {
                "type": "string",
                "enum": ["after", "before", "more_than_days_ago", "within_last_days"],
            },
            "value": {"description": "a date (before/after) or a number of days"},
        },
    }
    example = {
        "type": "event_time",
        "event": "Signed Up",
        "which": "first",
        "operator": "within_last_days",
        "value": 7,
    }

    def validate(self, raw: dict[str, Any], path: str) -> dict[str, Any]:
        event = rules.text(raw.get("event"), "event", path)
        which = raw.get("which")
        require(which in ("first", "last"), "which must be first or last.", path)
        operator = raw.get("operator")
        allowed = {"before", "after", "within_last_days", "more_than_days_ago"}
        require(
            rules.among(operator, allowed),
            f"operator must be one of {', '.join(sorted(allowed))}.",
            path,
        )
        assert isinstance(operator, str)
        return {
            "type": "event_time",
            "event": event,
            "which": which,
            "operator": operator,
            "value": rules.check_value("date", operator, raw.get("value"), path),
        }

    def describe(self, node: dict[str, Any], segment_names: dict[str, str]) -> str:
        subject = f"{node['which']} “{node['event']}”"
        return rules.comparison_words(subject, node["operator"], node["value"])

    def _aggregate(self, node: dict[str, Any]) -> Any:
        return Min("occurred_at") if node["which"] == "first" else Max("occurred_at")

    def q(self, node: dict[str, Any], ctx: Context) -> Q:
        found = sql.events(ctx, node["event"], None)
        return sql.grouped(ctx, found, self._aggregate(node), node["operator"], node["value"])

    def evaluate(self, node: dict[str, Any], contact: Contact, ctx: Context) -> bool:
        found = sql.of_contact(sql.events(ctx, node["event"], None), contact.pk)
        moment = found.aggregate(moment=self._aggregate(node))["moment"]
        return python.date_test(ctx, moment, node["operator"], node["value"])

    def new(self) -> dict[str, Any]:
        return {
            "type": "event_time",
            "event": "",
            "which": "last",
            "operator": "within_last_days",
            "value": "",
        }

    def from_form(self, fields: FormFields) -> dict[str, Any]:
        operator = fields.text("operator")
        return {
            "type": "event_time",
            "event": fields.text("event"),
            "which": fields.text("which", "last"),
            "operator": operator,
            "value": builder.value_from(operator, fields.text("value"), numeric=False),
        }

    def form_node(self, node: dict[str, Any], built: Any) -> None:
        built.operators = [(o, builder.OPERATOR_LABELS[o]) for o in builder.EVENT_TIME_OPERATORS]
        built.value_input, built.value_suffix = builder.value_input(str(node.get("operator") or ""))
