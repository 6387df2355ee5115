"""A brute-force evaluator of segment rule trees, for the property test of the compiler.

It reads a tenant's contacts and events into plain Python objects and decides every condition
contact by contact, written from what the rules mean (segments/rules.py) and not from
segments/compiler.py, so that the two can be compared on generated data:

- Days are calendar days in the tenant's time zone: "before D" is before D began there, "after D"
  is from the day after D, a window's "after" is from the start of that day and its "before" up
  to the start of that day. "Within the last N days" is the N times 24 hours before now.
- Text tests ignore case. A JSON value is tested as text in its JSON spelling (3, 2.5, true), a
  missing key as "" — so "is not …" holds for a contact without the key. Number tests take JSON
  numbers only; equality with a number or true/false compares JSON values of that type only.
- An order's value is its first number among total, revenue and value (else 0). Without orders
  a contact has 0 orders and spent 0, but no average and no last order date.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from audience.models import Consent, Contact, Event
from segments.models import SegmentMembership
from tenants.models import Tenant

ORDER = "Order Completed"
MISSING = object()


@dataclass
class EventRow:
    name: str
    properties: dict[str, Any]
    occurred_at: datetime


@dataclass
class ContactRow:
    pk: int
    fields: dict[str, Any]  # the contact's columns by name
    events: list[EventRow] = field(default_factory=list)
    segments: set[str] = field(default_factory=set)  # public ids of its segments
    email_suppressed: bool = False  # its address is on the tenant's suppression list
    push_subscribed: bool = False  # it has an active push subscription
    opt_in_required: bool = False  # the tenant's sending policy asks for explicit consent


def load(tenant: Tenant) -> list[ContactRow]:
    """Every contact of the tenant with its events and segment memberships."""
    contacts = {
        c.pk: ContactRow(pk=c.pk, fields={f.attname: getattr(c, f.attname) for f in c._meta.fields})
        for c in Contact.objects.filter(tenant=tenant)
    }
    for contact_id, name, properties, occurred_at in Event.objects.filter(
        tenant=tenant
    ).values_list("contact_id", "name", "properties", "occurred_at"):
        contacts[contact_id].events.append(EventRow(name, properties, occurred_at))
    for contact_id, public_id in SegmentMembership.objects.filter(tenant=tenant).values_list(
        "contact_id", "segment__public_id"
    ):
        contacts[contact_id].segments.add(str(public_id))
    # Reachability reads messaging's rows: the suppression list, push subscriptions, the policy.
    from messaging.models import PushSubscription, SendingPolicy, Suppression

    suppressed = set(Suppression.objects.filter(tenant=tenant).values_list("address", flat=True))
    subscribed = set(
        PushSubscription.objects.filter(tenant=tenant, active=True).values_list(
            "contact_id", flat=True
        )
    )
    policy = SendingPolicy.objects.filter(tenant=tenant).first()
    for row in contacts.values():
        row.email_suppressed = row.fields["email"].lower() in suppressed
        row.push_subscribed = row.pk in subscribed
        row.opt_in_required = bool(policy and policy.require_opt_in)
    return list(contacts.values())


def is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def as_text(value: object) -> str:
    """A JSON value as text tests read it."""
    if value is MISSING or value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value)  # 3, 2.5, 3.0, true


def json_test(value: object, operator: str, expected: Any) -> bool:
    """One test of a JSON value (MISSING when the key is absent)."""
    if operator == "exists":
        return value is not MISSING
    if operator == "not_exists":
        return value is MISSING
    if operator.startswith("not_"):
        return not json_test(value, operator.removeprefix("not_"), expected)
    if operator in ("gt", "gte", "lt", "lte"):
        return is_number(value) and compare(float(value), operator, expected)  # type: ignore[arg-type]
    if operator == "equals" and isinstance(expected, bool):
        return isinstance(value, bool) and value == expected
    if operator == "equals" and is_number(expected):
        return is_number(value) and value == expected
    text = as_text(value).lower()
    if operator == "equals":
        return text == expected.lower()
    if operator == "contains":
        return str(expected).lower() in text
    if operator == "starts_with":
        return text.startswith(str(expected).lower())
    if operator == "in_list":
        return text in {v.lower() for v in expected}
    raise AssertionError(operator)


def compare(value: float, operator: str, expected: float) -> bool:
    return {
        "gt": value > expected,
        "gte": value >= expected,
        "lt": value < expected,
        "lte": value <= expected,
        "equals": value == expected,
    }[operator]


class Reference:
    def __init__(self, *, timezone: str, now: datetime) -> None:
        self.zone = ZoneInfo(timezone)
        self.now = now
        self.today = now.astimezone(self.zone).date()

    def matches(self, node: dict[str, Any], contact: ContactRow) -> bool:
        if node["type"] == "group":
            if not node["children"]:
                return True
            results = [self.matches(child, contact) for child in node["children"]]
            found = all(results) if node["match"] == "all" else any(results)
            return not found if node["negate"] else found
        return getattr(self, node["type"])(node, contact)

    # --- time -------------------------------------------------------------------------------
    def midnight(self, day: str | date) -> datetime:
        day = date.fromisoformat(day) if isinstance(day, str) else day
        return datetime.combine(day, time(0), tzinfo=self.zone)

    def date_test(self, moment: datetime | None, operator: str, value: Any) -> bool:
        if operator == "exists":
            return moment is not None
        if operator == "not_exists":
            return moment is None
        if moment is None:
            return False
        if operator == "before":
            return moment < self.midnight(value)
        if operator == "after":
            return moment >= self.midnight(date.fromisoformat(value) + timedelta(days=1))
        if operator == "within_last_days":
            return moment >= self.now - timedelta(days=value)
        if operator == "more_than_days_ago":
            return moment < self.now - timedelta(days=value)
        raise AssertionError(operator)

    def in_window(self, event: EventRow, window: dict[str, Any] | None) -> bool:
        window = window or {}
        if "last_days" in window and event.occurred_at < self.now - timedelta(
            days=window["last_days"]
        ):
            return False
        if "after" in window and event.occurred_at < self.midnight(window["after"]):
            return False
        return not ("before" in window and event.occurred_at >= self.midnight(window["before"]))

    def next_birthday(self, month: int, day: int) -> date:
        """The first day from today on which the birthday is celebrated (29 February on the
        28th in common years)."""
        for year in range(self.today.year, self.today.year + 3):
            try:
                when = date(year, month, day)
            except ValueError:  # 29 February in a common year
                when = date(year, 2, 28)
            if when >= self.today:
                return when
        raise AssertionError((month, day))

    # --- condition kinds --------------------------------------------------------------------
    def attribute(self, node: dict[str, Any], contact: ContactRow) -> bool:
        field, operator, value = node["field"], node["operator"], node["value"]
        fields = contact.fields
        if field.startswith("attributes."):
            key = field.removeprefix("attributes.")
            return json_test(fields["attributes"].get(key, MISSING), operator, value)
        if field in ("cart", "wishlist"):
            return bool(fields[field]) == (operator == "exists")
        if field in ("created_at", "last_seen_at"):
            return self.date_test(fields[field], operator, value)
        if field == "birthday":
            month, day = fields["birthday_month"], fields["birthday_day"]
            known = month is not None and day is not None
            if operator in ("exists", "not_exists"):
                return known == (operator == "exists")
            if not known:
                return False
            if operator == "this_month":
                return month == self.today.month
            return (self.next_birthday(month, day) - self.today).days <= value
        text = fields[field]
        if operator == "exists":
            return text != ""
        if operator == "not_exists":
            return text == ""
        return json_test(text, operator, value)

    def event(self, node: dict[str, Any], contact: ContactRow) -> bool:
        times = sum(
            1
            for e in contact.events
            if e.name == node["event"]
            and self.in_window(e, node["window"])
            and all(
                json_test(e.properties.get(w["property"], MISSING), w["operator"], w["value"])
                for w in node["where"]
            )
        )
        count = node["count"]
        did = {
            "at_least": times >= count["value"],
            "at_most": times <= count["value"],
            "exactly": times == count["value"],
        }[count["operator"]]
        return did == node["did"]

    def event_time(self, node: dict[str, Any], contact: ContactRow) -> bool:
        moments = [e.occurred_at for e in contact.events if e.name == node["event"]]
        if not moments:
            return False
        moment = min(moments) if node["which"] == "first" else max(moments)
        return self.date_test(moment, node["operator"], node["value"])

    def metric(self, node: dict[str, Any], contact: ContactRow) -> bool:
        orders = [
            e for e in contact.events if e.name == ORDER and self.in_window(e, node["window"])
        ]
        metric, operator, value = node["metric"], node["operator"], node["value"]
        if metric == "last_order_date":
            return bool(orders) and self.date_test(
                max(o.occurred_at for o in orders), operator, value
            )
        values = [order_value(o.properties) for o in orders]
        if metric == "orders_count":
            measured = float(len(values))
        elif metric == "total_spent":
            measured = float(sum(values))
        elif not values:  # no average without orders
            return False
        else:
            measured = sum(values) / len(values)
        return compare(measured, operator, value)

    def reachable(self, node: dict[str, Any], contact: ContactRow) -> bool:
        # Marketing reach: an address not suppressed (or an active push subscription), and
        # consent not revoked — granted, where the tenant requires opt-in.
        fields = contact.fields
        if node["channel"] == "email":
            address = fields["email"] != "" and not contact.email_suppressed
            consent = fields["email_consent"]
        else:
            address = contact.push_subscribed
            consent = fields["push_consent"]
        if contact.opt_in_required:
            consents = consent == Consent.GRANTED
        else:
            consents = consent != Consent.REVOKED
        return (address and consents) == node["reachable"]

    def lifecycle(self, node: dict[str, Any], contact: ContactRow) -> bool:
        return (contact.fields["lifecycle_stage"] in node["value"]) == (node["operator"] == "in")

    def segment(self, node: dict[str, Any], contact: ContactRow) -> bool:
        return (node["segment"] in contact.segments) == node["member"]


def order_value(properties: dict[str, Any]) -> float:
    for key in ("total", "revenue", "value"):
        if is_number(properties.get(key)):
            return float(properties[key])
    return 0.0
