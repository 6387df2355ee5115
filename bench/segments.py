#!/usr/bin/env python
# ruff: noqa: T201  (a command-line report: printing is its job)
"""Segments benchmark: how fast a segment's count comes back on a big tenant, and what keeping
materialised membership current costs per ingested event.

    .venv/bin/python bench/segments.py [--contacts N] [--events N] [--small] [--explain] [--keep]

One run, on its own database (nothing touches the development data):

1. Recreates a PostgreSQL database (default `wayfarer_bench_segments` on 127.0.0.1, dropped
   afterwards), runs `manage.py migrate` on it and creates the tenants with `tenant_create`.
2. Generates a web shop's data with COPY straight into audience_contact, audience_identity and
   audience_event: for the measured tenant N contacts who arrived over two years (more of them
   lately) and M events among them, in time order, as ingestion appends them (Product Viewed
   ~60%, Products Searched, Product Added, Checkout Started, Order Completed ~5% with totals in
   EUR), plus the same shape, smaller, for a few noise tenants. Contacts are derived from their
   events: customers have orders, carts hold what was added after the last order, and so on.
   Secondary indexes are built after the load, then VACUUM ANALYZE.
3. Counts: for a set of typical rules (checked by `segments.rules.validate`, counted by
   `segments.selectors.rules_count` as the builder and the API do), the median of 3 warm runs,
   next to two baselines the database alone needs (all of the tenant's contacts; its distinct
   buyers).
4. Membership: creates segments with `segments.services.segment_create` (a full refresh each,
   timed), then, for a sample of active contacts, adds one event and times
   `segment_memberships_refresh_contacts` for that one contact (the incremental update an event
   causes), and for 100 contacts per call (one ingested batch).
5. Prints the report against the targets (MET / MISSED) and drops the database.

Targets (from the issue, for a 2-core machine): a count of a 3-condition rule within 0.5 s on
1M contacts / 10M events; the incremental update within 5 ms per event.

Exit status: 0 when the measurement completed, whether or not the targets were met; 1 when it
could not run; 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import heapq
import itertools
import json
import os
import random
import re
import signal
import statistics
import sys
import time
import uuid
from array import array
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
from common import (
    ROOT,
    BenchDatabase,
    BenchError,
    conditions_lines,
    django_environment,
    django_on_bench_database,
    log,
    machine_description,
    python_speed,
    terminated,
    verdict,
)
from psycopg import sql

# This file is bench/segments.py: with bench/ first on sys.path, as it is for a script,
# `import segments` would find this file instead of the app. (`common` is imported above, while
# bench/ is still on the path.)
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/wayfarer_bench_segments"
SMALL_CONTACTS, SMALL_EVENTS = 50_000, 500_000

TARGET_COUNT_SECONDS = 0.5
TARGET_UPDATE_MS = 5.0
DAYS = 730  # the data spans two years up to now


# --- command line --------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Wayfarer segments benchmark: rule counts and incremental membership.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--contacts", type=int, default=1_000_000, help="contacts of the measured tenant"
    )
    parser.add_argument(
        "--events", type=int, default=10_000_000, help="events of the measured tenant"
    )
    parser.add_argument(
        "--small",
        action="store_true",
        help=f"a quick run: {SMALL_CONTACTS:,} contacts and {SMALL_EVENTS:,} events",
    )
    parser.add_argument(
        "--noise-tenants", type=int, default=3, help="other tenants with data of the same shape"
    )
    parser.add_argument(
        "--noise-scale",
        type=float,
        default=0.1,
        help="size of each noise tenant, as a share of the measured tenant's",
    )
    parser.add_argument(
        "--sample", type=int, default=200, help="contacts timed one per call (one event each)"
    )
    parser.add_argument("--batch", type=int, default=100, help="contacts per call, batch pass")
    parser.add_argument("--batches", type=int, default=5, help="calls of the batch pass")
    parser.add_argument("--runs", type=int, default=3, help="timed warm runs per count query")
    parser.add_argument(
        "--timeout",
        type=float,
        default=120,
        help="statement_timeout (seconds) of the measurements: a count or a full refresh that"
        " takes longer is reported as TIMED OUT",
    )
    parser.add_argument(
        "--explain", action="store_true", help="print EXPLAIN (ANALYZE, BUFFERS) of each count"
    )
    parser.add_argument(
        "--database-url",
        default=DEFAULT_DATABASE_URL,
        help="the bench database; it is DROPPED and recreated (host must be 127.0.0.1)",
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed of the generated data")
    parser.add_argument(
        "--keep", action="store_true", help="keep the bench database and temporary files"
    )
    args = parser.parse_args(argv)
    if args.small:
        args.contacts, args.events = SMALL_CONTACTS, SMALL_EVENTS
    if args.contacts < 1_000 or args.events < 1_000:
        parser.error("--contacts and --events must be at least 1,000")
    if args.noise_tenants < 0 or not 0 <= args.noise_scale <= 1:
        parser.error("--noise-tenants must be >= 0 and --noise-scale a share between 0 and 1")
    if args.sample < 1 or args.batch < 1 or args.batches < 0 or args.runs < 1:
        parser.error("--sample, --batch and --runs must be positive")
    try:
        args.database = BenchDatabase(args.database_url)
    except BenchError as exc:
        parser.error(str(exc))
    return args


# --- a web shop's data ---------------------------------------------------------------------------

CATEGORIES = ["Tents", "Sleeping Bags", "Backpacks", "Footwear", "Jackets", "Stoves", "Lights"]
BRANDS = ["Northfold", "Kestrel", "Alpenrose", "Tarn & Co", "Ridgeline", "Fjellvik"]
ADJECTIVES = ["Ultralight", "Trail", "Summit", "Basecamp", "Storm", "Glacier", "Canyon"]
QUERIES = [
    "tent 2 person",
    "down sleeping bag",
    "hiking boots",
    "rain jacket",
    "headlamp",
    "gas stove",
    "backpack 40l",
    "merino socks",
    "trekking poles",
    "bivvy",
]
PAGES = ["/", "/c/tents", "/c/footwear", "/search", "/cart", "/checkout", "/account", "/p/1"]
LOCALES = ["en-GB", "de-DE", "fr-FR", "nl-NL", "en-US", "sv-SE"]
TIMEZONES = ["Europe/Berlin", "Europe/Paris", "Europe/Amsterdam", "Europe/London", "UTC"]
FIRST_NAMES = ["Anna", "Ben", "Clara", "David", "Emma", "Felix", "Greta", "Hugo", "Ines", "Jonas"]
LAST_NAMES = ["Berg", "Dupont", "Jansen", "Keller", "Lind", "Moreau", "Novak", "Smith", "Vogel"]
DOMAINS = ["example.com", "mail.example.org", "example.net", "post.example.de"]
COUNTRIES = ["DE", "FR", "NL", "GB", "SE", "AT"]
PLANS = ["free"] * 50 + ["basic"] * 25 + ["pro"] * 18 + ["enterprise"] * 7
# Shares in percent; what the issue calls typical for a shop.
EVENT_MIX = {
    "Product Viewed": 60,
    "Products Searched": 15,
    "Product Added": 12,
    "Checkout Started": 8,
    "Order Completed": 5,
}
VIEWED, SEARCHED, ADDED, CHECKOUT, ORDER = range(5)
NAMES = list(EVENT_MIX)
MIX = [code for code, share in enumerate(EVENT_MIX.values()) for _ in range(share)]
assert len(MIX) == 100


def _json(value: object) -> str:
    """JSON for COPY's text format (backslashes doubled; the data has no tabs or newlines)."""
    return json.dumps(value).replace("\\", "\\\\")


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    category: str
    brand: str
    price: float


