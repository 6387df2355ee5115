"""A shop whose contacts fall into three planted groups, recorded through the real ingestion
path (track calls: views, orders, which keep last seen and the order ledger) and messaging's
outcome events as facts (audience.services.events_record), as the product records them:

- "tents": 40 high-value, infrequent buyers of tents, last seen 40-80 days ago, one or two orders
  of 300-400 each, a few tent views, never emailed;
- "browsers": 40 new visitors (created days ago) who view footwear but never bought;
- "regulars": 40 email-engaged regulars: 5-8 small orders of cooking gear over the year, seen
  this week, open most of the emails they get and click some.

`planted(tenant, per_group=40, seed=…)` returns {group: [contact ids]}.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from audience.models import Contact
from audience.segment_spec import parse_call
from audience.services import Fact, calls_record, events_record
from tenants.models import Tenant

GROUPS = ("tents", "browsers", "regulars")


def _track(user: str, event: str, when: datetime, props: dict[str, Any], n: int) -> dict[str, Any]:
    return {
        "type": "track",
        "userId": user,
        "event": event,
        "properties": props,
        "timestamp": when.isoformat(),
        "messageId": f"{user}-{n}",
    }


def _product(category: str, sku: str, price: float) -> dict[str, Any]:
    return {"sku": sku, "name": sku, "price": price, "category": category}


def plant(tenant: Tenant, *, per_group: int = 40, seed: int = 3) -> dict[str, list[int]]:
    rng = random.Random(seed)
    now = timezone.now()
    calls: list[dict[str, Any]] = []
    users: dict[str, list[str]] = {g: [] for g in GROUPS}
    created: dict[str, datetime] = {}
    mails: list[tuple[str, int, int, datetime]] = []  # user, sent, opened, first send time
    for group in GROUPS:
        for i in range(per_group):
            user = f"{tenant.slug}-{group}-{i}"
            users[group].append(user)
            n = 0

            def add(event: str, when: datetime, props: dict[str, Any]) -> None:
                nonlocal n
                n += 1
                calls.append(_track(user, event, when, props, n))  # noqa: B023

            if group == "tents":
                created[user] = now - timedelta(days=rng.randrange(200, 400))
                last = now - timedelta(days=rng.randrange(40, 80), hours=rng.randrange(0, 20))
                for v in range(rng.randrange(2, 5)):
                    add(
                        "Product Viewed",
                        last - timedelta(days=v + 1),
                        _product("tents", "TEN-1", 349),
                    )
                for o in range(rng.choice([1, 2, 2, 2, 3])):
                    total = rng.uniform(300, 400)
                    props = {
                        "order_id": f"{user}-o{o}",
                        "total": round(total, 2),
                        "currency": "EUR",
                        "products": [_product("tents", "TEN-1", round(total, 2))],
                    }
                    add("Order Completed", last - timedelta(days=20 * o, minutes=5), props)
                add("Product Viewed", last, _product("tents", "TEN-2", 389))
            elif group == "browsers":
                created[user] = now - timedelta(days=rng.randrange(3, 15))
                last = now - timedelta(days=rng.randrange(0, 3), hours=rng.randrange(1, 20))
                for v in range(rng.randrange(3, 9)):
                    sku = f"FOO-{rng.randrange(1, 4)}"
                    add("Product Viewed", last - timedelta(hours=v), _product("footwear", sku, 139))
            else:
                created[user] = now - timedelta(days=rng.randrange(300, 600))
                last = now - timedelta(days=rng.randrange(0, 6), hours=rng.randrange(1, 20))
                for o in range(rng.randrange(5, 9)):
                    total = rng.uniform(30, 60)
                    when = last - timedelta(days=30 * o + rng.randrange(0, 10))
                    add(
                        "Product Viewed",
                        when - timedelta(minutes=3),
                        _product("cooking", "COO-1", 45),
                    )
                    props = {
                        "order_id": f"{user}-o{o}",
                        "total": round(total, 2),
                        "currency": "EUR",
                        "products": [_product("cooking", "COO-1", round(total, 2))],
                    }
                    add("Order Completed", when, props)
                sent = rng.randrange(6, 10)
                mails.append((user, sent, rng.randrange(sent - 3, sent + 1), last))
    result = calls_record(tenant=tenant, calls=[parse_call(c) for c in calls], source="test")
    assert result.stored == len(calls)
    ids = dict(Contact.objects.filter(tenant=tenant).values_list("user_id", "pk"))
    for user, when in created.items():
        Contact.objects.filter(tenant=tenant, pk=ids[user]).update(created_at=when)
    facts = []
    for user, sent, opened, last in mails:
        for m in range(sent):
            when = last - timedelta(days=9 * m + 1)
            key = f"{user}-mail-{m}"
            facts.append(Fact(ids[user], "Email Sent", key, "messaging", {}, when))
            if m < opened:
                facts.append(
                    Fact(
                        ids[user],
                        "Email Opened",
                        f"{key}-opened",
                        "messaging",
                        {},
                        when + timedelta(hours=2),
                    )
                )
                if m % 3 == 0:
                    facts.append(
                        Fact(
                            ids[user],
                            "Email Link Clicked",
                            f"{key}-clicked",
                            "messaging",
                            {},
                            when + timedelta(hours=3),
                        )
                    )
    events_record(tenant=tenant, facts=facts)
    return {g: [ids[u] for u in users[g]] for g in GROUPS}


@pytest.fixture
def planted() -> Callable[..., dict[str, list[int]]]:
    return plant
