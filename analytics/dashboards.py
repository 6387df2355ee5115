"""The dashboards' figures: the period a page shows, the derived rates (ISSUE15 decision 6)
with a one-line "how it is computed" each, the change against the previous period, and the
pages' contents. Every number is read through analytics.selectors (the daily rollups): a page
costs the same few queries whatever the size of the team.

    period_from(data, *, today) -> (Period, PeriodForm)     the picker: 7/30/90 days or a range
    MEASURES[key] -> Measure                                what a figure is and how it is computed
    PAGES[key] -> Page                                      the dashboards: their cards and charts
    page_read(*, tenant, page, period) -> PageData          every figure of one page (3-4 queries)

A rate whose denominator is zero is None, and shows as "—", never as 0 %.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django import forms

from analytics import selectors

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

# --- the period picker -------------------------------------------------------------------------

RANGES = [
    ("7", "Last 7 days"),
    ("30", "Last 30 days"),
    ("90", "Last 90 days"),
    ("custom", "Custom"),
]
DEFAULT_RANGE = "30"
MAX_DAYS = 366  # a custom range: at most a year (and its comparison year) per page


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive
    range: str = "custom"  # one of RANGES' keys

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def previous(self) -> Period:
        """The comparison: the same number of days just before."""
        end = self.start - timedelta(days=1)
        return Period(start=end - timedelta(days=self.days - 1), end=end, range=self.range)

    def dates(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range(self.days)]

    @property
    def label(self) -> str:
        return date_range_label(self.start, self.end)

    @property
    def comparison_words(self) -> str:
        """How the cards name the comparison: "the previous 30 days"."""
        return "the previous day" if self.days == 1 else f"the previous {self.days} days"


def date_label(day: date, *, year: bool = True) -> str:
    return f"{day.day} {day:%b}" + (f" {day.year}" if year else "")


def date_range_label(start: date, end: date) -> str:
    if start == end:
        return date_label(start)
    return f"{date_label(start, year=start.year != end.year)} \u2013 {date_label(end)}"


class PeriodForm(forms.Form):
    range = forms.ChoiceField(label="Period", choices=RANGES, required=False)
    start = forms.DateField(label="From", required=False, widget=forms.DateInput({"type": "date"}))
    end = forms.DateField(label="To", required=False, widget=forms.DateInput({"type": "date"}))

    def __init__(self, *args: Any, today: date, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.today = today
        for name in ("start", "end"):
            self.fields[name].widget.attrs["max"] = today.isoformat()

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        chosen = data.get("range") or DEFAULT_RANGE
        start, end = data.get("start"), data.get("end")
        if chosen != "custom" and (start or end) and not self.data.get("range"):
            chosen = "custom"  # dates alone (a bookmarked range) mean a custom range
        data["range"] = chosen
        if chosen != "custom" or self.errors:
            return data
        if start is None:
            self.add_error("start", "Choose the first day of the range.")
        if end is None:
            self.add_error("end", "Choose the last day of the range.")
        if start is None or end is None:
            return data
        if start > end:
            self.add_error("end", "The last day must not come before the first.")
        elif end > self.today:
            self.add_error("end", f"The last day can be today ({date_label(self.today)}) at most.")
        elif (end - start).days + 1 > MAX_DAYS:
            self.add_error("end", f"Choose at most {MAX_DAYS} days.")
        return data


def period_from(data: Mapping[str, Any], *, today: date) -> tuple[Period, PeriodForm]:
    """The period a page's query string asks for, and the bound form (with its errors: an
    invalid range falls back to the default period, and the page says why)."""
    form = PeriodForm({k: data.get(k, "") for k in ("range", "start", "end")}, today=today)
    if form.is_valid():
        chosen = form.cleaned_data["range"]
        if chosen == "custom":
            return Period(form.cleaned_data["start"], form.cleaned_data["end"], "custom"), form
    else:
        chosen = DEFAULT_RANGE
    days = int(chosen if chosen != "custom" else DEFAULT_RANGE)
    return Period(today - timedelta(days=days - 1), today, chosen), form


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
        "Orders from customers who had ordered before ÷ all orders, since the first order.",
        ("repeat_orders", "orders"),
        lambda t: ratio(t["repeat_orders"], t["orders"]),
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
STAGE_LABELS = {
    "awareness": "Awareness",
    "acquisition": "Acquisition",
    "onboarding": "Onboarding",
    "engagement": "Engagement",
    "retention": "Retention risk",
    "advocacy": "Advocacy",
}

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


# --- reading a page ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    measure: Measure
    value: Decimal | None
    previous: Decimal | None
    change: Change
    daily: list[Decimal | None]  # the period's values day by day (the sparkline)

    @property
    def display(self) -> str:
        return self.measure.format(self.value)

    @property
    def previous_display(self) -> str:
        return self.measure.format(self.previous)


@dataclass(frozen=True)
class Daily:
    """Values day by day for this period and the previous one (day i against day i)."""

    current: list[tuple[date, Decimal | None]]
    previous: list[tuple[date, Decimal | None]]


@dataclass
class PageData:
    page: Page
    period: Period
    figures: list[Figure]
    daily: dict[str, Daily]  # every measure and stage of the page, by key
    stages_at_end: list[tuple[str, int]] = field(default_factory=list)
    stages_day: date | None = None  # the day stages_at_end counts (the period's last snapshot)
    transitions: list[tuple[str, str, int]] = field(default_factory=list)


def _metrics_of(measures: Sequence[Measure]) -> list[str]:
    needed: dict[str, None] = {}
    for m in measures:
        needed.update(dict.fromkeys(m.metrics))
    return list(needed)


def _add(into: dict[str, Decimal], day: Mapping[str, Decimal]) -> None:
    for key, value in day.items():
        into[key] = into.get(key, ZERO) + value


class Rollups:
    """The rollups of a period and the one before it, read in one metric_series call (plus
    one metric_totals_until when a cumulative measure needs what came before)."""

    def __init__(
        self, *, tenant: Any, period: Period, metrics: Sequence[str], cumulative: bool
    ) -> None:
        self.period = period
        before = period.previous
        series = (
            selectors.metric_series(
                tenant=tenant, metrics=list(metrics), start=before.start, end=period.end
            )
            if metrics
            else {}
        )
        self.days: dict[date, dict[str, Decimal]] = {
            d: dict.fromkeys(metrics, ZERO) for d in (*before.dates(), *period.dates())
        }
        for metric, points in series.items():
            for day, value in points:
                if day in self.days:
                    self.days[day][metric] = Decimal(value)
        self.base: dict[str, Decimal] = dict.fromkeys(metrics, ZERO)
        if cumulative and metrics:
            until = selectors.metric_totals_until(
                tenant=tenant, metrics=list(metrics), end=before.start - timedelta(days=1)
            )
            self.base.update({k: Decimal(v) for k, v in until.items()})

    def totals(self, period: Period) -> dict[str, Decimal]:
        found = dict.fromkeys(self.base, ZERO)
        for day in period.dates():
            _add(found, self.days[day])
        return found

    def until(self, end: date) -> dict[str, Decimal]:
        found = dict(self.base)
        for day in self.period.previous.dates():
            if day <= end:
                _add(found, self.days[day])
        for day in self.period.dates():
            if day <= end:
                _add(found, self.days[day])
        return found

    def value(self, measure: Measure, period: Period) -> Decimal | None:
        return measure.value(self.until(period.end) if measure.cumulative else self.totals(period))

    def daily(self, measure: Measure, period: Period) -> list[tuple[date, Decimal | None]]:
        if not measure.cumulative:
            return [(d, measure.value(self.days[d])) for d in period.dates()]
        running = self.until(period.start - timedelta(days=1))
        found = []
        for d in period.dates():
            _add(running, self.days[d])
            found.append((d, measure.value(running)))
        return found


class StageDays:
    """stage_history over a period and the one before: contacts per stage at each day's end.
    A day without a snapshot (before analytics existed, a missed night) has no values."""

    def __init__(self, *, tenant: Any, period: Period) -> None:
        before = period.previous
        history = selectors.stage_history(tenant=tenant, start=before.start, end=period.end)
        self.days: dict[date, dict[str, Decimal]] = {}
        for stage, points in history.items():
            for day, count in points:
                self.days.setdefault(day, dict.fromkeys(STAGE_LABELS, ZERO))[stage] = Decimal(count)

    def _on(self, key: str, day: date) -> Decimal | None:
        counts = self.days.get(day)
        if counts is None:
            return None
        if key in STAGE_MEASURES:
            return STAGE_MEASURES[key].value(counts)
        return counts.get(key, ZERO)

    def daily(self, key: str, period: Period) -> list[tuple[date, Decimal | None]]:
        return [(d, self._on(key, d)) for d in period.dates()]

    def value(self, measure: Measure, period: Period) -> Decimal | None:
        """At the end of the period: its last day with a snapshot."""
        last = self.last_day(period)
        return None if last is None else self._on(measure.key, last)

    def last_day(self, period: Period) -> date | None:
        return max((d for d in self.days if period.start <= d <= period.end), default=None)


def page_read(*, tenant: Any, page: Page, period: Period) -> PageData:
    """Every figure of `page` for `period` and the previous period of the same length."""
    before = period.previous
    keys = {*page.cards, *(k for c in page.charts if not c.stages for k in c.measures)}
    rollup_measures = [MEASURES[k] for k in keys if k in MEASURES]
    rollups = Rollups(
        tenant=tenant,
        period=period,
        metrics=_metrics_of(rollup_measures),
        cumulative=any(m.cumulative for m in rollup_measures),
    )
    stage_days = StageDays(tenant=tenant, period=period) if page.stages else None

    daily: dict[str, Daily] = {}
    for m in rollup_measures:
        daily[m.key] = Daily(rollups.daily(m, period), rollups.daily(m, before))
    if stage_days is not None:
        for key in (*STAGE_MEASURES, *STAGE_LABELS):
            daily[key] = Daily(stage_days.daily(key, period), stage_days.daily(key, before))

    figures = []
    for key in page.cards:
        measure = measure_get(key)
        source: Rollups | StageDays | None = stage_days if key in STAGE_MEASURES else rollups
        assert source is not None
        value, previous = source.value(measure, period), source.value(measure, before)
        figures.append(
            Figure(
                measure,
                value,
                previous,
                change_of(measure, value, previous),
                [v for _, v in daily[key].current],
            )
        )
    data = PageData(page=page, period=period, figures=figures, daily=daily)
    if stage_days is not None:
        data.stages_day = stage_days.last_day(period)
        if data.stages_day is not None:
            end = stage_days.days[data.stages_day]
            data.stages_at_end = [(s, int(end[s])) for s in STAGE_LABELS]
        data.transitions = selectors.stage_transitions(
            tenant=tenant, start=period.start, end=period.end
        )
    return data