class Catalog:
    """280 products with a few best sellers (Zipf-like), and their JSON fragments made once."""

    def __init__(self, rng: random.Random) -> None:
        self.products = [
            Product(
                sku=f"{category[:3].upper()}-{1000 + i}",
                name=f"{rng.choice(BRANDS)} {rng.choice(ADJECTIVES)} {category.rstrip('s')}",
                category=category,
                brand=rng.choice(BRANDS),
                price=round(rng.uniform(9, 600), 2),
            )
            for i, category in enumerate(CATEGORIES * 40)
        ]
        self.popularity = list(itertools.accumulate(1 / (r + 1) for r in range(len(self.products))))
        base = [
            {
                "product_id": p.sku.lower(),
                "sku": p.sku,
                "name": p.name,
                "category": p.category,
                "brand": p.brand,
                "price": p.price,
                "currency": "EUR",
            }
            for p in self.products
        ]
        self.viewed = [
            _json({**b, "url": f"https://shop.example.com/p/{b['product_id']}"}) for b in base
        ]
        self.added = [_json({**b, "quantity": 1, "cart_id": "c-1"}) for b in base]
        self.line_item = [
            _json({"product_id": p.sku.lower(), "sku": p.sku, "price": p.price, "quantity": 1})
            for p in self.products
        ]
        self.skus = [p.sku for p in self.products]
        self.searched = [_json({"query": q}) for q in QUERIES]

    def pick(self, rng: random.Random) -> int:
        return bisect.bisect(self.popularity, rng.random() * self.popularity[-1])


