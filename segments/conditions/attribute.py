"""attribute: a test on one of the contact's fields or custom attributes.

{"type": "attribute", "field": "email" | "first_name" | … | "attributes.<key>",
 "operator": see rules.ATTRIBUTE_OPERATORS, "value": …}
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.db.models import CharField, Q
from django.db.models.functions import Lower

from audience.models import Contact
from segments import rules
from segments.conditions import builder, python, sql
from segments.registry import ConditionKind, Context, FormFields, RuleError, register, require

FIELD_LABELS = {
    "email": "Email",
    "phone": "Phone",
    "first_name": "First name",
    "last_name": "Last name",
    "user_id": "User id",
    "timezone": "Time zone",
    "locale": "Locale",
    "created_at": "First seen",
    "last_seen_at": "Last seen",
    "birthday": "Birthday",
    "cart": "Cart",
    "wishlist": "Wishlist",
}
CUSTOM_ATTRIBUTE = "attributes"  # the field select's "custom attribute" choice
LIST_FIELD_LABELS = {"exists": "has something in it", "not_exists": "is empty"}


def attribute_operators(field_key: str) -> list[str]:
    """The comparisons a profile field takes ("attributes.<key>" for custom attributes)."""
    if field_key.startswith("attributes."):
        return builder.TEXT_OPERATORS + builder.NUMBER_OPERATORS
    return {
        "text": builder.TEXT_OPERATORS,
        "date": builder.DATE_OPERATORS,
        "birthday": builder.BIRTHDAY_OPERATORS,
        "list": builder.LIST_OPERATORS,
    }.get(rules.CONTACT_FIELDS.get(field_key, ""), [])


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def birthdays_within(today: date, days: int) -> dict[int, set[int]]:
    """The (month, day) birthdays celebrated from `today` to `days` later, by month."""
    by_month: dict[int, set[int]] = {}
    for offset in range(min(int(days), 366) + 1):
        day = today + timedelta(days=offset)
        by_month.setdefault(day.month, set()).add(day.day)
        if day.month == 2 and day.day == 28 and not _leap(day.year):
            by_month[2].add(29)  # a 29 February birthday is celebrated on the 28th
    return by_month


@register
class Attribute(ConditionKind):
    name = "attribute"
    label = "Profile field"
    order = 10
    template = "segments/conditions/attribute.html"
    required_choices = (("field", "choose a field."), ("operator", "choose a comparison."))
    schema = {
        "type": "object",
        "required": ["field", "operator"],
        "properties": {
            "field": {
                "type": "string",
                "description": "a contact field ("
                + ", ".join(rules.CONTACT_FIELDS)
                + ") or attributes.<key>",
            },
            "operator": {"type": "string", "enum": sorted(rules.ATTRIBUTE_OPERATORS)},
            "value": {"description": "text, a number, true/false, a date, days or a list"},
        },
    }
    example = {"type": "attribute", "field": "email", "operator": "contains", "value": "@acme."}

    # --- the rule ------------------------------------------------------------------------------
    def validate(self, raw: dict[str, Any], path: str) -> dict[str, Any]:
        field = raw.get("field")
        require(isinstance(field, str) and field != "", "choose a field.", path)
        assert isinstance(field, str)
        if field.startswith("attributes."):
            key = field.removeprefix("attributes.")
            ok = bool(rules.ATTRIBUTE_KEY_RE.match(key)) and "__" not in key
            require(ok, f"“{key[:40]}” is not an attribute name.", path)
            field_kind = "json"
            allowed = rules.TEXT_OPERATORS | rules.NUMBER_OPERATORS
        else:
            require(field in rules.CONTACT_FIELDS, f"“{field[:40]}” is not a contact field.", path)
            field_kind = rules.CONTACT_FIELDS[field]
            allowed = {
                "text": rules.TEXT_OPERATORS,
                "date": rules.DATE_OPERATORS,
                "birthday": rules.BIRTHDAY_OPERATORS,
                "list": rules.LIST_OPERATORS,
            }[field_kind]
        operator = raw.get("operator")
        require(
            rules.among(operator, allowed),
            f"“{operator}” does not apply to {field}; use one of {', '.join(sorted(allowed))}.",
            path,
        )
        assert isinstance(operator, str)
        value = rules.check_value(field_kind, operator, raw.get("value"), path)
        return {"type": "attribute", "field": field, "operator": operator, "value": value}

    def describe(self, node: dict[str, Any], segment_names: dict[str, str]) -> str:
        return rules.comparison_words(node["field"], node["operator"], node["value"])

    # --- answering -----------------------------------------------------------------------------
    def q(self, node: dict[str, Any], ctx: Context) -> Q:
        field, operator, value = node["field"], node["operator"], node["value"]
        if field.startswith("attributes."):
            return sql.json_q("attributes", field.removeprefix("attributes."), operator, value)
        if field == "birthday":
            return self._birthday_q(operator, value, ctx)
        if field in ("cart", "wishlist"):
            q = Q(**{field: []})
            return ~q if operator == "exists" else q
        if field in ("created_at", "last_seen_at"):
            if operator == "exists":
                return Q(**{f"{field}__isnull": False})
            if operator == "not_exists":
                return Q(**{f"{field}__isnull": True})
            return sql.date_q(ctx, field, operator, value)
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
                q = Q(sql.lookup(lower, "in", [v.lower() for v in value]))
            return q if operator == "in_list" else ~q
        raise AssertionError(operator)

    @staticmethod
    def _birthday_q(operator: str, value: Any, ctx: Context) -> Q:
        if operator == "exists":
            return Q(birthday_month__isnull=False, birthday_day__isnull=False)
        if operator == "not_exists":
            return Q(birthday_month__isnull=True) | Q(birthday_day__isnull=True)
        if operator == "this_month":
            return Q(birthday_month=ctx.today.month)
        q = Q(pk__in=[])  # in_next_days: the (month, day) pairs, grouped by month
        for month, month_days in sorted(birthdays_within(ctx.today, value).items()):
            q |= Q(birthday_month=month, birthday_day__in=sorted(month_days))
        return q

    def evaluate(self, node: dict[str, Any], contact: Contact, ctx: Context) -> bool:
        field, operator, value = node["field"], node["operator"], node["value"]
        if field.startswith("attributes."):
            attributes = contact.attributes if isinstance(contact.attributes, dict) else {}
            key = field.removeprefix("attributes.")
            return python.json_test(attributes.get(key, python.MISSING), operator, value)
        if field == "birthday":
            month, day = contact.birthday_month, contact.birthday_day
            if operator == "exists":
                return month is not None and day is not None
            if operator == "not_exists":
                return month is None or day is None
            if operator == "this_month":
                return month == ctx.today.month
            return day in birthdays_within(ctx.today, value).get(month, set())  # type: ignore[arg-type]
        if field in ("cart", "wishlist"):
            empty = getattr(contact, field) == []
            return not empty if operator == "exists" else empty
        if field in ("created_at", "last_seen_at"):
            moment = getattr(contact, field)
            if operator in ("exists", "not_exists"):
                return (moment is not None) == (operator == "exists")
            return python.date_test(ctx, moment, operator, value)
        text = getattr(contact, field) or ""
        if operator in ("exists", "not_exists"):
            return (text != "") == (operator == "exists")
        if field == "email" and operator in ("in_list", "not_in_list"):
            listed = text in {v.lower() for v in value}  # as stored (lower case), as the SQL
            return listed if operator == "in_list" else not listed
        return python.text_test(text, operator, value)

    # --- the builder ---------------------------------------------------------------------------
    def new(self) -> dict[str, Any]:
        return {"type": "attribute", "field": "", "operator": "", "value": ""}

    def from_form(self, fields: FormFields) -> dict[str, Any]:
        key = fields.text("field")
        if key == CUSTOM_ATTRIBUTE:
            key = "attributes." + fields.text("attribute")
        operator = fields.text("operator")
        if operator not in attribute_operators(key):
            operator = ""  # the field changed and the comparison does not apply to it: choose again
        numeric = key.startswith("attributes.") and operator in rules.NUMBER_OPERATORS
        return {
            "type": "attribute",
            "field": key,
            "operator": operator,
            "value": builder.value_from(operator, fields.text("value"), numeric=numeric),
        }

    def form_check(self, node: dict[str, Any], path: str) -> None:
        super().form_check(node, path)
        if node["field"] == "attributes.":
            raise RuleError("name the custom attribute.", path=path)

    def form_node(self, node: dict[str, Any], built: Any) -> None:
        key = str(node.get("field") or "")
        operator = str(node.get("operator") or "")
        if key.startswith("attributes."):
            built.values["field"] = CUSTOM_ATTRIBUTE
            built.values["attribute"] = key.removeprefix("attributes.")
        labels = LIST_FIELD_LABELS if rules.CONTACT_FIELDS.get(key) == "list" else {}
        built.operators = [
            (o, labels.get(o) or builder.OPERATOR_LABELS[o]) for o in attribute_operators(key)
        ]
        numeric = key.startswith("attributes.") and operator in rules.NUMBER_OPERATORS
        built.value_input, built.value_suffix = builder.value_input(operator, numeric=numeric)

    def builder_choices(self, *, segments: list[tuple[str, str]]) -> dict[str, Any]:
        return {
            "fields": [
                *((key, builder.label(key, FIELD_LABELS)) for key in rules.CONTACT_FIELDS),
                (CUSTOM_ATTRIBUTE, "Custom attribute…"),
            ]
        }
