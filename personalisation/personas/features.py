"""What personas cluster on: each contact's behaviour, read in a few grouped queries.

Per contact (`Behaviour`): days since last seen (Contact.last_seen_at), days since created, orders
and revenue (the order ledger, whole history, as segments' order metrics read it), the
categories of what it viewed ("Product Viewed" events' `category`, last BEHAVIOUR_DAYS days) and
bought (the ledger's `products[].category`), and its channel engagement over the same window:
emails sent and opened, email links and pushes clicked (messaging's outcome events).

Every number here is one a segment condition can test in the same way (last seen within N days,
orders count, total spent, "Product Viewed" where category is X at least N times in the last 180
days, "Email Opened" at least N times…), so the rules that approximate a persona (clustering.py)
select the contacts these figures describe.

Read in chunks of contact ids (CHUNK), so the IN lists stay within SQLite's limits and a big
team's sample costs a bounded number of round trips.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, DecimalField, QuerySet, Sum, Value
from django.db.models.fields.json import KT
from django.db.models.functions import Coalesce

from audience.models import Contact, Event, Order
from tenants.models import Tenant

BEHAVIOUR_DAYS = 180  # the window of views and channel engagement (segment rules use the same)
CHUNK = 2_000
NEVER_SEEN_DAYS = 100_000  # "days since last seen" of a contact never seen

# messaging's outcome event names (messaging/outcomes.py; a test holds them equal).
EMAIL_SENT = "Email Sent"
EMAIL_OPENED = "Email Opened"
EMAIL_CLICKED = "Email Link Clicked"
PUSH_SENT = "Push Sent"
PUSH_CLICKED = "Push Clicked"
PRODUCT_VIEWED = "Product Viewed"
CHANNEL_EVENTS = (EMAIL_SENT, EMAIL_OPENED, EMAIL_CLICKED, PUSH_SENT, PUSH_CLICKED)


@dataclass
class Behaviour:
    contact_id: int
    recency_days: int = NEVER_SEEN_DAYS  # whole days since last seen
    age_days: int = 0  # whole days since the contact was created
    orders: int = 0
    revenue: float = 0.0
    views: Counter[str] = field(default_factory=Counter)  # category (lower case) → views
    bought: Counter[str] = field(default_factory=Counter)  # category (lower case) → items
    events: Counter[str] = field(default_factory=Counter)  # channel event name → count

    @property
    def views_total(self) -> int:
        return sum(self.views.values())

    @property
    def open_rate(self) -> float:
        sent = self.events[EMAIL_SENT]
        return min(1.0, self.events[EMAIL_OPENED] / sent) if sent else 0.0

    @property
    def clicks(self) -> int:
        return self.events[EMAIL_CLICKED] + self.events[PUSH_CLICKED]


def contact_ids_sample(*, tenant: Tenant, size: int, seed: int) -> tuple[list[int], int]:
    """(up to `size` of the team's contact ids, drawn at random with `seed`; how many it has).
    Every id is read (about a second per million on PostgreSQL) so the draw is uniform and the
    same for the same seed and contacts."""
    ids = list(Contact.objects.filter(tenant=tenant).order_by("pk").values_list("pk", flat=True))
    total = len(ids)
    if total <= size:
        return ids, total
    return sorted(random.Random(seed).sample(ids, size)), total


def _chunks(ids: Sequence[int]) -> Iterator[Sequence[int]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


def _days(now: datetime, then: datetime | None, default: int) -> int:
    if then is None:
        return default
    return max(0, int((now - then) / timedelta(days=1)))


def _category(value: Any) -> str:
    return value.strip().lower()[:200] if isinstance(value, str) else ""


def behaviour_read(
    *, tenant: Tenant, contact_ids: Sequence[int], now: datetime, scan: bool = False
) -> list[Behaviour]:
    """The behaviour of these contacts of `tenant` (ids of another team's contacts read as
    nothing: every query is filtered by the tenant), in the order given.

    `scan`: read each figure in one grouped pass over the team's rows (its orders, its window
    of events) and keep the contacts asked for, instead of probing the indexes chunk by chunk of
    ids. Cheaper when the ids are a good part of the team (100k contacts, a sample of 50k: 10 s
    against 42 s on a busy 2-core machine); the probes win on a much bigger team."""
    wanted = set(contact_ids)
    found: dict[int, Behaviour] = {}
    since = now - timedelta(days=BEHAVIOUR_DAYS)
    scopes: Iterator[Sequence[int] | None] = iter([None]) if scan else _chunks(contact_ids)
    for chunk in scopes:
        contacts = Contact.objects.filter(tenant=tenant)
        orders = Order.objects.filter(tenant=tenant).order_by()
        events = Event.objects.filter(
            tenant=tenant, occurred_at__gte=since, occurred_at__lte=now
        ).order_by()
        if chunk is not None:
            contacts = contacts.filter(pk__in=chunk)
            orders = orders.filter(contact_id__in=chunk)
            events = events.filter(contact_id__in=chunk)
        _read(found, wanted, now, contacts, orders, events)
    return [found[pk] for pk in contact_ids if pk in found]


def _read(
    found: dict[int, Behaviour],
    wanted: set[int],
    now: datetime,
    contacts: QuerySet[Contact],
    orders: QuerySet[Order],
    events: QuerySet[Event],
) -> None:
    rows = contacts.values_list("pk", "last_seen_at", "created_at")
    for pk, last_seen, created in rows.iterator(chunk_size=CHUNK):
        if pk not in wanted:
            continue
        found[pk] = Behaviour(
            contact_id=pk,
            recency_days=_days(now, last_seen, NEVER_SEEN_DAYS),
            age_days=_days(now, created, 0),
        )
    spent = Coalesce("value", Value(Decimal(0)), output_field=DecimalField())
    totals = orders.values_list("contact_id").annotate(n=Count("id"), spent=Sum(spent))
    for contact_id, n, total in totals.iterator(chunk_size=CHUNK):
        if (b := found.get(contact_id)) is not None:
            b.orders, b.revenue = n, float(total or 0)
    products = orders.values_list("contact_id", "properties__products")
    for contact_id, items in products.iterator(chunk_size=CHUNK):
        b = found.get(contact_id)
        if b is None or not isinstance(items, list):
            continue
        for item in items:
            if isinstance(item, dict) and (category := _category(item.get("category"))):
                b.bought[category] += 1
    channel = (
        events.filter(name__in=CHANNEL_EVENTS)
        .values_list("contact_id", "name")
        .annotate(n=Count("id"))
    )
    for contact_id, name, n in channel.iterator(chunk_size=CHUNK):
        if (b := found.get(contact_id)) is not None:
            b.events[name] += n
    viewed = (
        events.filter(name=PRODUCT_VIEWED)
        .values_list("contact_id", KT("properties__category"))
        .annotate(n=Count("id"))
    )
    for contact_id, raw_category, n in viewed.iterator(chunk_size=CHUNK):
        b = found.get(contact_id)
        if b is not None and (category := _category(raw_category)):
            b.views[category] += n


def top_categories(behaviours: Sequence[Behaviour], limit: int) -> list[str]:
    """The categories most contacts viewed or bought, at most `limit`."""
    reach: Counter[str] = Counter()
    for b in behaviours:
        reach.update(set(b.views) | set(b.bought))
    return [category for category, _ in reach.most_common(limit)]