class Clock:
    """Epoch seconds → timestamps in COPY's text format, fast: one string per day and one per
    second of the day, made once."""

    def __init__(self, start: float, days: int) -> None:
        midnight = datetime.fromtimestamp(start, UTC).replace(hour=0, minute=0, second=0)
        self.base = midnight.timestamp()
        self.days = [(midnight + timedelta(days=d)).strftime("%Y-%m-%d") for d in range(days + 3)]
        self.seconds = [
            f" {s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}+00" for s in range(86400)
        ]

    def text(self, t: float) -> str:
        offset = int(t - self.base)
        return self.days[offset // 86400] + self.seconds[offset % 86400]


@dataclass
class TenantData:
    """One tenant's contacts (local index i, ascending creation time) and what its events left
    on each of them."""

    tenant_id: int
    slug: str
    contacts: int
    events: int
    created: list[float] = field(default_factory=list)
    known: bytearray = field(default_factory=bytearray)
    cumulative: list[float] = field(default_factory=list)  # activity weights, summed
    ids: array = field(default_factory=lambda: array("q"))
    last_seen: array = field(default_factory=lambda: array("d"))
    last_added: array = field(default_factory=lambda: array("d"))
    last_order: array = field(default_factory=lambda: array("d"))
    last_viewed: array = field(default_factory=lambda: array("h"))
    orders: array = field(default_factory=lambda: array("I"))
    mix: Counter[str] = field(default_factory=Counter)

    def plan(self, rng: random.Random, start: float, end: float) -> None:
        """Arrival times (more contacts lately: the shop grows) and activity: a tenth imported
        from a newsletter list and never seen on the site, the rest with a heavy-tailed
        appetite."""
        span = end - start
        self.created = sorted(start + span * rng.random() ** 0.5 for _ in range(self.contacts))
        total = 0.0
        for _ in range(self.contacts):
            imported = rng.random() < 0.1
            self.known.append(1 if imported or rng.random() < 0.35 else 0)
            total += 0.0 if imported else rng.lognormvariate(0, 1.0)
            self.cumulative.append(total)
        n = self.contacts
        self.last_seen = array("d", bytes(8 * n))
        self.last_added = array("d", bytes(8 * n))
        self.last_order = array("d", bytes(8 * n))
        self.last_viewed = array("h", [-1]) * n
        self.orders = array("I", bytes(4 * n))

    def per_day(self, start: float) -> list[int]:
        """Events per day: proportional to the activity of the contacts who exist by then."""
        weights = []
        for d in range(DAYS):
            existing = bisect.bisect(self.created, start + (d + 0.5) * 86400)
            weights.append(self.cumulative[existing - 1] if existing else 0.0)
        total, carry, counts = sum(weights), 0.0, []
        for w in weights:
            exact = self.events * w / total + carry
            counts.append(int(exact))
            carry = exact - int(exact)
        counts[-1] += self.events - sum(counts)
        return counts


def assign_ids(tenants: list[TenantData]) -> Iterator[tuple[TenantData, int]]:
    """Contacts of all tenants in order of creation (the table's physical order, as the
    product appends them); ids follow that order from 1."""

    def arrivals(n: int, data: TenantData) -> Iterator[tuple[float, int, int]]:
        return ((t, n, i) for i, t in enumerate(data.created))

    merged = heapq.merge(*(arrivals(n, data) for n, data in enumerate(tenants)))
    for _, n, i in merged:
        yield tenants[n], i


EVENT_COLUMNS = [
    "tenant_id",
    "contact_id",
    "type",
    "name",
    "properties",
    "context",
    "occurred_at",
    "received_at",
    "message_id",
    "source",
]
CONTACT_COLUMNS = [
    "id",
    "tenant_id",
    "public_id",
    "user_id",
    "email",
    "phone",
    "first_name",
    "last_name",
    "timezone",
    "locale",
    "birthday_month",
    "birthday_day",
    "birth_year",
    "attributes",
    "email_consent",
    "email_consent_at",
    "email_consent_source",
    "push_consent",
    "push_consent_at",
    "push_consent_source",
    "lifecycle_stage",
    "cart",
    "wishlist",
    "recently_viewed",
    "created_at",
    "last_seen_at",
]
IDENTITY_COLUMNS = ["tenant_id", "contact_id", "kind", "value", "created_at"]
TABLES = ["audience_event", "audience_contact", "audience_identity"]
# Since issue 17 order metrics read the order ledger, which ingestion fills from "Order
# Completed" events; the load fills it from the generated ones (as migration 0013 does).
ORDERS = "audience_order"
ORDERS_LEDGER = False  # whether this code has it (measure() finds out)


def table_exists(conn: psycopg.Connection, table: str) -> bool:
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL", [table]).fetchone()[0]


def partitioned(conn: psycopg.Connection, table: str) -> bool:
    """Whether `table` is PARTITION BY … (audience_event since issue 17)."""
    found = conn.execute(
        "SELECT relkind = 'p' FROM pg_class WHERE oid = to_regclass(%s)", [table]
    ).fetchone()
    return bool(found and found[0])


def check_columns() -> None:
    """The COPY statements must fill every column of the models as they are now (but the
    generated ones, which the database computes)."""
    from audience.models import Contact, Event, Identity

    for model, mine, extra in (
        (Event, EVENT_COLUMNS, {"id"}),
        (Contact, CONTACT_COLUMNS, set()),
        (Identity, IDENTITY_COLUMNS, {"id"}),
    ):
        columns = {f.column for f in model._meta.concrete_fields if not f.generated}
        if columns != set(mine) | extra:
            raise BenchError(
                f"{model._meta.db_table} has columns {sorted(columns ^ (set(mine) | extra))}"
                " that bench/segments.py does not know: update its generator"
            )


class Generator:
    """Writes the tenants' events (in time order, day by day), then contacts, then identities,
    as COPY text."""

    def __init__(self, rng: random.Random, tenants: list[TenantData], end: float) -> None:
        self.rng = rng
        self.tenants = tenants
        self.end = end
        self.start = end - DAYS * 86400
        self.clock = Clock(self.start, DAYS)
        self.catalog = Catalog(rng)
        self.contexts = [
            _json(
                {
                    "library": {"name": "analytics.js", "version": "next-1.72.0"},
                    "locale": rng.choice(LOCALES),
                    "page": {"path": rng.choice(PAGES)},
                    "ip": f"198.51.100.{k}",
                }
            )
            for k in range(64)
        ]

    def events(self, write: Callable[[str], None]) -> int:
        rng, clock, catalog = self.rng, self.clock, self.catalog
        random_, getrandbits, pick = rng.random, rng.getrandbits, catalog.pick
        contexts, viewed, added, searched = (
            self.contexts,
            catalog.viewed,
            catalog.added,
            catalog.searched,
        )
        line_item, products = catalog.line_item, catalog.products
        per_day = [t.per_day(self.start) for t in self.tenants]
        written = 0
        for d in range(DAYS):
            day_start = self.start + d * 86400
            rows: list[tuple[float, str]] = []
            for n, data in enumerate(self.tenants):
                count = per_day[n][d]
                if not count:
                    continue
                existing = bisect.bisect(data.created, day_start + 86400)
                cumulative, created, ids = data.cumulative, data.created, data.ids
                total = cumulative[existing - 1]
                tenant = data.tenant_id
                mix = Counter()
                for _ in range(count):
                    i = bisect.bisect(cumulative, random_() * total, 0, existing)
                    if i >= existing:  # rounding at the very top of the range
                        i = existing - 1
                    t = day_start + random_() * 86400
                    if t < created[i]:
                        t = created[i]
                    if t > self.end:
                        t = self.end
                    code = MIX[int(random_() * 100)]
                    if code == VIEWED:
                        p = pick(rng)
                        properties = viewed[p]
                        data.last_viewed[i] = p
                    elif code == SEARCHED:
                        properties = searched[int(random_() * len(searched))]
                    elif code == ADDED:
                        properties = added[pick(rng)]
                        if t > data.last_added[i]:
                            data.last_added[i] = t
                    elif code == CHECKOUT:
                        properties = (
                            f'{{"checkout_id": "k-{getrandbits(48):012x}",'
                            f' "value": {products[pick(rng)].price}, "currency": "EUR"}}'
                        )
                    else:
                        items = [
                            pick(rng) for _ in range(1 + (random_() < 0.35) + (random_() < 0.1))
                        ]
                        total_price = sum(products[p].price for p in items)
                        properties = (
                            f'{{"order_id": "o-{getrandbits(48):012x}", "total": {total_price:.2f},'
                            f' "revenue": {total_price / 1.19:.2f}, "shipping": 4.95,'
                            f' "tax": {total_price - total_price / 1.19:.2f}, "currency": "EUR",'
                            f' "products": [{", ".join(line_item[p] for p in items)}]}}'
                        )
                        data.orders[i] += 1
                        if t > data.last_order[i]:
                            data.last_order[i] = t
                    if t > data.last_seen[i]:
                        data.last_seen[i] = t
                    mix[code] += 1
                    stamp = clock.text(t)
                    rows.append(
                        (
                            t,
                            f"{tenant}\t{ids[i]}\ttrack\t{NAMES[code]}\t{properties}\t"
                            f"{contexts[int(random_() * 64)]}\t{stamp}\t{stamp}\t"
                            f"ajs-next-{getrandbits(128):032x}\tapi\n",
                        )
                    )
                data.mix.update({NAMES[code]: k for code, k in mix.items()})
            rows.sort(key=lambda row: row[0])
            write("".join(row[1] for row in rows))
            written += len(rows)
            if d % 73 == 72:
                log(f"  events: day {d + 1} of {DAYS}, {written:,} rows")
        return written

    def contacts(self, write: Callable[[str], None], order: list[tuple[TenantData, int]]) -> int:
        rng, clock, catalog = self.rng, self.clock, self.catalog
        random_, choice = rng.random, rng.choice
        lines: list[str] = []
        for data, i in order:
            pk = data.ids[i]
            orders = data.orders[i]
            known = data.known[i] or orders > 0  # a buyer has an account
            created = clock.text(data.created[i])
            user_id = email = phone = first = last = zone = ""
            birthday = "\\N\t\\N\t\\N"
            consent, consent_at, consent_source = "unknown", "\\N", ""
            if known:
                first, last = choice(FIRST_NAMES), choice(LAST_NAMES)
                user_id = f"cust-{pk:08d}"
                if random_() < 0.95:
                    email = f"{first}.{last}{pk}@{choice(DOMAINS)}".lower()
                    r = random_()
                    if r < 0.55:
                        consent, consent_at = "granted", created
                    elif r < 0.65:
                        consent, consent_at = "revoked", created
                    consent_source = choice(["signup form", "checkout", "newsletter import"])
                if random_() < 0.3:
                    phone = f"+49 151 {int(random_() * 10**8):08d}"
                if random_() < 0.7:
                    zone = choice(TIMEZONES)
                if random_() < 0.35:
                    month = 1 + int(random_() * 12)
                    day = 1 + int(random_() * (29 if month == 2 else 30))
                    year = str(1950 + int(random_() * 56)) if random_() < 0.6 else "\\N"
                    birthday = f"{month}\t{day}\t{year}"
                attributes = (
                    f'{{"plan": "{choice(PLANS)}", "age": {18 + int(random_() * 62)},'
                    f' "country": "{choice(COUNTRIES)}",'
                    f' "newsletter": {"true" if random_() < 0.4 else "false"}}}'
                )
            elif random_() < 0.2:
                attributes = f'{{"utm_source": "{choice(["google", "newsletter", "instagram"])}"}}'
            else:
                attributes = "{}"
            push, push_at, push_source = "unknown", "\\N", ""
            if data.last_seen[i] and random_() < 0.12:
                push, push_at, push_source = "granted", created, "web push prompt"
            stage = (
                "repeat"
                if orders >= 2
                else "customer"
                if orders
                else "lead"
                if known
                else "visitor"
            )
            viewed = data.last_viewed[i]
            cart = wishlist = recently = "[]"
            if data.last_added[i] > data.last_order[i]:  # an order empties the cart
                cart = f"[{catalog.line_item[viewed if viewed >= 0 else catalog.pick(rng)]}]"
            if viewed >= 0:
                recently = _json(
                    [
                        catalog.skus[viewed],
                        catalog.skus[catalog.pick(rng)],
                        catalog.skus[catalog.pick(rng)],
                    ]
                )
            if known and random_() < 0.05:
                wishlist = _json([catalog.skus[catalog.pick(rng)] for _ in range(2)])
            seen = clock.text(data.last_seen[i]) if data.last_seen[i] else "\\N"
            locale = choice(LOCALES) if data.last_seen[i] or known else ""
            lines.append(
                f"{pk}\t{data.tenant_id}\t{uuid.UUID(int=rng.getrandbits(128), version=4)}\t"
                f"{user_id}\t{email}\t{phone}\t{first}\t{last}\t{zone}\t{locale}\t{birthday}\t"
                f"{attributes}\t{consent}\t{consent_at}\t{consent_source}\t{push}\t{push_at}\t"
                f"{push_source}\t{stage}\t{cart}\t{wishlist}\t{recently}\t{created}\t{seen}\n"
            )
            if len(lines) >= 10_000:
                write("".join(lines))
                lines.clear()
        write("".join(lines))
        return len(order)

    def identities(self, write: Callable[[str], None], order: list[tuple[TenantData, int]]) -> int:
        """An anonymous id for every contact seen on the site, a user id for every known one."""
        rng = self.rng
        lines: list[str] = []
        written = 0
        for data, i in order:
            pk, created = data.ids[i], self.clock.text(data.created[i])
            if data.last_seen[i]:
                anonymous = uuid.UUID(int=rng.getrandbits(128), version=4)
                lines.append(f"{data.tenant_id}\t{pk}\tanonymous_id\t{anonymous}\t{created}\n")
            if data.known[i] or data.orders[i]:
                lines.append(f"{data.tenant_id}\t{pk}\tuser_id\tcust-{pk:08d}\t{created}\n")
            if len(lines) >= 10_000:
                written += len(lines)
                write("".join(lines))
                lines.clear()
        written += len(lines)
        write("".join(lines))
        return written


@dataclass
class LoadResult:
    rows: dict[str, int] = field(default_factory=dict)  # table -> rows copied
    seconds: dict[str, float] = field(default_factory=dict)


def secondary_indexes(
    conn: psycopg.Connection, tables: list[str]
) -> list[tuple[str, str, str, bool]]:
    """(table, name, definition, is a constraint) of every index but the primary keys. A
    partitioned table's are its own (dropping one drops its partitions'; made again without
    ONLY, it is built on every partition)."""
    rows = conn.execute(
        "SELECT t.relname, i.relname, pg_get_indexdef(i.oid), con.conname IS NOT NULL,"
        " pg_get_constraintdef(con.oid)"
        " FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid"
        " JOIN pg_class t ON t.oid = x.indrelid"
        " LEFT JOIN pg_constraint con ON con.conindid = i.oid AND con.conrelid = t.oid"
        "  AND con.contype IN ('u', 'x')"
        " WHERE t.relname = ANY(%s) AND NOT x.indisprimary ORDER BY 1, 2",
        [tables],
    ).fetchall()
    return [
        (t, n, cdef if is_con else idef.replace(" ON ONLY ", " ON ", 1), is_con)
        for t, n, idef, is_con, cdef in rows
    ]


def load(database: BenchDatabase, generator: Generator, tenants: list[TenantData]) -> LoadResult:
    """COPY everything in one transaction: the tables are truncated first, so COPY FREEZE
    writes the rows already frozen and visible (no second pass over 10M rows by VACUUM), and
    the secondary indexes are dropped and built once at the end, as a bulk load does. A
    partitioned table refuses FREEZE: its rows are made visible by the VACUUM afterwards."""
    result = LoadResult()
    order: list[tuple[TenantData, int]] = []
    for pk, (data, i) in enumerate(assign_ids(tenants), start=1):
        data.ids.append(pk)  # ids are assigned in each tenant's own order of creation too
        order.append((data, i))
    with database.connect() as conn:
        # The generator keeps the foreign keys true by construction: skip their triggers.
        conn.execute("SET session_replication_role = replica")
        conn.execute("SET maintenance_work_mem = '1GB'")
        orders = table_exists(conn, ORDERS)
        tables = TABLES + ([ORDERS] if orders else [])
        conn.execute(f"TRUNCATE {', '.join(tables)} CASCADE")
        indexes = secondary_indexes(conn, tables)
        for table, name, _, is_constraint in indexes:
            if is_constraint:
                conn.execute(
                    sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                        sql.Identifier(table), sql.Identifier(name)
                    )
                )
            else:
                conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
        with conn.cursor() as cursor:
            steps: list[tuple[str, list[str], Callable[[Callable[[str], None]], int]]] = [
                ("audience_event", EVENT_COLUMNS, generator.events),
                ("audience_contact", CONTACT_COLUMNS, lambda w: generator.contacts(w, order)),
                ("audience_identity", IDENTITY_COLUMNS, lambda w: generator.identities(w, order)),
            ]
            for table, columns, step in steps:
                log(f"COPY {table}")
                began = time.perf_counter()
                freeze = sql.SQL("") if partitioned(conn, table) else sql.SQL(" (FREEZE)")
                statement = sql.SQL("COPY {} ({}) FROM STDIN{}").format(
                    sql.Identifier(table),
                    sql.SQL(", ").join(map(sql.Identifier, columns)),
                    freeze,
                )
                with cursor.copy(statement) as copy:
                    rows = step(copy.write)
                result.rows[table] = rows
                result.seconds[f"COPY {table}"] = time.perf_counter() - began
        if orders:
            log(f"INSERT {ORDERS} from the Order Completed events")
            began = time.perf_counter()
            result.rows[ORDERS] = orders_fill(conn)
            result.seconds[f"INSERT {ORDERS}"] = time.perf_counter() - began
        log(f"building {len(indexes)} secondary indexes")
        began = time.perf_counter()
        for table, name, definition, is_constraint in indexes:
            if is_constraint:
                conn.execute(
                    sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} ").format(
                        sql.Identifier(table), sql.Identifier(name)
                    )
                    + sql.SQL(definition)
                )
            else:
                conn.execute(definition)
        result.seconds["index build"] = time.perf_counter() - began
        conn.execute(
            "SELECT setval(pg_get_serial_sequence('audience_contact', 'id'), %s)", [len(order)]
        )
    log("VACUUM ANALYZE")
    began = time.perf_counter()
    with database.connect(autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    result.seconds["VACUUM ANALYZE"] = time.perf_counter() - began
    return result


def orders_fill(conn: psycopg.Connection) -> int:
    """The order ledger of the generated orders, computed as ingestion and migration 0013 do
    (audience.orders' value and currency expressions)."""
    from audience.orders import ORDER_EVENT, currency_sql, value_sql

    return conn.execute(
        f"INSERT INTO {ORDERS} (tenant_id, contact_id, message_id, occurred_at, value, currency,"
        f" properties) SELECT tenant_id, contact_id, message_id, occurred_at,"
        f" {value_sql('properties')}, {currency_sql('properties')}, properties"
        " FROM audience_event WHERE name = %s",
        [ORDER_EVENT],
    ).rowcount


def partitions_make(database: BenchDatabase, tenant_id: int, oldest: float, end: float) -> int:
    """The monthly event partitions from the oldest generated event's month to now, made by the
    product (audience.partitions) after one event of that month; the load's TRUNCATE removes
    it. Returns how many there are; 0 when the events table is not partitioned."""
    with database.connect() as conn:
        if not partitioned(conn, "audience_event"):
            return 0
        conn.execute(
            "INSERT INTO audience_event (tenant_id, contact_id, type, name, properties, context,"
            " occurred_at, received_at, message_id, source) VALUES (%s, 0, 'track', 'Oldest',"
            " '{}', '{}', to_timestamp(%s), now(), 'bench-oldest', 'api')",
            [tenant_id, oldest],
        )
    from audience.partitions import partitions_ensure, partitions_list

    partitions_ensure(now=datetime.fromtimestamp(end, UTC))
    return len(partitions_list())


# --- Django --------------------------------------------------------------------------------------


def disconnect_segment_receivers() -> None:
    """Membership changes record `Segment Entered` events, whose signal queues a re-evaluation
    task of the contacts concerned; nothing consumes that queue here, and the bench times the
    refresh itself, so the receivers are disconnected."""
    from audience.signals import contacts_changed, events_recorded

    events_recorded.disconnect(dispatch_uid="segments.on_events_recorded")
    contacts_changed.disconnect(dispatch_uid="segments.on_contacts_changed")


class StatementLog:
    """An execute wrapper: the last statement, and time per kind of statement."""

    KINDS = [
        (re.compile(r"FOR UPDATE"), "lock the segment (SELECT … FOR UPDATE)"),
        (
            re.compile(r"^WITH matching AS MATERIALIZED"),
            "INSERT entered / DELETE exited members (one statement)",
        ),
        (re.compile(r'^SELECT COUNT\(\*\).*FROM "segments_segmentmembership"'), "member count"),
        (re.compile(r'^UPDATE "segments_segment"'), "UPDATE segment (member_count)"),
        (re.compile(r'FROM "segments_segment"'), "list the tenant's segments"),
        (re.compile(r"SAVEPOINT"), "savepoints"),
    ]

    def __init__(self) -> None:
        self.last: tuple[str, Any] = ("", None)
        self.seconds: Counter[str] = Counter()
        self.counts: Counter[str] = Counter()
        self.paused = False

    def kind(self, text: str) -> str:
        for pattern, label in self.KINDS:
            if pattern.search(text):
                return label
        return text[:50]

    def __call__(self, execute, sql_text, params, many, context):  # type: ignore[no-untyped-def]
        if not sql_text.startswith(("SET ", "SELECT set_config")):  # the bench's own settings
            self.last = (sql_text, params)
        began = time.perf_counter()
        try:
            return execute(sql_text, params, many, context)
        finally:
            if not self.paused:
                kind = self.kind(sql_text.lstrip())
                self.seconds[kind] += time.perf_counter() - began
                self.counts[kind] += 1

    def reset(self) -> None:
        self.seconds.clear()
        self.counts.clear()


# --- rules ---------------------------------------------------------------------------------------


def _group(match: str, *children: dict[str, Any], negate: bool = False) -> dict[str, Any]:
    return {"type": "group", "match": match, "negate": negate, "children": list(children)}


def _did(event: str, **extra: Any) -> dict[str, Any]:
    return {"type": "event", "event": event, **extra}


PLAN_PRO = {"type": "attribute", "field": "attributes.plan", "operator": "equals", "value": "pro"}
EMAIL_REACHABLE = {"type": "reachable", "channel": "email", "reachable": True}
TARGET_RULE = _group(
    "all",
    _did(
        "Order Completed",
        count={"operator": "at_least", "value": 2},
        window={"last_days": 365},
    ),
    PLAN_PRO,
    EMAIL_REACHABLE,
)
NESTED_RULE = _group(
    "all",
    EMAIL_REACHABLE,
    _group(
        "any",
        _did("Product Added", window={"last_days": 7}),
        {"type": "metric", "metric": "total_spent", "operator": "gt", "value": 500},
    ),
    _group(
        "any",
        {"type": "attribute", "field": "attributes.plan", "operator": "equals", "value": "free"},
        _did("Order Completed", window={"last_days": 30}),
        negate=True,
    ),
)
PROPERTY_RULE = _group(
    "all",
    _did(
        "Order Completed",
        where=[{"property": "total", "operator": "gt", "value": 300}],
        window={"last_days": 90},
    ),
)


@dataclass
class Rule:
    label: str
    tree: dict[str, Any]
    target: bool = False


def rules_to_count() -> list[Rule]:
    from segments.presets import PRESETS

    return [
        Rule("1 condition: attributes.plan is pro", _group("all", PLAN_PRO)),
        Rule("3 conditions: 2+ orders in 365 d, plan pro, email ok", TARGET_RULE, target=True),
        Rule("preset: cart abandoners", PRESETS["cart-abandoners"].rules),
        Rule("preset: lapsed customers", PRESETS["lapsed-customers"].rules),
        Rule("nested any/all with NOT (5 conditions)", NESTED_RULE),
        Rule("event with property filter: order > 300 in 90 d", PROPERTY_RULE),
        Rule("preset: browsers, not buyers", PRESETS["browsers-not-buyers"].rules),
        Rule("preset: high-value infrequent", PRESETS["high-value-infrequent"].rules),
    ]


# --- measurements --------------------------------------------------------------------------------


@dataclass
class Timed:
    label: str
    matches: int | None  # None: timed out
    seconds: float | None
    target: bool = False
    runs: int = 0
    plan: str = ""


SLOW_SECONDS = 10.0  # a query this slow is timed once: its figure is clear enough


def timed_runs(run: Callable[[], int], runs: int) -> tuple[int, float, int]:
    """The result, the median time of `runs` runs after one warm-up run, and the number of
    runs timed (1 when the warm-up alone took more than SLOW_SECONDS)."""
    began = time.perf_counter()
    result = run()
    first = time.perf_counter() - began
    if first > SLOW_SECONDS:
        return result, first, 1
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        run()
        times.append(time.perf_counter() - began)
    return result, statistics.median(times), runs


@contextlib.contextmanager
def statement_timeout(seconds: float) -> Iterator[None]:
    """PostgreSQL cancels a statement of the block that runs longer than this."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('statement_timeout', %s, false)", [f"{seconds}s"])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET statement_timeout = 0")


def timed_out(exc: Exception) -> bool:
    """Whether a database error is PostgreSQL cancelling a statement (statement_timeout)."""
    return isinstance(getattr(exc, "__cause__", None), psycopg.errors.QueryCanceled)


def explain(statement: str, params: Any, *, analyze: bool = True) -> str:
    """The plan, as run (ANALYZE) or, for a statement that ran out of time, as planned."""
    from django.db import connection

    options = "ANALYZE, BUFFERS" if analyze else "COSTS"
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN ({options}) {statement}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


def measure_counts(args: argparse.Namespace, tenant: Any, statements: StatementLog) -> list[Timed]:
    from django.db import OperationalError, connection

    from segments.rules import validate
    from segments.selectors import rules_count

    def raw_count(statement: str, params: list[Any]) -> Callable[[], int]:
        def run() -> int:
            with connection.cursor() as cursor:
                cursor.execute(statement, params)
                return int(cursor.fetchone()[0])

        return run

    def rule_count(tree: dict[str, Any]) -> Callable[[], int]:
        return lambda: rules_count(tenant=tenant, rules=tree)  # the builder's and the API's

    # What the database alone needs: every contact of the tenant (an index-only scan), and
    # the distinct buyers (the event index and the table's rows behind it).
    queries = [
        (
            "baseline: count(*) of the tenant's contacts",
            raw_count("SELECT count(*) FROM audience_contact WHERE tenant_id = %s", [tenant.pk]),
            False,
        ),
        (
            "baseline: count(DISTINCT contact_id) Order Completed",
            raw_count(
                "SELECT count(DISTINCT contact_id) FROM audience_event"
                " WHERE tenant_id = %s AND name = 'Order Completed'",
                [tenant.pk],
            ),
            False,
        ),
    ]
    if ORDERS_LEDGER:
        # Since issue 17 conditions on "Order Completed" read the order ledger: the same
        # baseline there. "x buyers" stays against the events' one, so that runs before and
        # after compare.
        queries.append(
            (
                "baseline: count(DISTINCT contact_id) order ledger",
                raw_count(
                    f"SELECT count(DISTINCT contact_id) FROM {ORDERS} WHERE tenant_id = %s",
                    [tenant.pk],
                ),
                False,
            )
        )
    queries += [(r.label, rule_count(validate(r.tree)), r.target) for r in rules_to_count()]
    results = []
    for label, run, target in queries:
        log(f"count: {label}")
        try:
            with statement_timeout(args.timeout):
                matches, seconds, runs = timed_runs(run, args.runs)
        except OperationalError as exc:
            if not timed_out(exc):
                raise
            plan = explain(*statements.last, analyze=False) if args.explain else ""
            results.append(Timed(label, None, None, target=target, plan=plan))
            continue
        plan = explain(*statements.last) if args.explain else ""
        results.append(Timed(label, matches, seconds, target=target, runs=runs, plan=plan))
    return results


@dataclass
class MembershipResult:
    # name, members, seconds (None: timed out, and the bench inserted the members itself)
    segments: list[tuple[str, int, float | None]] = field(default_factory=list)
    single: list[float] = field(default_factory=list)  # seconds per call, one contact
    single_changed: int = 0
    batch: list[float] = field(default_factory=list)  # seconds per event, batch calls
    batch_changed: int = 0
    breakdown: list[tuple[str, float, float]] = field(default_factory=list)  # kind, n, ms
    compile_ms: float = 0.0  # compiling every segment's rules to SQL, per call
    no_fsync: list[float] = field(default_factory=list)  # seconds per call, no WAL flush wait
    per_segment: list[tuple[str, float]] = field(default_factory=list)  # name, ms per contact
    events_before: int = 0
    events_after: int = 0


def segment_definitions(lapsed_id: str | None = None) -> list[tuple[str, dict[str, Any]]]:
    from segments.presets import PRESETS

    if lapsed_id is not None:  # refers to another segment: dependency order, `segment` kind
        return [
            (
                "Lapsed, reachable by push",
                _group(
                    "all",
                    {"type": "segment", "segment": lapsed_id, "member": True},
                    {"type": "reachable", "channel": "push", "reachable": True},
                ),
            )
        ]
    return [
        ("Pro repeat buyers (the 3-condition rule)", TARGET_RULE),
        ("Cart abandoners", PRESETS["cart-abandoners"].rules),
        ("Lapsed customers", PRESETS["lapsed-customers"].rules),
        ("Nested any/all with NOT", NESTED_RULE),
        ("Big orders in 90 days", PROPERTY_RULE),
    ]


def segment_insert_directly(*, tenant: Any, name: str, rules: dict[str, Any]) -> Any:
    """A segment and its members without segment_create (no events recorded): only so that the
    incremental measurement can go on after segment_create ran out of time."""
    from django.db import connection, transaction
    from django.db.models import F
    from django.utils import timezone

    from segments.compiler import segment_contacts
    from segments.models import Segment
    from segments.rules import is_time_relative, validate

    tree = validate(rules)
    with transaction.atomic():
        segment = Segment.objects.create(
            tenant=tenant, name=name, rules=tree, time_relative=is_time_relative(tree)
        )
        matching, params = (
            segment_contacts(tenant=tenant, rules=tree)
            .values(member_id=F("pk"))
            .query.sql_with_params()
        )
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO segments_segmentmembership"
                " (tenant_id, segment_id, contact_id, entered_at)"
                f" SELECT %s, %s, m.member_id, now() FROM ({matching}) AS m",
                [tenant.pk, segment.pk, *params],
            )
            segment.member_count = cursor.rowcount
        Segment.objects.filter(pk=segment.pk).update(
            member_count=segment.member_count, refreshed_at=timezone.now()
        )
    return segment


def new_event(rng: random.Random, tenant_id: int, contact_id: int, now: datetime) -> None:
    """One shop event for a contact, stored as ingestion stores it (with the cart and last seen
    it updates), not timed: it is what makes the timed refresh find something to change."""
    from django.db import connection

    code = MIX[int(rng.random() * 100)]
    properties: dict[str, Any] = {
        "product_id": "ten-1000",
        "sku": "TEN-1000",
        "price": 129.0,
        "currency": "EUR",
    }
    if code == ORDER:
        properties = {
            "order_id": f"o-{rng.getrandbits(48):012x}",
            "total": 420.0,
            "currency": "EUR",
        }
    message_id = f"bench-{uuid.uuid4()}"
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO audience_event (tenant_id, contact_id, type, name, properties, context,"
            " occurred_at, received_at, message_id, source)"
            " VALUES (%s, %s, 'track', %s, %s, '{}', %s, %s, %s, 'api')",
            [
                tenant_id,
                contact_id,
                NAMES[code],
                json.dumps(properties),
                now,
                now,
                message_id,
            ],
        )
        if code == ORDER and ORDERS_LEDGER:
            cursor.execute(
                f"INSERT INTO {ORDERS} (tenant_id, contact_id, message_id, occurred_at, value,"
                " currency, properties) SELECT tenant_id, contact_id, message_id, occurred_at,"
                " 420, 'EUR', properties FROM audience_event"
                " WHERE tenant_id = %s AND message_id = %s",
                [tenant_id, message_id],
            )
        cart = {ADDED: '[{"sku": "TEN-1000", "quantity": 1}]', ORDER: "[]"}.get(code)
        cursor.execute(
            "UPDATE audience_contact SET last_seen_at = %s, cart = COALESCE(%s::jsonb, cart)"
            " WHERE id = %s",
            [now, cart, contact_id],
        )


def measure_membership(
    args: argparse.Namespace,
    tenant: Any,
    data: TenantData,
    rng: random.Random,
    statements: StatementLog,
) -> MembershipResult:
    from django.db import OperationalError, connection
    from django.db.models import F
    from django.utils import timezone

    from audience.models import Event
    from segments import services
    from segments.compiler import segment_contacts
    from segments.models import Segment

    result = MembershipResult()
    definitions = segment_definitions()
    for index in range(len(definitions) + 1):
        if index == len(definitions):
            lapsed = Segment.objects.get(tenant=tenant, name="Lapsed customers")
            definitions += segment_definitions(str(lapsed.public_id))
        name, rules = definitions[index]
        log(f"full refresh: segment_create {name!r}")
        began = time.perf_counter()
        try:
            with statement_timeout(args.timeout):
                segment = services.segment_create(tenant=tenant, name=name, rules=rules)
            result.segments.append((name, segment.member_count, time.perf_counter() - began))
        except OperationalError as exc:
            if not timed_out(exc):
                raise
            log(f"  timed out after {args.timeout:g} s: inserting the members directly")
            segment = segment_insert_directly(tenant=tenant, name=name, rules=rules)
            result.segments.append((name, segment.member_count, None))
    with connection.cursor() as cursor:
        # As autovacuum would have by the time events arrive; the table was empty before.
        cursor.execute("ANALYZE segments_segmentmembership")

    # Contacts who do something are the active ones: sample them by activity.
    wanted = args.sample + 5 + args.batch * args.batches + 50
    picked: dict[int, None] = {}
    draws = rng.choices(range(data.contacts), cum_weights=data.cumulative, k=4 * wanted)
    for index in draws:
        picked[data.ids[index]] = None
        if len(picked) == wanted:
            break
    contact_ids = list(picked)
    result.events_before = Event.objects.filter(tenant=tenant, source="segments").count()

    def one_contact_calls(ids: list[int]) -> tuple[list[float], int]:
        times, changed = [], 0
        for contact_id in ids:
            statements.paused = True  # new_event's statements are not the refresh's
            new_event(rng, tenant.pk, contact_id, timezone.now())
            statements.paused = False
            began = time.perf_counter()
            changed += services.segment_memberships_refresh_contacts(
                tenant=tenant, contact_ids=[contact_id]
            )
            times.append(time.perf_counter() - began)
        return times, changed

    log(f"incremental: {args.sample} calls of one contact after one new event each")
    warm, contact_ids = contact_ids[:5], contact_ids[5:]
    one_contact_calls(warm)
    statements.reset()
    singles, contact_ids = contact_ids[: args.sample], contact_ids[args.sample :]
    result.single, result.single_changed = one_contact_calls(singles)
    calls = len(result.single)
    result.breakdown = [
        (kind, statements.counts[kind] / calls, 1000 * seconds / calls)
        for kind, seconds in statements.seconds.most_common()
    ]
    # Where the rest goes: compiling the rule trees to SQL (Python, no database)…
    segments = list(Segment.objects.filter(tenant=tenant).select_related("tenant"))
    began = time.perf_counter()
    for contact_id in singles:
        for segment in segments:
            segment_contacts(tenant=tenant, rules=segment.rules, scope=[contact_id]).values(
                member_id=F("pk")
            ).query.sql_with_params()
    result.compile_ms = 1000 * (time.perf_counter() - began) / len(singles)
    # … and waiting for the WAL flush of each commit (one transaction per segment).
    spare, contact_ids = contact_ids[:50], contact_ids[50:]
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
    result.no_fsync, _ = one_contact_calls(spare)
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = on")

    log(f"incremental: {args.batches} calls of {args.batch} contacts")
    for b in range(args.batches):
        chunk = contact_ids[b * args.batch : (b + 1) * args.batch]
        if not chunk:
            break
        now = timezone.now()
        for contact_id in chunk:
            new_event(rng, tenant.pk, contact_id, now)
        began = time.perf_counter()
        result.batch_changed += services.segment_memberships_refresh_contacts(
            tenant=tenant, contact_ids=chunk
        )
        result.batch.append((time.perf_counter() - began) / len(chunk))

    log("incremental: per segment, one contact, nothing to change")
    probe = singles[:50]
    for segment in segments:
        began = time.perf_counter()
        for contact_id in probe:
            services.segment_membership_refresh(segment=segment, scope=[contact_id])
        result.per_segment.append((segment.name, 1000 * (time.perf_counter() - began) / len(probe)))
    result.events_after = Event.objects.filter(tenant=tenant, source="segments").count()
    return result


# --- the report ----------------------------------------------------------------------------------


def server_settings() -> str:
    from django.db import connection

    names = [
        "shared_buffers",
        "work_mem",
        "effective_cache_size",
        "random_page_cost",
        "max_parallel_workers_per_gather",
        "jit",
    ]
    with connection.cursor() as cursor:
        values = []
        for name in names:
            cursor.execute(f"SHOW {name}")
            values.append(f"{name} {cursor.fetchone()[0]}")
    return ", ".join(values)


def table_sizes() -> list[str]:
    """Each table's size, a partitioned one's partitions summed."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            # A plain table is its own only leaf; a partitioned one's leaves are its partitions.
            "SELECT c.relname, sum(pg_relation_size(l.oid)), sum(pg_indexes_size(l.oid)),"
            " sum(greatest(l.reltuples, 0)), count(*)"
            " FROM pg_class c JOIN LATERAL (SELECT relid FROM pg_partition_tree(c.oid)"
            "  WHERE isleaf UNION SELECT c.oid WHERE c.relkind = 'r') t(oid) ON true"
            " JOIN pg_class l ON l.oid = t.oid"
            " WHERE c.relname = ANY(%s) AND c.relkind IN ('r', 'p') GROUP BY c.relname"
            " ORDER BY 1",
            [[*TABLES, ORDERS, "segments_segmentmembership"]],
        )
        return [
            f"{name} {size / 2**20:,.0f} MB + indexes {indexes / 2**20:,.0f} MB"
            f" (~{rows:,.0f} rows{f' in {leaves} partitions' if leaves > 1 else ''})"
            for name, size, indexes, rows, leaves in cursor.fetchall()
        ]


