"""The recommendation report: per placement and strategy, how often recommendations were
served and clicked, and the orders and revenue their clicks brought.

Read off the events (`Recommendation Served`, `Recommendation Clicked`) and the order ledger:
an order is attributed to a click when it holds the clicked sku and was completed by the same
contact within ATTRIBUTION_DAYS after the click (the latest such click, if several). Its
revenue is the value of the order's lines of attributed skus (unit price x quantity); an order
counts once per placement and strategy, however many of its lines they earned.
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import CharField, Count
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.utils.timezone import now

from audience.models import Event, Order
from audience.selectors import order_lines
from personalisation.recommendations.services import CLICKED, SERVED
from tenants.models import Tenant

ATTRIBUTION_DAYS = 7
PERIODS = (7, 30, 90)
UNNAMED = "(none)"  # a click sent without a placement or strategy
CONTACTS_PER_QUERY = 1_000


@dataclass
class ReportRow:
    placement: str
    strategy: str
    served: int = 0
    clicks: int = 0
    orders: int = 0
    revenue: Decimal = Decimal(0)

    @property
    def ctr(self) -> float | None:
        """Clicks per served answer, in percent (None when nothing was served)."""
        return 100 * self.clicks / self.served if self.served else None


@dataclass
class Report:
    days: int
    since: datetime
    rows: list[ReportRow] = field(default_factory=list)
    total: ReportRow = field(default_factory=lambda: ReportRow("", ""))
    currency: str = ""

    @property
    def has_data(self) -> bool:
        return bool(self.total.served or self.total.clicks)


def _grouped(tenant: Tenant, name: str, since: datetime) -> dict[tuple[str, str], int]:
    rows = (
        Event.objects.filter(tenant=tenant, name=name, occurred_at__gte=since)
        .annotate(
            placement=Cast(KeyTextTransform("placement", "properties"), CharField()),
            strategy=Cast(KeyTextTransform("strategy", "properties"), CharField()),
        )
        .values_list("placement", "strategy")
        .annotate(n=Count("id"))
        .order_by()
    )
    counts: Counter[tuple[str, str]] = Counter()
    for placement, strategy, n in rows:
        counts[(placement or UNNAMED, strategy or UNNAMED)] += n
    return counts


Click = tuple[datetime, str, str]  # when, placement, strategy


def _clicks(tenant: Tenant, since: datetime) -> dict[tuple[int, str], list[Click]]:
    """Each contact's clicks on each sku, oldest first."""
    rows = (
        Event.objects.filter(tenant=tenant, name=CLICKED, occurred_at__gte=since)
        .annotate(
            placement=Cast(KeyTextTransform("placement", "properties"), CharField()),
            strategy=Cast(KeyTextTransform("strategy", "properties"), CharField()),
            sku=Cast(KeyTextTransform("sku", "properties"), CharField()),
        )
        .order_by("occurred_at")
        .values_list("contact_id", "sku", "occurred_at", "placement", "strategy")
    )
    clicks: dict[tuple[int, str], list[Click]] = {}
    for contact_id, sku, at, placement, strategy in rows.iterator(chunk_size=5_000):
        if sku:
            clicks.setdefault((contact_id, str(sku)), []).append(
                (at, placement or UNNAMED, strategy or UNNAMED)
            )
    return clicks


def _attribute(
    tenant: Tenant, clicks: dict[tuple[int, str], list[Click]], since: datetime
) -> tuple[dict[tuple[str, str], tuple[int, Decimal]], Counter[str]]:
    """{(placement, strategy): (orders, revenue)} and the attributed orders' currencies (whose
    total is the number of orders attributed)."""
    contact_ids = sorted({contact_id for contact_id, _ in clicks})
    earned: dict[tuple[str, str], tuple[int, Decimal]] = {}
    currencies: Counter[str] = Counter()
    for start in range(0, len(contact_ids), CONTACTS_PER_QUERY):
        orders = Order.objects.filter(
            tenant=tenant,
            contact_id__in=contact_ids[start : start + CONTACTS_PER_QUERY],
            occurred_at__gte=since,
        ).values_list("contact_id", "occurred_at", "properties", "currency")
        for contact_id, at, properties, currency in orders.iterator(chunk_size=2_000):
            per_key: dict[tuple[str, str], Decimal] = {}
            for sku, quantity, price in order_lines(properties):
                mine = clicks.get((contact_id, sku))
                if not mine:
                    continue
                # The latest click at or before the order, if it is recent enough.
                i = bisect.bisect_right([c[0] for c in mine], at) - 1
                if i < 0 or at - mine[i][0] > timedelta(days=ATTRIBUTION_DAYS):
                    continue
                key = (mine[i][1], mine[i][2])
                per_key[key] = per_key.get(key, Decimal(0)) + (price or 0) * quantity
            for key, revenue in per_key.items():
                orders_n, total = earned.get(key, (0, Decimal(0)))
                earned[key] = (orders_n + 1, total + revenue)
            if per_key:
                currencies[currency] += 1
    return earned, currencies


def recommendation_report(*, tenant: Tenant, days: int) -> Report:
    """The last `days` days: answers served and clicks in them, and the orders those clicks
    brought (up to now)."""
    since = now() - timedelta(days=days)
    served = _grouped(tenant, SERVED, since)
    clicks = _clicks(tenant, since)
    click_counts: Counter[tuple[str, str]] = Counter()
    for mine in clicks.values():
        for _at, placement, strategy in mine:
            click_counts[(placement, strategy)] += 1
    earned, currencies = _attribute(tenant, clicks, since)
    report = Report(days=days, since=since)
    for key in sorted(served.keys() | click_counts.keys() | earned.keys()):
        orders, revenue = earned.get(key, (0, Decimal(0)))
        row = ReportRow(key[0], key[1], served[key], click_counts[key], orders, revenue)
        report.rows.append(row)
        report.total.served += row.served
        report.total.clicks += row.clicks
        report.total.revenue += row.revenue
    # An order may count in two rows (lines clicked in two placements), once in the total.
    report.total.orders = sum(currencies.values())
    named = Counter({c: n for c, n in currencies.items() if c})
    report.currency = named.most_common(1)[0][0] if named else ""
    return report
