"""The dashboards' figures: what each is (the derived rates of ISSUE15 decision 6 among them)
with a one-line "how it is computed", how numbers and changes read, and what each page shows.
analytics/periods.py holds the period picker, analytics/dashboard_read.py reads a page's
figures through analytics.selectors (the daily rollups) in a constant few queries.

    MEASURES[key] -> Measure          what a figure is, how it is computed, how it reads
    change_of(measure, now, before)   the change against the previous period, in words too
    PAGES[key] -> Page                the dashboards: their cards and charts

A rate whose denominator is zero is None, and shows as "—", never as 0 %.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from audience.models import LifecycleStage

ZERO = Decimal(0)
Totals = Mapping[str, Decimal]

# --- numbers as people read them ---------------------------------------------------------------

MINUS = "\u2212"  # a real minus sign: the hyphen reads as a dash beside a number
DASH = "\u2014"  # a figure that cannot be computed (its denominator is zero)
NBSP = "\u00a0"  # between a number and its unit: "12.5 %" never breaks before the %


def _signed(text: str) -> str:
    return MINUS + text[1:] if text.startswith("-") else text


def format_count(value: Decimal | None) -> str:
    if value is None:
        return DASH
    return _signed(f"{value.quantize(Decimal(1), ROUND_HALF_UP):,}")


def format_money(value: Decimal | None) -> str:
    if value is None:
        return DASH
    return _signed(f"{value.quantize(Decimal('0.01'), ROUND_HALF_UP):,}")


def format_rate(value: Decimal | None) -> str:
    """A share (0-1) as a percentage: 12.3 %; below 10 % one more digit would not help."""
    if value is None:
        return DASH
    return _signed(f"{(value * 100).quantize(Decimal('0.1'), ROUND_HALF_UP)}{NBSP}%")


def format_score(value: Decimal | None) -> str:
    if value is None:
        return DASH
    return _signed(f"{value.quantize(Decimal(1), ROUND_HALF_UP)}")


FORMATS: dict[str, Callable[[Decimal | None], str]] = {
    "count": format_count,
    "money": format_money,
    "rate": format_rate,
    "score": format_score,
}


# --- what each figure is -----------------------------------------------------------------------


def ratio(numerator: Decimal, denominator: Decimal) -> Decimal | None:
    return numerator / denominator if denominator else None


def _email(metric: str) -> Callable[[Totals], Decimal | None]:
    """An email rate over the messages delivered, or over those sent when no delivery was
    tracked (a sender that reports no deliveries)."""

    def rate(t: Totals) -> Decimal | None:
        base = t["email_delivered"] or t["email_sent"]
        return ratio(t[metric], base)

    return rate


def _plain(metric: str) -> Callable[[Totals], Decimal | None]:
    return lambda t: t[metric]


def _complement(value: Decimal | None) -> Decimal | None:
    return None if value is None else 1 - value


@dataclass(frozen=True)
class Measure:
    key: str
    label: str
    kind: str  # count, money, rate or score (FORMATS)
    how: str  # the one line the page shows under the figure
    metrics: tuple[str, ...]  # the daily rollups it is computed from
    value: Callable[[Totals], Decimal | None]
    # Computed over all time up to each day (customers, lifetime value) rather than the period.
    cumulative: bool = False
    higher_is_better: bool = True

    def format(self, value: Decimal | None) -> str:
        return FORMATS[self.kind](value)


def _count(key: str, label: str, how: str, *, better: bool = True) -> Measure:
    return Measure(key, label, "count", how, (key,), _plain(key), higher_is_better=better)


_MEASURES = [
    # Traffic
    _count(
        "visitors", "Visitors", "Contacts with a tracked event that day, added up over the days."
    ),
    _count(
        "identified_visitors",
        "Identified visitors",
        "Visitors known by a user id or an email address, added up over the days.",
    ),
    Measure(
        "identified_share",
        "Identified share",
        "rate",
        "Identified visitors ÷ visitors.",
        ("identified_visitors", "visitors"),
        lambda t: ratio(t["identified_visitors"], t["visitors"]),
    ),
    _count("new_visitors", "New visitors", "Visitors seen for the first time that day."),
    _count("returning_visitors", "Returning visitors", "Visitors seen on an earlier day too."),
    _count("page_views", "Page views", "Page events recorded."),
    _count(
        "events",
        "Events",
        "Events your site, apps and API sent (not the ones Wayfarer records itself).",
    ),
    # Sales
    _count("orders", "Orders", "Order Completed events."),
    Measure(
        "revenue",
        "Revenue",
        "money",
        "The orders' revenue added up.",
        ("revenue",),
        _plain("revenue"),
    ),
    Measure(
        "conversion_rate",
        "Conversion rate",
        "rate",
        "Buyers ÷ visitors, each counted once a day.",
        ("buyers", "visitors"),
        lambda t: ratio(t["buyers"], t["visitors"]),
    ),
    Measure(
        "cart_abandonment",
        "Cart abandonment",
        "rate",
        "1 − orders ÷ checkouts started.",  # noqa: RUF001 — a minus sign, as printed
        ("orders", "checkouts"),
        lambda t: _complement(ratio(t["orders"], t["checkouts"])),
        higher_is_better=False,
    ),
    Measure(
        "average_order_value",
        "Average order value",
        "money",
        "Revenue ÷ orders.",
        ("revenue", "orders"),
        lambda t: ratio(t["revenue"], t["orders"]),
    ),
    Measure(
        "repeat_purchase_rate",
        "Repeat purchase rate",
        "rate",
        "Customers with two or more orders ÷ customers with one or more, since the first order.",
        ("second_orders", "first_orders"),
        lambda t: ratio(t["second_orders"], t["first_orders"]),
        cumulative=True,
    ),
    Measure(
        "customer_lifetime_value",
        "Customer lifetime value",
        "money",
        "All revenue ÷ customers (contacts with a first order), since the first order.",
        ("revenue", "first_orders"),
        lambda t: ratio(t["revenue"], t["first_orders"]),
        cumulative=True,
    ),
    Measure(
        "customers",
        "Customers",
        "count",
        "Contacts who have ordered at least once, up to the day.",
        ("first_orders",),
        _plain("first_orders"),
        cumulative=True,
    ),
    # Email and push
    _count("email_sent", "Emails sent", "Emails handed to the mail server."),
    _count("email_delivered", "Emails delivered", "Emails the mail server reported delivered."),
    Measure(
        "email_open_rate",
        "Open rate",
        "rate",
        "Emails opened (first open) ÷ delivered (÷ sent when no delivery is reported).",
        ("email_opened", "email_delivered", "email_sent"),
        _email("email_opened"),
    ),
    Measure(
        "email_click_rate",
        "Click-through rate",
        "rate",
        "Emails clicked (first click) ÷ delivered (÷ sent when no delivery is reported).",
        ("email_clicked", "email_delivered", "email_sent"),
        _email("email_clicked"),
    ),
    Measure(
        "email_unsubscribe_rate",
        "Unsubscribe rate",
        "rate",
        "Unsubscribes from emails ÷ delivered (÷ sent when no delivery is reported).",
        ("email_unsubscribed", "email_delivered", "email_sent"),
        _email("email_unsubscribed"),
        higher_is_better=False,
    ),
    Measure(
        "email_bounce_rate",
        "Bounce rate",
        "rate",
        "Emails bounced ÷ sent.",
        ("email_bounced", "email_sent"),
        lambda t: ratio(t["email_bounced"], t["email_sent"]),
        higher_is_better=False,
    ),
    _count("push_sent", "Push messages sent", "Web push messages handed to the push services."),
    Measure(
        "push_opt_in_rate",
        "Push opt-in rate",
        "rate",
        "Browsers subscribed to push ÷ visitors.",
        ("push_subscribed", "visitors"),
        lambda t: ratio(t["push_subscribed"], t["visitors"]),
    ),
    Measure(
        "push_click_rate",
        "Push click rate",
        "rate",
        "Push messages clicked ÷ sent.",
        ("push_clicked", "push_sent"),
        lambda t: ratio(t["push_clicked"], t["push_sent"]),
    ),
    Measure(
        "messages_sent",
        "Messages sent",
        "count",
        "Emails and push messages sent.",
        ("email_sent", "push_sent"),
        lambda t: t["email_sent"] + t["push_sent"],
    ),
    # NPS
    Measure(
        "nps",
        "Net Promoter Score",
        "score",
        "(Promoters − detractors) ÷ responses × 100, from −100 to +100.",  # noqa: RUF001
        ("nps_promoters", "nps_detractors", "nps_responses"),
        lambda t: _times_100(ratio(t["nps_promoters"] - t["nps_detractors"], t["nps_responses"])),
    ),
    _count("nps_responses", "NPS responses", "Answers to the 0-10 recommend question."),
    _count("nps_promoters", "Promoters", "Answers of 9 or 10."),
    _count("nps_passives", "Passives", "Answers of 7 or 8."),
    _count("nps_detractors", "Detractors", "Answers of 0 to 6.", better=False),
]


def _times_100(value: Decimal | None) -> Decimal | None:
    return None if value is None else value * 100


MEASURES: dict[str, Measure] = {m.key: m for m in _MEASURES}

# Churn and retention come from the nightly stage snapshot (stage_history), not the rollups.
CUSTOMER_STAGES = ("onboarding", "engagement", "retention", "advocacy")
CHURN = Measure(
    "churn_rate",
    "Churn (retention risk)",
    "rate",
    "Customers in the retention-risk stage ÷ customers (onboarding, engagement, retention "
    "risk and advocacy), at the end of the day.",
    (),
    lambda t: ratio(t["retention"], sum((t[s] for s in CUSTOMER_STAGES), ZERO)),
    higher_is_better=False,
)
RETENTION = Measure(
    "retention_rate",
    "Retention",
    "rate",
    "1 − churn: customers not at risk ÷ customers, at the end of the day.",  # noqa: RUF001
    (),
    lambda t: _complement(CHURN.value(t)),
)
STAGE_MEASURES = {CHURN.key: CHURN, RETENTION.key: RETENTION}
STAGE_LABELS: dict[str, str] = dict(LifecycleStage.choices)  # in journey order

# --- the change against the previous period ----------------------------------------------------


@dataclass(frozen=True)
class Change:
    text: str  # "+12.5 %", "-1.2 pp" (with a minus sign), "+3 points", "no change", "—"
    words: str  # the same for a screen reader and for whoever does not see colour
    direction: str  # up, down, flat or none
    tone: str  # good, bad or neutral: the colour, beside the words


def change_of(measure: Measure, current: Decimal | None, previous: Decimal | None) -> Change:
    if current is None or previous is None:
        return Change("no comparison", "no comparison", "none", "neutral")
    if measure.kind == "rate":
        delta = ((current - previous) * 100).quantize(Decimal("0.1"), ROUND_HALF_UP)
        unit, long_unit = f"{NBSP}pp", " percentage points"
    elif measure.kind == "score":
        delta = (current - previous).quantize(Decimal(1), ROUND_HALF_UP)
        unit, long_unit = " points", " points"
    elif previous == 0:
        if current == 0:
            return Change("no change", "no change", "flat", "neutral")
        return Change("new", "up from nothing", "up", "good" if measure.higher_is_better else "bad")
    else:
        delta = ((current - previous) / abs(previous) * 100).quantize(Decimal("0.1"), ROUND_HALF_UP)
        unit, long_unit = f"{NBSP}%", " %"
    if delta == 0:
        return Change("no change", "no change", "flat", "neutral")
    direction = "up" if delta > 0 else "down"
    better = (delta > 0) == measure.higher_is_better
    magnitude = f"{abs(delta):,}".removesuffix(".0")
    sign = "+" if delta > 0 else MINUS
    return Change(
        f"{sign}{magnitude}{unit}",
        f"{direction} {magnitude}{long_unit}",
        direction,
        "good" if better else "bad",
    )


# --- the pages ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChartSpec:
    key: str
    title: str
    kind: str  # line (one measure, the previous period dashed) or stack (counts per day)
    measures: tuple[str, ...]
    stages: bool = False  # measures from stage_history (STAGE_MEASURES)


@dataclass(frozen=True)
class Page:
    key: str  # its view and URL name: analytics_<key>
    title: str
    intro: str
    cards: tuple[str, ...]
    charts: tuple[ChartSpec, ...]
    stages: bool = False  # reads stage_history (churn, retention, the stages at the end)


PAGES: dict[str, Page] = {
    p.key: p
    for p in [
        Page(
            "traffic",
            "Traffic",
            "Who comes, and how many of them you know by name.",
            (
                "visitors",
                "identified_visitors",
                "identified_share",
                "new_visitors",
                "returning_visitors",
                "page_views",
            ),
            (
                ChartSpec("visitors", "Visitors per day", "line", ("visitors",)),
                ChartSpec(
                    "identified-share", "Identified share per day", "line", ("identified_share",)
                ),
                ChartSpec(
                    "new-returning",
                    "New and returning visitors per day",
                    "stack",
                    ("new_visitors", "returning_visitors"),
                ),
            ),
        ),
        Page(
            "sales",
            "Sales",
            "How visits turn into orders, and what customers are worth.",
            (
                "revenue",
                "orders",
                "conversion_rate",
                "cart_abandonment",
                "average_order_value",
                "repeat_purchase_rate",
                "customer_lifetime_value",
                "customers",
            ),
            (
                ChartSpec("revenue", "Revenue per day", "line", ("revenue",)),
                ChartSpec(
                    "conversion-rate", "Conversion rate per day", "line", ("conversion_rate",)
                ),
                ChartSpec(
                    "cart-abandonment", "Cart abandonment per day", "line", ("cart_abandonment",)
                ),
                ChartSpec(
                    "average-order-value",
                    "Average order value per day",
                    "line",
                    ("average_order_value",),
                ),
                ChartSpec(
                    "customer-lifetime-value",
                    "Customer lifetime value over time",
                    "line",
                    ("customer_lifetime_value",),
                ),
                ChartSpec(
                    "repeat-purchase-rate",
                    "Repeat purchase rate over time",
                    "line",
                    ("repeat_purchase_rate",),
                ),
            ),
        ),
        Page(
            "retention",
            "Retention",
            "How many customers stay active, and how many drift into retention risk.",
            ("churn_rate", "retention_rate"),
            (
                ChartSpec("churn", "Churn at the end of each day", "line", ("churn_rate",), True),
                ChartSpec(
                    "customers-by-stage",
                    "Customers by stage at the end of each day",
                    "stack",
                    CUSTOMER_STAGES,
                    True,
                ),
            ),
            stages=True,
        ),
        Page(
            "messages",
            "Messages",
            "What your emails and push messages reach.",
            (
                "email_sent",
                "email_open_rate",
                "email_click_rate",
                "email_unsubscribe_rate",
                "email_bounce_rate",
                "push_sent",
                "push_opt_in_rate",
                "push_click_rate",
            ),
            (
                ChartSpec("open-rate", "Email open rate per day", "line", ("email_open_rate",)),
                ChartSpec(
                    "click-rate", "Email click-through rate per day", "line", ("email_click_rate",)
                ),
                ChartSpec(
                    "unsubscribe-rate",
                    "Email unsubscribe rate per day",
                    "line",
                    ("email_unsubscribe_rate",),
                ),
                ChartSpec(
                    "bounce-rate", "Email bounce rate per day", "line", ("email_bounce_rate",)
                ),
                ChartSpec("push-opt-in", "Push opt-in rate per day", "line", ("push_opt_in_rate",)),
                ChartSpec("push-click", "Push click rate per day", "line", ("push_click_rate",)),
            ),
        ),
        Page(
            "nps",
            "NPS",
            "How likely customers say they are to recommend you.",
            ("nps", "nps_responses", "nps_promoters", "nps_passives", "nps_detractors"),
            (
                ChartSpec("nps", "Net Promoter Score per day", "line", ("nps",)),
                ChartSpec(
                    "responses",
                    "Answers per day",
                    "stack",
                    ("nps_promoters", "nps_passives", "nps_detractors"),
                ),
            ),
        ),
    ]
}


def measure_get(key: str) -> Measure:
    return STAGE_MEASURES.get(key) or MEASURES[key]


def series_label(key: str) -> str:
    return STAGE_LABELS.get(key) or measure_get(key).label