def seconds_text(seconds: float | None, timeout: float, runs: int = 0) -> str:
    if seconds is None:
        return f"TIMED OUT (> {timeout:g} s)"
    return f"{seconds:.3f} s" + (" (1 run)" if runs == 1 else "")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def print_table(header: tuple[str, ...], rows: list[tuple[str, ...]], indent: str = "  ") -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print(indent + "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
    print(indent + "  ".join("-" * w for w in widths))
    for row in rows:
        print(indent + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def print_report(
    args: argparse.Namespace,
    machine: str,
    settings: str,
    tenants: list[TenantData],
    loaded: LoadResult,
    sizes: list[str],
    counts: list[Timed],
    membership: MembershipResult,
) -> None:
    main = tenants[0]
    print()
    print("Wayfarer segments benchmark")
    print(f"  machine:    {machine}")
    print(f"  PostgreSQL: {settings}")
    print("\n".join(conditions_lines(args.load_at_start, args.python_speed, "slower figures")))
    noise = tenants[1:]
    print(
        f"  data:       tenant {main.slug}: {main.contacts:,} contacts, {main.events:,} events over"
        f" {DAYS} days; {len(noise)} noise tenants with"
        f" {sum(t.contacts for t in noise):,} contacts / {sum(t.events for t in noise):,} events"
        f" in all; seed {args.seed}"
    )
    print(f"  event mix:  {', '.join(f'{n} {k:,}' for n, k in main.mix.most_common())}")
    stages = Counter(
        "repeat" if o >= 2 else "customer" if o else "lead/visitor" for o in main.orders
    )
    carts = sum(1 for a, o in zip(main.last_added, main.last_order, strict=True) if a > o)
    print(
        f"  contacts:   {', '.join(f'{s} {k:,}' for s, k in stages.most_common())};"
        f" non-empty carts {carts:,}"
    )
    generation = sum(loaded.seconds.values())
    print(
        f"  generation: {generation:.0f} s in all ("
        + ", ".join(f"{k} {v:.0f} s" for k, v in loaded.seconds.items())
        + "); "
        + ", ".join(f"{table} {n:,} rows" for table, n in loaded.rows.items())
        + f"; {loaded.rows['audience_event'] / loaded.seconds['COPY audience_event']:,.0f}"
        " events/s generated and copied"
    )
    for line in sizes:
        print(f"  table:      {line}")

    target = next(c for c in counts if c.target)
    single_ms = [1000 * s for s in membership.single]
    batch_ms = [1000 * s for s in membership.batch]
    print()
    rows = [
        (
            "count, 3-condition rule",
            seconds_text(target.seconds, args.timeout),
            f"<= {TARGET_COUNT_SECONDS} s",
            verdict(target.seconds is not None and target.seconds <= TARGET_COUNT_SECONDS),
        ),
        (
            "incremental update per event, median",
            f"{statistics.median(single_ms):.1f} ms",
            f"<= {TARGET_UPDATE_MS:.0f} ms",
            verdict(statistics.median(single_ms) <= TARGET_UPDATE_MS),
        ),
        (
            "incremental update per event, p95",
            f"{percentile(single_ms, 95):.1f} ms",
            f"<= {TARGET_UPDATE_MS:.0f} ms",
            verdict(percentile(single_ms, 95) <= TARGET_UPDATE_MS),
        ),
    ]
    if batch_ms:
        rows.append(
            (
                f"incremental, {args.batch} contacts per call",
                f"{statistics.median(batch_ms):.2f} ms per event",
                f"<= {TARGET_UPDATE_MS:.0f} ms",
                verdict(statistics.median(batch_ms) <= TARGET_UPDATE_MS),
            )
        )
    print_table(("measure", "result", "target", "verdict"), rows)

    contacts_base, orders_base = counts[0].seconds or 0.0, counts[1].seconds or 0.0

    def ratio(seconds: float | None, base: float) -> str:
        return f"{seconds / base:.1f}" if seconds is not None and base else "-"

    print()
    print(
        f"  count queries (median of {args.runs} warm runs after one warm-up; a query slower"
        f" than {SLOW_SECONDS:.0f} s is timed once; x = times the baseline's time):"
    )
    print_table(
        ("query", "matches", "time", "x contacts", "x buyers", "vs 0.5 s"),
        [
            (
                c.label + (" (target)" if c.target else ""),
                "-" if c.matches is None else f"{c.matches:,}",
                seconds_text(c.seconds, args.timeout, c.runs),
                ratio(c.seconds, contacts_base),
                ratio(c.seconds, orders_base),
                ""
                if c.label.startswith("baseline")
                else verdict(c.seconds is not None and c.seconds <= TARGET_COUNT_SECONDS),
            )
            for c in counts
        ],
        indent="    ",
    )
    print()
    print(
        "  full refresh (segment_create: the compiled query in an INSERT and a DELETE, Segment"
        " Entered events):"
    )
    print_table(
        ("segment", "members", "time"),
        [
            (
                n,
                f"{m:,}",
                seconds_text(s, args.timeout) + ("" if s else ": members inserted by the bench"),
            )
            for n, m, s in membership.segments
        ],
        indent="    ",
    )
    segments = len(membership.segments)
    print()
    print(
        f"  incremental update (segment_memberships_refresh_contacts over {segments} segments,"
        " after one new event per contact):"
    )
    print(
        f"    1 contact per call, {len(single_ms)} calls: median {statistics.median(single_ms):.1f}"
        f" ms, p95 {percentile(single_ms, 95):.1f} ms, max {max(single_ms):.1f} ms, mean"
        f" {statistics.fmean(single_ms):.1f} ms; {membership.single_changed} memberships changed"
    )
    if batch_ms:
        print(
            f"    {args.batch} contacts per call, {len(batch_ms)} calls: median"
            f" {statistics.median(batch_ms) * args.batch:.0f} ms per call ="
            f" {statistics.median(batch_ms):.2f} ms per event; {membership.batch_changed}"
            " memberships changed"
        )
    recorded = membership.events_after - membership.events_before
    print(f"    Segment Entered/Exited events recorded meanwhile: {recorded:,}")
    single_mean = statistics.fmean(single_ms)
    tracked = sum(ms for _, _, ms in membership.breakdown)
    print(f"    where a 1-contact call spends its time (mean {single_mean:.1f} ms):")
    print_table(
        ("part", "per call", "ms per call"),
        [(k, f"{n:.1f}", f"{ms:.2f}") for k, n, ms in membership.breakdown]
        + [
            (
                "everything else: Python, commits, event recording, the check (*)",
                "",
                f"{max(single_mean - tracked, 0):.2f}",
            ),
            (
                f"  compiling the {segments} rule trees to SQL, uncached (measured apart)",
                "",
                f"{membership.compile_ms:.2f}",
            ),
        ],
        indent="      ",
    )
    print(
        "      (*) the one statement that checks every segment for the contact: prepared on a"
        " psycopg cursor of its own, so the statement log does not see it"
    )
    if membership.no_fsync:
        no_fsync = statistics.fmean(1000 * s for s in membership.no_fsync)
        print(
            f"    the same calls with synchronous_commit = off: mean {no_fsync:.1f} ms, so waiting"
            f" for the WAL flush of the commits (one transaction per segment) costs"
            f" ~{single_mean - no_fsync:.1f} ms per call"
        )
    print(
        "    one segment, one contact, nothing to change (segment_membership_refresh with scope):"
    )
    print_table(
        ("segment", "ms"),
        [(n, f"{ms:.2f}") for n, ms in membership.per_segment],
        indent="      ",
    )
    if args.explain:
        for c in counts:
            print()
            how = "EXPLAIN (ANALYZE, BUFFERS)" if c.seconds is not None else "EXPLAIN (timed out)"
            print(f"  {how}: {c.label}")
            for line in c.plan.splitlines():
                print(f"    {line}")


# --- main ----------------------------------------------------------------------------------------


def create_tenants(args: argparse.Namespace) -> list[TenantData]:
    from tenants.services import tenant_create

    sizes = [("bench-shop", args.contacts, args.events)]
    for n in range(args.noise_tenants):
        sizes.append(
            (
                f"bench-noise-{n + 1}",
                max(100, int(args.contacts * args.noise_scale)),
                max(1_000, int(args.events * args.noise_scale)),
            )
        )
    return [
        TenantData(
            tenant_id=tenant_create(name=f"Bench {slug}", slug=slug).pk,
            slug=slug,
            contacts=contacts,
            events=events,
        )
        for slug, contacts, events in sizes
    ]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.load_at_start = os.getloadavg()[0]
    args.python_speed = python_speed()
    signal.signal(signal.SIGTERM, terminated)
    try:
        with django_on_bench_database(
            args.database, keep=args.keep, environment=partial(django_environment, args.database)
        ):
            return measure(args)
    except (BenchError, psycopg.Error) as exc:
        print(f"\nbench/segments.py: {exc}", file=sys.stderr)
        return 1


def measure(args: argparse.Namespace) -> int:
    database: BenchDatabase = args.database
    disconnect_segment_receivers()
    check_columns()
    tenants = create_tenants(args)
    rng = random.Random(args.seed)
    end = time.time()
    for data in tenants:
        data.plan(rng, end - DAYS * 86400, end)
    global ORDERS_LEDGER
    with database.connect() as conn:
        ORDERS_LEDGER = table_exists(conn, ORDERS)
    partitions = partitions_make(database, tenants[0].tenant_id, end - DAYS * 86400, end)
    if partitions:
        log(f"{partitions} monthly event partitions")
    log(
        f"generating {sum(t.contacts for t in tenants):,} contacts and"
        f" {sum(t.events for t in tenants):,} events ({len(tenants)} tenants)"
    )
    loaded = load(database, Generator(rng, tenants, end), tenants)
    log(f"generated and loaded in {sum(loaded.seconds.values()):.0f} s")

    from django.db import connection

    from tenants.models import Tenant

    machine, settings = machine_description(database.server_version()), server_settings()
    tenant = Tenant.objects.get(pk=tenants[0].tenant_id)
    statements = StatementLog()
    with connection.execute_wrapper(statements):
        counts = measure_counts(args, tenant, statements)
        membership = measure_membership(args, tenant, tenants[0], rng, statements)
    print_report(args, machine, settings, tenants, loaded, table_sizes(), counts, membership)
    return 0


if __name__ == "__main__":
    sys.exit(main())
