"""The daily metrics: their keys (stable: others code against them), labels and exact
definitions, and which events each counts (`event_metrics`, the one classification that both
the incremental rollups and the rebuild use).

A day is always the team's local day (`tenant.timezone`) of the event's `occurred_at` (an
order's, for the order metrics). Words used below:

- A *tracked* event comes from the team's integrations: the browser and server calls of the
  tracking API (/v1/*), the REST API's events, the push subscription. Every event Wayfarer
  records about a contact itself (a message outcome, a segment entry, a lifecycle stage change,
  a price drop…) is a *fact*: `audience.services.events_record` stores those, and only those,
  under a message id that starts with "wf:" (FACT_PREFIX). Tracked events are the visits.
- A contact is *identified* when it has a user id or an email address (now: a visitor who
  identifies later makes their earlier days identified too, as their anonymous history then
  belongs to a known person).
- A contact is *new* on the local day its profile was created (`Contact.created_at`; when two
  profiles merge, the earlier of theirs).
- Orders are the order ledger's (`audience.models.Order`: every "Order Completed" event once
  per message id, kept beyond event retention); an order's value is the ledger's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from audience.selectors import STAGE_CHANGED as STAGE_CHANGED  # re-exported: the rollups use it

FACT_PREFIX = "wf:"  # audience.services.Fact.message_id

# Event names (the producers' constants; tests/analytics hold these to them).
ORDER_COMPLETED = "Order Completed"  # audience.orders.ORDER_EVENT
PRODUCT_VIEWED = "Product Viewed"
PRODUCT_ADDED = "Product Added"
CHECKOUT_STARTED = "Checkout Started"
PUSH_SUBSCRIBED = "Push Subscribed"  # messaging.push.PUSH_SUBSCRIBED (a tracked event)
NPS_SUBMITTED = "NPS Submitted"  # journeys/presets.py's NPS survey: a numeric `score`, 0-10
# personalisation.surveys.models.SURVEY_ANSWERED: an answer to a hosted or embedded survey, a
# fact Wayfarer records (its NPS answers carry `score` 0-10, its short surveys' none).
SURVEY_ANSWERED = "Survey Answered"
NPS_EVENTS = (NPS_SUBMITTED, SURVEY_ANSWERED)
MESSAGING = "messaging"  # messaging.outcomes.SOURCE: the source of every message outcome
EMAIL_SENT = "Email Sent"
EMAIL_DELIVERED = "Email Delivered"
EMAIL_OPENED = "Email Opened"
EMAIL_CLICKED = "Email Link Clicked"
EMAIL_BOUNCED = "Email Bounced"
EMAIL_COMPLAINED = "Email Marked as Spam"
PUSH_SENT = "Push Sent"
PUSH_CLICKED = "Push Clicked"
UNSUBSCRIBED = "Unsubscribed"


class Metric(NamedTuple):
    key: str
    label: str
    definition: str
    money: bool = False  # a sum of order values, not a count


METRICS: tuple[Metric, ...] = (
    Metric(
        "visitors",
        "Visitors",
        "Contacts who did at least one tracked event that day (integrations' events, not facts).",
    ),
    Metric(
        "identified_visitors",
        "Identified visitors",
        "Visitors who are identified: their contact has a user id or an email address.",
    ),
    Metric("new_visitors", "New visitors", "Visitors whose contact was created that day."),
    Metric(
        "returning_visitors",
        "Returning visitors",
        "Visitors whose contact was created on an earlier day.",
    ),
    Metric("events", "Events", "Tracked events (facts Wayfarer records are not counted)."),
    Metric("page_views", "Page views", "Tracked page calls."),
    Metric("product_views", "Product views", "Tracked “Product Viewed” events."),
    Metric("carts", "Carts", "Contacts who added a product to their cart (“Product Added”)."),
    Metric("checkouts", "Checkouts", "Tracked “Checkout Started” events."),
    Metric("orders", "Orders", "Orders completed (the order ledger: each order once)."),
    Metric("revenue", "Revenue", "The value of the day's orders (no value counts 0).", True),
    Metric("buyers", "Buyers", "Contacts who completed at least one order."),
    Metric("first_orders", "First orders", "Contacts whose first order ever was that day."),
    Metric(
        "second_orders",
        "Second orders",
        "Contacts whose second order ever was that day (summed over all time: repeat customers).",
    ),
    Metric(
        "repeat_orders",
        "Repeat orders",
        "Orders that were not their contact's first order ever (orders minus first orders).",
    ),
    Metric("email_sent", "Emails sent", "Emails handed to the email provider."),
    Metric("email_delivered", "Emails delivered", "Emails the provider reported delivered."),
    Metric("email_opened", "Emails opened", "Emails opened for the first time that day."),
    Metric("email_clicked", "Emails clicked", "Emails whose first link click was that day."),
    Metric("email_unsubscribed", "Email unsubscribes", "Contacts who revoked their email consent."),
    Metric("email_bounced", "Emails bounced", "Emails the provider reported bounced."),
    Metric("email_complained", "Spam complaints", "Emails their reader marked as spam."),
    Metric("push_sent", "Push notifications sent", "Push notifications sent."),
    Metric("push_clicked", "Push notifications clicked", "Notifications first clicked that day."),
    Metric(
        "push_subscribed",
        "Push subscriptions",
        "Browsers that allowed notifications (“Push Subscribed”).",
    ),
    Metric(
        "nps_responses",
        "NPS responses",
        "“NPS Submitted” and “Survey Answered” events whose `score` is a number from 0 to 10.",
    ),
    Metric("nps_promoters", "NPS promoters", "NPS responses scoring 9 or more."),
    Metric("nps_passives", "NPS passives", "NPS responses scoring 7 or more, under 9."),
    Metric("nps_detractors", "NPS detractors", "NPS responses scoring under 7."),
)
METRIC_KEYS: tuple[str, ...] = tuple(m.key for m in METRICS)
BY_KEY: dict[str, Metric] = {m.key: m for m in METRICS}

# Metrics counted one per event (`event_metrics`); the others come from ActiveDay (distinct
# contacts), MessageFirst (first clicks) and the order ledger.
VISIT_METRICS = ("visitors", "identified_visitors", "new_visitors", "returning_visitors")
ORDER_METRICS = ("orders", "revenue", "buyers", "first_orders", "second_orders", "repeat_orders")
FIRST_CLICKS = {EMAIL_CLICKED: "email_clicked", PUSH_CLICKED: "push_clicked"}

_MESSAGING_COUNTS = {
    EMAIL_SENT: "email_sent",
    EMAIL_DELIVERED: "email_delivered",
    EMAIL_OPENED: "email_opened",  # recorded once per delivery: every one is the first open
    EMAIL_BOUNCED: "email_bounced",
    EMAIL_COMPLAINED: "email_complained",
    PUSH_SENT: "push_sent",
}
_TRACKED_COUNTS = {
    PRODUCT_VIEWED: "product_views",
    CHECKOUT_STARTED: "checkouts",
    PUSH_SUBSCRIBED: "push_subscribed",
}


def is_fact(message_id: str) -> bool:
    return message_id.startswith(FACT_PREFIX)


def nps_class(properties: Mapping[str, Any]) -> str:
    """ "promoter", "passive" or "detractor" for a valid score (a JSON number from 0 to 10),
    else ""."""
    score = properties.get("score") if isinstance(properties, Mapping) else None
    if isinstance(score, bool) or not isinstance(score, int | float):
        return ""
    if not 0 <= score <= 10:  # NaN fails too
        return ""
    return "promoter" if score >= 9 else "passive" if score >= 7 else "detractor"


def event_metrics(
    *, type: str, name: str, fact: bool, source: str, channel: str = "", nps: str = ""
) -> tuple[str, ...]:
    """The per-event metrics one stored event adds 1 to. `fact`: its message id is a fact's;
    `channel`: its `channel` property (Unsubscribed); `nps`: `nps_class` of its properties."""
    if fact:
        if name == SURVEY_ANSWERED and nps:  # the surveys' answers (their source: "surveys")
            return ("nps_responses", f"nps_{nps}s")
        if source != MESSAGING:
            return ()
        if name in _MESSAGING_COUNTS:
            return (_MESSAGING_COUNTS[name],)
        if name == UNSUBSCRIBED and channel == "email":
            return ("email_unsubscribed",)
        return ()
    found = ["events"]
    if type == "page":
        found.append("page_views")
    if name in _TRACKED_COUNTS:
        found.append(_TRACKED_COUNTS[name])
    elif name in NPS_EVENTS and nps:
        found += ["nps_responses", f"nps_{nps}s"]
    return tuple(found)


def text_property(properties: Mapping[str, Any], key: str) -> str:
    """A property's value when it is a string (the SQL of the rebuild reads it the same way)."""
    value = properties.get(key) if isinstance(properties, Mapping) else None
    return value if isinstance(value, str) else ""
