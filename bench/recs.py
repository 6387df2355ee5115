#!/usr/bin/env python
# ruff: noqa: T201  (a command-line report: printing is its job)
"""Onsite personalisation benchmark: how fast recommendations, search and placements answer a
browser for a shop with 100k products and 1M contacts.

    .venv/bin/python bench/recs.py [--contacts N] [--products N] [--events N] [--small]
                                   [--explain] [--keep | --reuse]

One run, on its own database (nothing touches the development data):

1. Recreates a PostgreSQL database (default `wayfarer_bench_recs` on 127.0.0.1, dropped afterwards
   unless --keep; `--reuse` measures a database kept by an earlier run instead, after `manage.py
   migrate`) and generates a shop by COPY: the catalog (N products in 40 categories, Zipf-like
   popularity within each, ~8% out of stock, ~3% restocked in the last week, each product with
   two "companions" that are often bought with it), contacts who each prefer one or two
   categories, and their events day by day over half a year (Product Viewed, Products
   Searched, Product Added, Product Added to Wishlist, Checkout Started, Order Completed), so
   that the contacts' recently viewed, carts and wishlists, the order ledger (filled from the
   Order Completed events as ingestion does) and the events themselves give every strategy and
   the search's affinity real data. bench/segments.py's loader is reused (imported, not
   copied): secondary indexes built after the load, VACUUM ANALYZE. A small noise team with
   the same skus shares every table. Then whatever the product precomputes periodically
   (trending, …) is run once, as the beat would, and the placements, their segments and a
   synonym are made through the product's services.
2. Measures, through Django's whole stack in this process (the test Client: middleware, the
   write key's authentication, the view, the JSON; no network, no web server: server time),
   each of: GET /v1/recommendations for every strategy, GET /v1/search (an exact name, a
   prefix, a typo, a synonym, a personalised query, no results), GET /v1/placements (nothing
   pending; right after a page view, i.e. with the visitor's Product Viewed waiting in the
   ingestion inbox), and a baseline from the same door: GET /v1/push/key (the write key's
   authentication, one read, a JSON answer). Requests are made by visitors sampled from the
   data (anonymous ids of contacts with a history, buyers by user id, contacts told a wishlist
   product is back, unknown visitors). The probes are interleaved in rounds, so the machine's
   noise falls on all of them alike, and the inbox is drained between them (untimed), as a
   running worker would. Each gets median, p95 and p99 and their ratios to the baseline, the
   CPU per request of this process and of its PostgreSQL backend (what a busy machine does not
   inflate), SQL statements of one request, how many answers had products (and, for search, how
   many had the right product first). Target: p95 <= 50 ms. `--explain` prints EXPLAIN
   (ANALYZE, BUFFERS) of each probe's slowest SELECT statements, `--statements` every
   statement of one request, `--profile` a cProfile per probe. As a superuser (the default
   URL) row-level security is bypassed; the app's own role measures its policies too.

Exit status: 0 when the measurement completed, whether or not the target was met; 1 when it could
not run; 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import base64
import bisect
import importlib
import importlib.util
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
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from common import (
    ROOT,
    BenchDatabase,
    BenchError,
    conditions_lines,
    log,
    machine_description,
    python_speed,
    terminated,
    verdict,
)


def _bench_module(name: str, file: str) -> Any:
    """bench/<file> as module `name` (bench/segments.py must not be imported as `segments`,
    which is the app's name)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / file)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


shop = _bench_module("bench_segments", "segments.py")  # the loader, the clock, the columns
analytics_bench = _bench_module("bench_analytics", "analytics.py")  # bench_database (--reuse)
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/wayfarer_bench_recs"
# --small's own, so that `make bench` never drops a full-size database kept with --keep.
SMALL_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/wayfarer_bench_recs_small"
SMALL_CONTACTS, SMALL_PRODUCTS, SMALL_EVENTS = 20_000, 5_000, 150_000
TARGET_MS = 50.0
DAYS = 182  # the events span half a year up to now; contacts arrived over a year
ARRIVALS_DAYS = 365
SLUG = "bench-shop"
MAX_RECENTLY_VIEWED = 20  # audience.identity's
MAX_WISHLIST = 30

# --- command line --------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Wayfarer personalisation benchmark: recommendations, search, placements.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--contacts", type=int, default=1_000_000, help="the team's contacts")
    parser.add_argument("--products", type=int, default=100_000, help="the team's catalog")
    parser.add_argument(
        "--events", type=int, default=6_000_000, help="the team's shop events (half a year)"
    )
    parser.add_argument(
        "--small",
        action="store_true",
        help=f"a quick run: {SMALL_CONTACTS:,} contacts, {SMALL_PRODUCTS:,} products,"
        f" {SMALL_EVENTS:,} events, fewer requests",
    )
    parser.add_argument(
        "--noise-scale",
        type=float,
        default=0.05,
        help="the size of a second team with the same skus, a share of the team's",
    )
    parser.add_argument("--rounds", type=int, default=10, help="rounds over every probe")
    parser.add_argument(
        "--per-round", type=int, default=20, help="timed requests per probe and round"
    )
    parser.add_argument("--warmup", type=int, default=5, help="untimed requests per probe first")
    parser.add_argument(
        "--probes",
        default="",
        help="only the probes whose label contains one of these comma-separated words",
    )
    parser.add_argument(
        "--explain",
        action="store_true",
        help="print EXPLAIN (ANALYZE, BUFFERS) of each probe's slowest SELECT statements",
    )
    parser.add_argument("--explain-top", type=int, default=2, help="statements per probe")
    parser.add_argument(
        "--statements",
        action="store_true",
        help="also: every SQL statement of one request per probe, with its time",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also: cProfile of each probe's requests (where the server time goes, top functions)",
    )
    parser.add_argument(
        "--no-precompute",
        action="store_true",
        help="with --reuse: do not run the precomputing tasks again (the kept database has them)",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="measure the database kept by an earlier run (--keep): migrate it, skip the load",
    )
    parser.add_argument(
        "--database-url",
        default=None,
        help="the bench database; it is DROPPED and recreated (host must be 127.0.0.1); default"
        f" {DEFAULT_DATABASE_URL}, with --small {SMALL_DATABASE_URL}. A role that is not a"
        " superuser (the product's own, e.g. postgres://wayfarer@…) measures with row-level"
        " security applied",
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed of the generated data")
    parser.add_argument(
        "--keep", action="store_true", help="keep the bench database and temporary files"
    )
    args = parser.parse_args(argv)
    args.profile_top = 30
    if args.small:
        args.contacts, args.products, args.events = SMALL_CONTACTS, SMALL_PRODUCTS, SMALL_EVENTS
        args.rounds, args.per_round, args.warmup = 3, 10, 2
    if args.contacts < 1_000 or args.events < 1_000 or args.products < 400:
        parser.error("--contacts and --events must be at least 1,000, --products 400")
    if args.rounds < 1 or args.per_round < 1 or args.warmup < 0:
        parser.error("--rounds and --per-round must be positive")
    if not 0 <= args.noise_scale <= 1:
        parser.error("--noise-scale is a share between 0 and 1")
    if args.database_url is None:
        args.database_url = SMALL_DATABASE_URL if args.small else DEFAULT_DATABASE_URL
    try:
        args.database = BenchDatabase(args.database_url)
    except BenchError as exc:
        parser.error(str(exc))
    return args


# --- the catalog ---------------------------------------------------------------------------------

# (category, the noun its products' names use, a typo a shopper makes of it)
CATEGORIES = [
    ("Sneakers", "Sneakers", "sneekers"),
    ("Running Shoes", "Running Shoes", "runing shoes"),
    ("Hiking Boots", "Hiking Boots", "hikng boots"),
    ("Sandals", "Sandals", "sandles"),
    ("Rain Jackets", "Rain Jacket", "rain jaket"),
    ("Down Jackets", "Down Jacket", "down jackit"),
    ("Fleeces", "Fleece", "fleec"),
    ("T-Shirts", "T-Shirt", "tshirt"),
    ("Shorts", "Shorts", "shrots"),
    ("Trousers", "Trousers", "trowsers"),
    ("Backpacks", "Backpack", "backpak"),
    ("Daypacks", "Daypack", "day pack"),
    ("Tents", "Tent", "tnet"),
    ("Sleeping Bags", "Sleeping Bag", "sleepin bag"),
    ("Sleeping Mats", "Sleeping Mat", "sleeping matt"),
    ("Stoves", "Stove", "stoev"),
    ("Cookware", "Cook Set", "cookset"),
    ("Headlamps", "Headlamp", "hedlamp"),
    ("Water Bottles", "Water Bottle", "water botle"),
    ("Socks", "Socks", "sokcs"),
    ("Gloves", "Gloves", "gloves"),
    ("Hats", "Beanie", "beanee"),
    ("Sunglasses", "Sunglasses", "sunglases"),
    ("Watches", "GPS Watch", "gps wach"),
    ("Trekking Poles", "Trekking Poles", "treking poles"),
    ("Harnesses", "Climbing Harness", "harnes"),
    ("Ropes", "Climbing Rope", "climing rope"),
    ("Helmets", "Helmet", "helmit"),
    ("Bike Lights", "Bike Light", "bike ligth"),
    ("Bike Locks", "Bike Lock", "bike lok"),
    ("Yoga Mats", "Yoga Mat", "yoga matt"),
    ("Dumbbells", "Dumbbell", "dumbell"),
    ("Swimwear", "Swimsuit", "swimsiut"),
    ("Towels", "Travel Towel", "towl"),
    ("Maps", "Map", "mapp"),
    ("Guidebooks", "Guidebook", "guide book"),
    ("Camera Bags", "Camera Bag", "camera bagg"),
    ("Power Banks", "Power Bank", "powerbank"),
    ("Speakers", "Speaker", "speeker"),
    ("Headphones", "Headphones", "headphons"),
]
BRANDS = [
    "Northfold", "Kestrel", "Alpenrose", "Tarn & Co", "Ridgeline", "Fjellvik", "Lumen", "Caldera",
    "Brightwater", "Ostara", "Pinecrest", "Sundial", "Arctos", "Meridian", "Halden", "Velo",
    "Saltmarsh", "Greywolf", "Solstice", "Ember",
]  # fmt: skip
ADJECTIVES = [
    "Ultralight", "Trail", "Summit", "Basecamp", "Storm", "Glacier", "Canyon", "Urban", "Classic",
    "Pro", "Explorer", "Everyday", "Alpine", "Coastal", "Nomad",
]  # fmt: skip
COLOURS = ["Black", "Navy", "Olive", "Red", "Grey", "Sand", "Blue", "Orange", "White", "Green"]
PRICE_BANDS = [(9, 40), (25, 90), (60, 180), (120, 450)]
EXACT_NAME_RANK = 3  # the exact-name query is the name of this best seller of the first category


def _json(value: object) -> str:
    return json.dumps(value).replace("\\", "\\\\")


class Catalog:
    """One team's products (the noise team has the same skus, fewer of them) with their event
    JSON fragments made once, each category's products ordered by popularity."""

    def __init__(self, rng: random.Random, n: int) -> None:
        self.n = n
        ncat = len(CATEGORIES)
        # Category popularity is Zipf-like too: sneakers sell more than ropes.
        self.category_weights = list(itertools.accumulate(1 / (c + 1) ** 0.6 for c in range(ncat)))
        self.category: array = array("H")
        self.price: list[float] = []
        self.in_stock = bytearray()
        self.restocked = bytearray()  # in stock again since the last week
        self.names: list[str] = []
        self.skus: list[str] = []
        members: list[list[int]] = [[] for _ in range(ncat)]
        for p in range(n):
            c = bisect.bisect(self.category_weights, rng.random() * self.category_weights[-1])
            c = min(c, ncat - 1)
            members[c].append(p)
            lo, hi = PRICE_BANDS[int(rng.random() * len(PRICE_BANDS))]
            self.category.append(c)
            self.price.append(round(rng.uniform(lo, hi), 2))
            self.skus.append(f"{CATEGORIES[c][0][:3].upper()}-{100000 + p}")
            self.names.append(
                f"{rng.choice(BRANDS)} {rng.choice(ADJECTIVES)} {CATEGORIES[c][1]}"
                f" {rng.choice(COLOURS)} {p % 97 + 1}"
            )
            r = rng.random()
            self.in_stock.append(0 if r < 0.08 else 1)
            self.restocked.append(1 if 0.08 <= r < 0.11 else 0)
        for c in range(ncat):
            rng.shuffle(members[c])
        self.members = members  # by popularity, best first
        self.cumulative = [
            list(itertools.accumulate(1 / (r + 1) ** 0.9 for r in range(len(m)))) for m in members
        ]
        # What a wishlist wants most: what is out of stock, or was until lately.
        self.wanted = [[p for p in m if not self.in_stock[p] or self.restocked[p]] for m in members]
        # Two companions per product: one of its own category, one of the next.
        self.companions = [
            (
                self._pick_in(rng, self.category[p]),
                self._pick_in(rng, (self.category[p] + 1) % ncat),
            )
            for p in range(n)
        ]
        self.viewed: list[str] = []
        self.added: list[str] = []
        self.line: list[str] = []
        for p in range(n):
            base = {
                "product_id": self.skus[p].lower(),
                "sku": self.skus[p],
                "name": self.names[p],
                "category": CATEGORIES[self.category[p]][0],
                "price": self.price[p],
                "currency": "EUR",
            }
            self.viewed.append(_json({**base, "url": self.url(p), "image_url": self.image(p)}))
            self.added.append(_json({**base, "quantity": 1}))
            self.line.append(_json({"sku": self.skus[p], "price": self.price[p], "quantity": 1}))

    def url(self, p: int) -> str:
        return f"https://shop.example.com/p/{self.skus[p].lower()}"

    def image(self, p: int) -> str:
        return f"https://cdn.shop.example.com/img/{self.skus[p].lower()}.jpg"

    def _pick_in(self, rng: random.Random, c: int) -> int:
        """A product of category c, the popular ones more often."""
        cumulative, members = self.cumulative[c], self.members[c]
        if not members:
            return int(rng.random() * self.n)
        k = bisect.bisect(cumulative, rng.random() * cumulative[-1])
        return members[min(k, len(members) - 1)]

    def pick_category(self, rng: random.Random) -> int:
        c = bisect.bisect(self.category_weights, rng.random() * self.category_weights[-1])
        return min(c, len(CATEGORIES) - 1)

    def pick(self, rng: random.Random, c: int) -> int:
        return self._pick_in(rng, c)


# --- the shop's data -----------------------------------------------------------------------------

# Shares in percent.
EVENT_MIX = {
    "Product Viewed": 60,
    "Products Searched": 10,
    "Product Added": 12,
    "Product Added to Wishlist": 4,
    "Checkout Started": 9,
    "Order Completed": 5,
}
VIEWED, SEARCHED, ADDED, WISHED, CHECKOUT, ORDER = range(6)
NAMES = list(EVENT_MIX)
MIX = [code for code, share in enumerate(EVENT_MIX.values()) for _ in range(share)]
assert len(MIX) == 100


@dataclass
class RecsTenant(shop.TenantData):
    """bench/segments.py's tenant (arrivals, activity), with a catalog and each contact's
    taste and what the events left: recently viewed, cart, wishlist."""

    products: int = 0
    events_start: float = 0.0
    catalog: Any = None
    favourite: array = field(default_factory=lambda: array("H"))
    second: array = field(default_factory=lambda: array("H"))
    recent: dict[int, list[int]] = field(default_factory=dict)
    cart: dict[int, list[tuple[int, float]]] = field(default_factory=dict)
    wishlist: dict[int, list[int]] = field(default_factory=dict)

    def per_day(self, start: float) -> list[int]:
        weights = []
        for d in range(DAYS):
            existing = bisect.bisect(self.created, self.events_start + (d + 0.5) * 86400)
            weights.append(self.cumulative[existing - 1] if existing else 0.0)
        total, carry, counts = sum(weights), 0.0, []
        for w in weights:
            exact = self.events * w / total + carry
            counts.append(int(exact))
            carry = exact - int(exact)
        counts[-1] += self.events - sum(counts)
        return counts

    def tastes(self, rng: random.Random) -> None:
        for _ in range(self.contacts):
            first = self.catalog.pick_category(rng)
            self.favourite.append(first)
            self.second.append(self.catalog.pick_category(rng))


class Generator:
    """The events (day by day, in time order, as ingestion appends them), then the contacts
    and their identities, as COPY text; the products apart."""

    def __init__(self, rng: random.Random, tenants: list[RecsTenant], end: float) -> None:
        self.rng = rng
        self.tenants = tenants
        self.end = end
        self.start = end - DAYS * 86400
        self.clock = shop.Clock(end - ARRIVALS_DAYS * 86400, ARRIVALS_DAYS)
        self.contexts = [
            _json(
                {
                    "library": {"name": "wayfarer.js", "version": "1.4.0"},
                    "locale": rng.choice(shop.LOCALES),
                    "page": {"path": rng.choice(shop.PAGES)},
                    "ip": f"198.51.100.{k}",
                }
            )
            for k in range(64)
        ]
        self.queries = [
            [_json({"query": CATEGORIES[c][1].lower()}), _json({"query": CATEGORIES[c][2]})]
            for c in range(len(CATEGORIES))
        ]
        self.mix: Counter[str] = Counter()

    def events(self, write: Callable[[str], None]) -> int:
        rng, clock = self.rng, self.clock
        random_, getrandbits = rng.random, rng.getrandbits
        contexts, queries = self.contexts, self.queries
        per_day = [t.per_day(self.start) for t in self.tenants]
        written = 0
        for d in range(DAYS):
            day_start = self.start + d * 86400
            rows: list[tuple[float, str]] = []
            for n, data in enumerate(self.tenants):
                count = per_day[n][d]
                if not count:
                    continue
                catalog = data.catalog
                pick = catalog.pick
                existing = bisect.bisect(data.created, day_start + 86400)
                cumulative, created, ids = data.cumulative, data.created, data.ids
                total = cumulative[existing - 1]
                tenant = data.tenant_id
                recent, cart, wishlist = data.recent, data.cart, data.wishlist
                mix: Counter[int] = Counter()
                for _ in range(count):
                    i = bisect.bisect(cumulative, random_() * total, 0, existing)
                    if i >= existing:
                        i = existing - 1
                    t = day_start + random_() * 86400
                    if t < created[i]:
                        t = created[i]
                    if t > self.end:
                        t = self.end
                    r = random_()
                    c = data.favourite[i] if r < 0.7 else data.second[i] if r < 0.85 else -1
                    if c < 0:
                        c = catalog.pick_category(rng)
                    code = MIX[int(random_() * 100)]
                    seen = recent.get(i)
                    if code == VIEWED:
                        p = pick(rng, c)
                        properties = catalog.viewed[p]
                        if seen is None:
                            recent[i] = [p]
                        else:
                            if p in seen:
                                seen.remove(p)
                            seen.insert(0, p)
                            del seen[MAX_RECENTLY_VIEWED:]
                    elif code == SEARCHED:
                        properties = queries[c][random_() < 0.15]
                    elif code == ADDED:
                        p = seen[0] if seen and random_() < 0.7 else pick(rng, c)
                        if not catalog.in_stock[p]:
                            p = pick(rng, c)
                        properties = catalog.added[p]
                        lines = cart.setdefault(i, [])
                        if all(q != p for q, _ in lines):
                            lines.append((p, t))
                    elif code == WISHED:
                        wanted = catalog.wanted[c]
                        p = (
                            wanted[int(random_() * len(wanted))]
                            if wanted and random_() < 0.4
                            else pick(rng, c)
                        )
                        properties = catalog.viewed[p]
                        wished = wishlist.setdefault(i, [])
                        if p not in wished and len(wished) < MAX_WISHLIST:
                            wished.append(p)
                    elif code == CHECKOUT:
                        value = (
                            sum(catalog.price[q] for q, _ in cart.get(i, ()))
                            or catalog.price[pick(rng, c)]
                        )
                        properties = (
                            f'{{"checkout_id": "k-{getrandbits(48):012x}",'
                            f' "value": {value:.2f}, "currency": "EUR"}}'
                        )
                    else:
                        items = [q for q, _ in cart.pop(i, [])] or [
                            seen[0] if seen else pick(rng, c)
                        ]
                        first = items[0]
                        if random_() < 0.45:
                            items.append(catalog.companions[first][0])
                        if random_() < 0.2:
                            items.append(catalog.companions[first][1])
                        items = list(dict.fromkeys(items))
                        total_price = sum(catalog.price[q] for q in items)
                        properties = (
                            f'{{"order_id": "o-{getrandbits(48):012x}", "total": {total_price:.2f},'
                            f' "revenue": {total_price / 1.19:.2f}, "shipping": 4.95,'
                            f' "tax": {total_price - total_price / 1.19:.2f}, "currency": "EUR",'
                            f' "products": [{", ".join(catalog.line[q] for q in items)}]}}'
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
                            f"wf-{getrandbits(128):032x}\tapi\n",
                        )
                    )
                data.mix.update({NAMES[code]: k for code, k in mix.items()})
            rows.sort(key=lambda row: row[0])
            write("".join(row[1] for row in rows))
            written += len(rows)
            if d % 30 == 29:
                log(f"  events: day {d + 1} of {DAYS}, {written:,} rows")
        return written

    def contacts(self, write: Callable[[str], None], order: list[tuple[RecsTenant, int]]) -> int:
        rng, clock = self.rng, self.clock
        random_, choice = rng.random, rng.choice
        recent_cutoff = self.end - 90 * 86400
        lines: list[str] = []
        for data, i in order:
            catalog = data.catalog
            pk = data.ids[i]
            orders = data.orders[i]
            known = data.known[i] or orders > 0  # a buyer has an account
            created = clock.text(data.created[i])
            user_id = email = first = last = ""
            consent, consent_at, source = "unknown", "\\N", ""
            if known:
                first, last = choice(shop.FIRST_NAMES), choice(shop.LAST_NAMES)
                user_id = f"cust-{pk:08d}"
                email = f"{first}.{last}{pk}@{choice(shop.DOMAINS)}".lower()
                if random_() < 0.6:
                    consent, consent_at, source = "granted", created, "signup form"
            if orders >= 2:
                stage = "engagement" if data.last_order[i] > recent_cutoff else "retention"
            elif orders:
                stage = "onboarding"
            else:
                stage = "acquisition" if known else "awareness"
            cart = "[]"
            if i in data.cart:
                cart = _json(
                    [
                        {
                            "sku": catalog.skus[p],
                            "name": catalog.names[p],
                            "price": catalog.price[p],
                            "quantity": 1,
                            "added_at": datetime.fromtimestamp(t, UTC).isoformat(),
                        }
                        for p, t in data.cart[i]
                    ]
                )
            wishlist = _json([catalog.skus[p] for p in data.wishlist.get(i, ())])
            recently = _json([catalog.skus[p] for p in data.recent.get(i, ())])
            seen = clock.text(data.last_seen[i]) if data.last_seen[i] else "\\N"
            locale = choice(shop.LOCALES) if data.last_seen[i] or known else ""
            lines.append(
                f"{pk}\t{data.tenant_id}\t{uuid.UUID(int=rng.getrandbits(128), version=4)}\t"
                f"{user_id}\t{email}\t\t{first}\t{last}\t\t{locale}\t\\N\t\\N\t\\N\t{{}}\t"
                f"{consent}\t{consent_at}\t{source}\tunknown\t\\N\t\t{stage}\t{cart}\t"
                f"{wishlist}\t{recently}\t{created}\t{seen}\n"
            )
            if len(lines) >= 10_000:
                write("".join(lines))
                lines.clear()
        write("".join(lines))
        return len(order)

    def identities(self, write: Callable[[str], None], order: list[tuple[RecsTenant, int]]) -> int:
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


PRODUCT_COLUMNS = [
    "tenant_id",
    "public_id",
    "sku",
    "name",
    "url",
    "image_url",
    "price",
    "currency",
    "in_stock",
    "category",
    "created_at",
    "updated_at",
]


def product_columns_check() -> list[str]:
    """The columns the products' COPY fills; a column the product (or a helper's migration) has
    added beyond them must have a default the database applies, or the bench says so."""
    from audience.models import Product

    extra = []
    for f in Product._meta.concrete_fields:
        if f.column in PRODUCT_COLUMNS or f.column == "id" or f.generated:
            continue
        if not (f.null or f.has_db_default()):
            raise BenchError(
                f"audience_product has a column {f.column} that bench/recs.py does not fill:"
                " update its generator"
            )
        extra.append(f.column)
    return extra


def products_load(database: BenchDatabase, tenants: list[RecsTenant], end: float) -> float:
    """The catalogs by COPY (indexes kept: 100k rows), then ANALYZE."""
    began = time.perf_counter()
    rng = random.Random(7)
    clock = shop.Clock(end - ARRIVALS_DAYS * 86400, ARRIVALS_DAYS)
    with database.connect() as conn, conn.cursor() as cursor:
        statement = f"COPY audience_product ({', '.join(PRODUCT_COLUMNS)}) FROM STDIN"
        with cursor.copy(statement) as copy:
            for data in tenants:
                catalog = data.catalog
                lines = []
                for p in range(catalog.n):
                    created = clock.text(end - ARRIVALS_DAYS * 86400 * rng.random() ** 0.7)
                    if catalog.restocked[p]:
                        updated = clock.text(end - 7 * 86400 * rng.random())
                    elif not catalog.in_stock[p]:
                        updated = clock.text(end - 60 * 86400 * rng.random())
                    else:
                        updated = created
                    lines.append(
                        f"{data.tenant_id}\t{uuid.UUID(int=rng.getrandbits(128), version=4)}\t"
                        f"{catalog.skus[p]}\t{catalog.names[p]}\t{catalog.url(p)}\t"
                        f"{catalog.image(p)}\t{catalog.price[p]:.2f}\tEUR\t"
                        f"{'t' if catalog.in_stock[p] else 'f'}\t"
                        f"{CATEGORIES[catalog.category[p]][0]}\t{created}\t{updated}\n"
                    )
                copy.write("".join(lines))
    with database.connect(autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE audience_product")
    return time.perf_counter() - began


BACK_IN_STOCK = "Product Back in Stock"  # audience/catalog.py's, one per wisher


def back_in_stock_events(database: BenchDatabase) -> int:
    """What the catalog's update recorded when the restocked products came back (audience/
    catalog.py: one `Product Back in Stock` event for every contact with the product in their
    wishlist, at the product's update), unless there are some already (--reuse)."""
    with database.connect() as conn:
        if conn.execute(
            "SELECT EXISTS (SELECT 1 FROM audience_event WHERE name = %s)", [BACK_IN_STOCK]
        ).fetchone()[0]:
            return 0
        made = conn.execute(
            "INSERT INTO audience_event (tenant_id, contact_id, type, name, properties, context,"
            " occurred_at, received_at, message_id, source)"
            " SELECT w.tenant_id, w.id, 'track', %s, jsonb_build_object('sku', p.sku, 'name',"
            "  p.name, 'price', p.price::text, 'currency', p.currency, 'url', p.url,"
            "  'image_url', p.image_url, 'category', p.category), '{}', p.updated_at,"
            "  p.updated_at, %s || ':' || p.sku || ':' || p.updated_at, 'catalog'"
            " FROM (SELECT c.tenant_id, c.id, s.sku FROM audience_contact c,"
            "  jsonb_array_elements_text(c.wishlist) s(sku) WHERE c.wishlist <> '[]') w"
            " JOIN audience_product p ON p.tenant_id = w.tenant_id AND p.sku = w.sku"
            " WHERE p.in_stock AND p.updated_at > now() - interval '7 days'",
            [BACK_IN_STOCK, BACK_IN_STOCK],
        ).rowcount
    with database.connect(autocommit=True) as conn:
        conn.execute("ANALYZE audience_event")
    return made


# --- what the product precomputes, and the marketer's set-up -------------------------------------

# What the personalisation apps precompute periodically (module, function): run once after the
# load for each team, as the beat would, each timed. A function that takes `tenant` (or
# `tenant_id`) is called per team, one without arguments once. A missing one is skipped (the
# report lists what ran).
PRECOMPUTE = [
    ("audience.recommendation_stats", "recommendation_stats_refresh"),  # trending, pairs
    ("personalisation.search.tasks", "search_index_refresh"),  # the catalog's word index
]


def precompute(tenants: list[Any]) -> list[str]:
    import inspect

    done = []
    for module_name, name in PRECOMPUTE:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        fn = getattr(module, name, None)
        if fn is None:
            continue
        began = time.perf_counter()
        log(f"precompute: {module_name}.{name}")
        try:
            parameters = inspect.signature(fn).parameters
            if "tenant" in parameters:
                for tenant in tenants:
                    fn(tenant=tenant)
            elif "tenant_id" in parameters:
                for tenant in tenants:
                    fn(tenant_id=tenant.pk)
            else:
                fn()
        except Exception as exc:  # the app mid-change: say so, measure what there is
            done.append(f"{module_name}.{name} FAILED: {exc.__class__.__name__}: {exc}"[:200])
            continue
        done.append(f"{module_name}.{name} {time.perf_counter() - began:.1f} s")
    # What autovacuum would do soon after (it is off on some servers, this one included): the
    # planner must know the tables just filled, or it plans for empty ones.
    from django.db import connection

    began = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    done.append(f"ANALYZE {time.perf_counter() - began:.1f} s")
    return done


PLACEMENTS = ["home-banner", "cart-upsell"]


def setup_marketing(tenant: Any) -> list[str]:
    """A home banner with variants by segment and by lifecycle stage and a default, a cart
    upsell with a default only, and a synonym: through the product's services, whichever
    exist yet. Returns what it did, for the report."""
    notes: list[str] = []
    try:
        from personalisation.placements.services import placement_create, variant_create
    except ImportError as exc:
        notes.append(f"placements: not there yet ({exc})")
    else:
        segment = None
        try:
            from segments.services import segment_create

            began = time.perf_counter()
            segment = segment_create(
                tenant=tenant,
                name="Sneaker browsers",
                rules={
                    "type": "group",
                    "match": "all",
                    "negate": False,
                    "children": [
                        {
                            "type": "event",
                            "event": "Product Viewed",
                            "where": [
                                {"property": "category", "operator": "equals", "value": "Sneakers"}
                            ],
                            "window": {"last_days": 30},
                        }
                    ],
                },
            )
            notes.append(f"segment 'Sneaker browsers' made in {time.perf_counter() - began:.1f} s")
        except Exception as exc:
            notes.append(f"segment: {exc.__class__.__name__}: {exc}"[:200])
        try:
            home = placement_create(tenant=tenant, key="home-banner", name="Home banner")
            if segment is not None:
                variant_create(
                    tenant=tenant,
                    placement=home,
                    name="Sneakers",
                    title="New sneakers are in",
                    link_url="https://shop.example.com/c/sneakers",
                    segment=segment,
                )
            variant_create(
                tenant=tenant,
                placement=home,
                name="Come back",
                title="We miss you: 10% off",
                link_url="https://shop.example.com/",
                lifecycle_stage="retention",
            )
            variant_create(
                tenant=tenant,
                placement=home,
                name="Default",
                title="Gear for every trail",
                link_url="https://shop.example.com/",
            )
            upsell = placement_create(tenant=tenant, key="cart-upsell", name="Cart upsell")
            variant_create(
                tenant=tenant,
                placement=upsell,
                name="Default",
                title="Free shipping over 50 EUR",
                link_url="https://shop.example.com/cart",
            )
            notes.append("placements: home-banner (segment, stage, default), cart-upsell")
        except Exception as exc:
            notes.append(f"placements: {exc.__class__.__name__}: {exc}"[:200])
    notes.append(synonyms_setup(tenant))
    return notes


def synonyms_setup(tenant: Any) -> str:
    """What shoppers type for what the catalog calls sneakers (a synonym rewrites its term into
    each alternative: one way)."""
    try:
        from personalisation.search.models import Synonym
        from personalisation.search.services import synonyms_set
    except ImportError:
        return "synonyms: not there yet"
    if Synonym.objects.filter(tenant=tenant, term="trainers").exists():
        return "synonym: trainers → sneakers (kept)"
    try:
        synonyms_set(tenant=tenant, term="trainers", alternatives=["sneakers"])
    except Exception as exc:
        return f"synonyms: {exc.__class__.__name__}: {exc}"[:200]
    return "synonym: trainers → sneakers"


# --- the data ------------------------------------------------------------------------------------


@dataclass
class DataResult:
    seconds: dict[str, float] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    mix: Counter[str] = field(default_factory=Counter)


def create_tenants(args: argparse.Namespace) -> list[RecsTenant]:
    from tenants.services import tenant_create

    sizes = [(SLUG, args.contacts, args.events, args.products)]
    if args.noise_scale:
        sizes.append(
            (
                "bench-noise",
                max(100, int(args.contacts * args.noise_scale)),
                max(1_000, int(args.events * args.noise_scale)),
                max(400, int(args.products * args.noise_scale)),
            )
        )
    owner = analytics_bench.member()
    return [
        RecsTenant(
            tenant_id=tenant_create(name=f"Bench {slug}", slug=slug, owner=owner).pk,
            slug=slug,
            contacts=contacts,
            events=events,
            products=products,
        )
        for slug, contacts, events, products in sizes
    ]


def data_make(args: argparse.Namespace) -> DataResult:
    database: BenchDatabase = args.database
    result = DataResult()
    shop.disconnect_segment_receivers()
    shop.check_columns()
    product_columns_check()
    tenants = create_tenants(args)
    rng = random.Random(args.seed)
    end = time.time()
    began = time.perf_counter()
    for data in tenants:
        data.events_start = end - DAYS * 86400
        data.plan(rng, end - ARRIVALS_DAYS * 86400, end)
        data.catalog = Catalog(random.Random(args.seed + 1), data.products)  # same skus
        data.tastes(rng)
    result.seconds["catalog and tastes"] = time.perf_counter() - began
    with database.connect() as conn:
        shop.ORDERS_LEDGER = shop.table_exists(conn, shop.ORDERS)
    partitions = shop.partitions_make(database, tenants[0].tenant_id, end - DAYS * 86400, end)
    if partitions:
        log(f"{partitions} monthly event partitions")
    log(
        f"generating {sum(t.contacts for t in tenants):,} contacts,"
        f" {sum(t.products for t in tenants):,} products and"
        f" {sum(t.events for t in tenants):,} events ({len(tenants)} teams)"
    )
    generator = Generator(rng, tenants, end)
    loaded = shop.load(database, generator, tenants)
    result.seconds.update(loaded.seconds)
    result.rows.update(loaded.rows)
    result.mix = tenants[0].mix
    log("COPY audience_product")
    result.seconds["COPY audience_product"] = products_load(database, tenants, end)
    result.rows["audience_product"] = sum(t.products for t in tenants)
    began = time.perf_counter()
    result.rows[BACK_IN_STOCK] = back_in_stock_events(database)
    result.seconds[BACK_IN_STOCK] = time.perf_counter() - began
    log(f"generated and loaded in {sum(result.seconds.values()):.0f} s")
    return result


# --- the probes ----------------------------------------------------------------------------------


@dataclass
class Visitors:
    """Who asks, sampled from the data: (query parameters of the visitor) lists."""

    history: list[dict[str, str]]  # anonymous ids of contacts with recently viewed products
    buyers: list[dict[str, str]]  # user ids of contacts with 2+ orders
    wishers: list[dict[str, str]]  # contacts told a wishlist product is back in stock
    strangers: list[dict[str, str]]  # anonymous ids the shop has never seen
    products: list[str]  # skus of popular products in stock
    bought: list[str]  # skus that appear in orders with others
    exact_names: list[str]
    sneakers: list[str]  # skus of the first category's products in stock


def visitors_sample(tenant_id: int, n: int, seed: int) -> Visitors:
    from django.db import connection

    rng = random.Random(seed)

    def rows(sql_text: str, params: list[Any]) -> list[Any]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT setseed(%s)", [0.5])
            cursor.execute(sql_text, params)
            return [r[0] for r in cursor.fetchall()]

    # Contacts sampled by id (ids are dense), then filtered: no sort of the whole table.
    history = rows(
        "SELECT i.value FROM audience_identity i JOIN audience_contact c"
        " ON c.tenant_id = i.tenant_id AND c.id = i.contact_id"
        " WHERE i.tenant_id = %s AND i.kind = 'anonymous_id' AND c.recently_viewed <> '[]'"
        " AND random() < 0.02 LIMIT %s",
        [tenant_id, n],
    )
    buyers = rows(
        "SELECT c.user_id FROM audience_contact c WHERE c.tenant_id = %s"
        " AND c.lifecycle_stage IN ('engagement', 'retention') AND c.user_id <> ''"
        " AND random() < 0.1 LIMIT %s",
        [tenant_id, n],
    )
    wishers = rows(
        "SELECT i.value FROM audience_identity i WHERE i.tenant_id = %s"
        " AND i.kind = 'anonymous_id' AND i.contact_id IN (SELECT contact_id FROM audience_event"
        "  WHERE tenant_id = %s AND name = %s AND occurred_at > now() - interval '8 days')"
        " LIMIT %s",
        [tenant_id, tenant_id, BACK_IN_STOCK, n],
    )
    products = rows(
        "SELECT sku FROM audience_product WHERE tenant_id = %s AND in_stock"
        " ORDER BY random() LIMIT %s",
        [tenant_id, n],
    )
    bought = rows(
        "SELECT DISTINCT p->>'sku' FROM (SELECT properties FROM audience_order"
        " WHERE tenant_id = %s ORDER BY occurred_at DESC LIMIT 2000) o,"
        " jsonb_array_elements(o.properties->'products') p"
        " WHERE jsonb_array_length(o.properties->'products') > 1 LIMIT %s",
        [tenant_id, n],
    )
    names = rows(
        "SELECT name FROM audience_product WHERE tenant_id = %s AND in_stock"
        " AND category = %s ORDER BY random() LIMIT %s",
        [tenant_id, CATEGORIES[0][0], 50],
    )
    sneakers = rows(
        "SELECT sku FROM audience_product WHERE tenant_id = %s AND in_stock AND category = %s"
        " LIMIT %s",
        [tenant_id, CATEGORIES[0][0], 10],
    )
    strangers = [
        {"anonymousId": str(uuid.UUID(int=rng.getrandbits(128), version=4))} for _ in range(n)
    ]
    return Visitors(
        history=[{"anonymousId": v} for v in history],
        buyers=[{"userId": v} for v in buyers],
        wishers=[{"anonymousId": v} for v in wishers],
        strangers=strangers,
        products=products,
        bought=bought,
        exact_names=names,
        sneakers=sneakers,
    )


@dataclass
class Probe:
    label: str
    path: str
    params: list[dict[str, str]]
    expect: str = "products"  # "products": answers should have some; "none": should have none
    baseline: bool = False
    # Untimed, before each request: what the visitor's page did a moment before (tracked events
    # into the ingestion inbox, which the endpoint may have to record first).
    before: Callable[[dict[str, str]], None] | None = None
    # What a right answer has (its first product, for search), checked on every timed answer.
    check: Callable[[dict[str, str], dict[str, Any]], bool] | None = None
    right: int = 0
    ms: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    answered: int = 0  # answers with products (or a variant)
    queries: int = 0
    sql_ms: float = 0.0
    slowest: list[tuple[float, str]] = field(default_factory=list)
    error: str = ""
    example: str = ""
    missing: bool = False  # the endpoint answered 404 Not found in the warm-up
    profile: str = ""
    statements: list[tuple[float, str]] = field(default_factory=list)  # one request's
    cpu: list[float] = field(default_factory=list)  # this process's CPU per request, ms
    backend_cpu: float = 0.0  # its PostgreSQL backend's, seconds, over the timed requests


def page_view(tenant: Any, sku: str) -> Callable[[dict[str, str]], None]:
    """A Product Viewed of `sku` by the visitor, accepted into the ingestion inbox as the
    tracker's call would be, not recorded yet (the worker is moments behind)."""
    from audience.services import visitor_events_accept

    properties = {"sku": sku, "product_id": sku.lower(), "category": CATEGORIES[0][0]}

    def view(params: dict[str, str]) -> None:
        visitor_events_accept(
            tenant=tenant,
            user_id=params.get("userId"),
            anonymous_id=params.get("anonymousId"),
            events=[("Product Viewed", properties)],
            source="bench",
        )

    return view


def _first(answer: dict[str, Any]) -> dict[str, Any]:
    products = answer.get("products") or [{}]
    return products[0] if isinstance(products[0], dict) else {}


def named(params: dict[str, str], answer: dict[str, Any]) -> bool:
    """The exact name's product comes first."""
    return str(_first(answer).get("name", "")).lower() == params["q"].lower()


def in_category(category: str) -> Callable[[dict[str, str], dict[str, Any]], bool]:
    def check(params: dict[str, str], answer: dict[str, Any]) -> bool:
        return _first(answer).get("category") == category

    return check


def probes_make(v: Visitors, tenant: Any) -> list[Probe]:
    def with_(params: list[dict[str, str]], **extra: str) -> list[dict[str, str]]:
        return [{**p, **extra} for p in params] or [extra]

    def product(skus: list[str]) -> list[dict[str, str]]:
        return [{"product": s} for s in skus]

    recs, search = "/v1/recommendations", "/v1/search"
    limit = {"limit": "8"}
    typo = CATEGORIES[0][2]
    name = v.exact_names[0] if v.exact_names else "Northfold Trail Sneakers"
    probes = [
        Probe("baseline: GET /v1/push/key", "/v1/push/key", [{}], expect="", baseline=True),
        Probe("recs auto (visitor with history)", recs, [{**p, **limit} for p in v.history]),
        Probe("recs auto (unknown visitor)", recs, [{**p, **limit} for p in v.strangers]),
        Probe(
            "recs auto right after a page view",
            recs,
            [{**p, **limit} for p in v.history],
            before=page_view(tenant, v.sneakers[0] if v.sneakers else "SNE-100000"),
        ),
        Probe(
            "recs recently_viewed",
            recs,
            with_(v.history, strategy="recently_viewed", limit="8"),
        ),
        Probe(
            "recs similar (product)",
            recs,
            [
                {**h, **p, "strategy": "similar", "limit": "8"}
                for h, p in zip(v.history, product(v.products), strict=False)
            ],
        ),
        Probe(
            "recs bought_together (product, buyer)",
            recs,
            [
                {**b, **p, "strategy": "bought_together", "limit": "8"}
                for b, p in zip(itertools.cycle(v.buyers or [{}]), product(v.bought))
            ],
        ),
        Probe("recs trending (visitor with history)", recs, with_(v.history, strategy="trending")),
        Probe("recs back_in_stock (wishlist)", recs, with_(v.wishers, strategy="back_in_stock")),
        Probe(
            "search exact name",
            search,
            [{"q": n} for n in v.exact_names] or [{"q": name}],
            check=named,
        ),
        Probe(
            "search prefix 'snea'",
            search,
            with_(v.strangers, q="snea"),
            check=in_category(CATEGORIES[0][0]),
        ),
        Probe(
            f"search typo '{typo}'",
            search,
            with_(v.strangers, q=typo),
            check=in_category(CATEGORIES[0][0]),
        ),
        Probe(
            "search synonym 'trainers'",
            search,
            with_(v.strangers, q="trainers"),
            check=in_category(CATEGORIES[0][0]),
        ),
        Probe("search personalised 'jacket' (history)", search, with_(v.history, q="jacket")),
        Probe(
            "search zero results",
            search,
            with_(v.strangers, q="zqxv plonk"),
            expect="none",
        ),
        Probe(
            "placements (visitor with history)",
            "/v1/placements",
            with_(v.history, keys=",".join(PLACEMENTS)),
        ),
        Probe(
            "placements right after a page view",
            "/v1/placements",
            with_(v.history, keys=",".join(PLACEMENTS)),
            before=page_view(tenant, v.sneakers[0] if v.sneakers else "SNE-100000"),
        ),
        Probe(
            "placements (buyer)",
            "/v1/placements",
            with_(v.buyers, keys=",".join(PLACEMENTS)),
        ),
    ]
    return probes


def answered(probe: Probe, body: bytes) -> bool:
    """Whether an answer had what the probe is about (products, or a variant)."""
    try:
        data = json.loads(body)
    except ValueError:
        return False
    if not isinstance(data, dict):
        return False
    if "placements" in data and isinstance(data["placements"], dict):
        return any(data["placements"].values())
    return bool(data.get("products"))


def measure_probes(args: argparse.Namespace, tenant: Any, probes: list[Probe]) -> None:
    import logging

    from django.core.signals import got_request_exception
    from django.db import connection, reset_queries
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from tenants.services import api_key_create

    _key, raw = api_key_create(tenant=tenant, kind="write", name="bench recs")
    auth = "Basic " + base64.b64encode(f"{raw}:".encode()).decode()
    client = Client(raise_request_exception=False, HTTP_AUTHORIZATION=auth)
    failures: list[str] = []

    def failed(sender: Any, request: Any = None, **kwargs: Any) -> None:
        exc = sys.exc_info()[1]
        failures.append(f"{exc.__class__.__name__}: {exc}"[:200] if exc else "?")

    got_request_exception.connect(failed, weak=False)
    logging.getLogger("django.request").setLevel(logging.CRITICAL)
    cycles = {id(p): itertools.cycle(p.params) for p in probes}

    def one(probe: Probe, timed: bool) -> None:
        params = next(cycles[id(probe)])
        if probe.before is not None:
            probe.before(params)
        cpu = time.process_time()
        began = time.perf_counter()
        response = client.get(probe.path, params)
        ms = 1000 * (time.perf_counter() - began)
        cpu = 1000 * (time.process_time() - cpu)
        if not timed:
            if response.status_code == 404 and b'"not_found"' in response.content:
                probe.missing = True  # the URL resolver has no such endpoint (yet)
            return
        probe.ms.append(ms)
        probe.cpu.append(cpu)
        probe.statuses[response.status_code] += 1
        if response.status_code == 200 and answered(probe, response.content):
            probe.answered += 1
            if probe.check is not None and probe.check(params, json.loads(response.content)):
                probe.right += 1
        if response.status_code != 200 and not probe.error:
            probe.error = f"HTTP {response.status_code}: {response.content[:160]!r}"
            if failures:
                probe.error += f" {failures[-1]}"
        if not probe.example and response.status_code == 200:
            probe.example = response.content[:300].decode(errors="replace")

    def drain() -> None:
        """The ingest worker's turn (untimed): the served answers' events and the page views
        the requests put in the inbox are recorded, as a running worker does moments later,
        so the inbox holds only what the next requests add."""
        from audience.inbox import inbox_drain

        inbox_drain()

    for probe in probes:
        log(f"warm-up: {probe.label}")
        for _ in range(args.warmup):
            one(probe, timed=False)
        drain()
    live = [p for p in probes if not p.missing]
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    for r in range(args.rounds):
        log(f"round {r + 1} of {args.rounds}")
        for probe in live:
            before = analytics_bench.backend_cpu(backend)
            for _ in range(args.per_round):
                one(probe, timed=True)
            probe.backend_cpu += analytics_bench.backend_cpu(backend) - before
            drain()
    if args.profile:
        import cProfile
        import io
        import pstats

        for probe in live:
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(args.per_round):
                one(probe, timed=False)
            profiler.disable()
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out)
            # The product's own functions and the ORM's, not the test Client's frames.
            stats.sort_stats("cumulative").print_stats(
                r"(audience|personalisation|messaging|core|tenants)/|models/(query|base)\.py"
                r"|psycopg/connection",
                args.profile_top,
            )
            probe.profile = out.getvalue()
    for probe in live:
        params = next(cycles[id(probe)])
        if probe.before is not None:
            probe.before(params)
        with CaptureQueriesContext(connection) as captured:
            client.get(probe.path, params)
        drain()
        probe.queries = len(captured.captured_queries)
        times = [(1000 * float(q["time"]), q["sql"]) for q in captured.captured_queries]
        probe.sql_ms = sum(t for t, _ in times)
        probe.slowest = sorted(times, reverse=True)[: args.explain_top]
        probe.statements = times
        reset_queries()


def explain(sql_text: str) -> str:
    from django.db import connection

    if not sql_text.lstrip().upper().startswith(("SELECT", "WITH")):
        return "(not a SELECT: not explained)"
    with connection.cursor() as cursor:
        try:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql_text)
            return "\n".join(row[0] for row in cursor.fetchall())
        except Exception as exc:
            return f"(EXPLAIN failed: {exc})"


# --- the report ----------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def table_sizes(tenant_id: int) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT count(*) FROM audience_product WHERE tenant_id = %s),"
            " (SELECT count(*) FROM audience_contact WHERE tenant_id = %s),"
            " (SELECT count(*) FROM audience_order WHERE tenant_id = %s),"
            " (SELECT count(*) FROM audience_product WHERE tenant_id = %s AND NOT in_stock)",
            [tenant_id] * 4,
        )
        products, contacts, orders, out = cursor.fetchone()
    return (
        f"{products:,} products ({out:,} out of stock), {contacts:,} contacts,"
        f" {orders:,} orders in the ledger"
    )


def print_report(
    args: argparse.Namespace,
    machine: str,
    data: DataResult | None,
    sizes: str,
    setup: list[str],
    probes: list[Probe],
    visitors: Visitors,
) -> int:
    print()
    print("Wayfarer personalisation benchmark (recommendations, search, placements)")
    print(f"  machine:    {machine}")
    for line in conditions_lines(args.load_at_start, args.python_speed, "slower figures"):
        print(line)
    print(f"  team:       {sizes}")
    print(f"  database:   {args.rls}")
    if data:
        print(f"  loaded:     {', '.join(f'{t} {n:,}' for t, n in data.rows.items())}")
        print(f"  load time:  {', '.join(f'{k} {v:.0f} s' for k, v in data.seconds.items())}")
        print(f"  the team's events: {', '.join(f'{k} {v:,}' for k, v in data.mix.most_common())}")
    for note in setup:
        print(f"  set-up:     {note}")
    print(
        f"  visitors:   {len(visitors.history)} with history, {len(visitors.buyers)} buyers,"
        f" {len(visitors.wishers)} with a restocked wish, {len(visitors.strangers)} unknown"
    )
    print()
    print(
        "Server time in this process (Django's test Client, the write key as HTTP Basic),"
        f" {args.warmup} warm-up + {args.rounds} rounds x {args.per_round} timed requests per"
        " probe, probes interleaved in each round"
    )
    base = next((p for p in probes if p.baseline and p.ms), None)
    base_median = statistics.median(base.ms) if base else 0.0
    base_p95 = percentile(base.ms, 95) if base else 0.0
    rows = []
    measured = []
    for p in probes:
        if not p.ms:
            why = "NOT MEASURED" + (": no such endpoint yet" if p.missing else "")
            rows.append((p.label, "-", "-", "-", "-", "-", "-", "-", why))
            continue
        median, p95, p99 = statistics.median(p.ms), percentile(p.ms, 95), percentile(p.ms, 99)
        ok = p.statuses.get(200, 0)
        if p.expect == "products":
            share = f"{100 * p.answered / max(1, ok):.0f}%"
            if p.check is not None:
                share += f" ({100 * p.right / max(1, ok):.0f}% right)"
        elif p.expect == "none":
            share = f"{100 * (ok - p.answered) / max(1, ok):.0f}% empty"
        else:
            share = ""
        if p.error and not ok:
            status = p.error[:60]
        elif p.baseline:
            status = "baseline"
        else:
            status = verdict(p95 <= TARGET_MS)
            measured.append(p95)
        rows.append(
            (
                p.label,
                f"{median:.1f}",
                f"{p95:.1f}",
                f"{p99:.1f}",
                f"{median / base_median:.1f}x" if base_median and not p.baseline else "",
                f"{p95 / base_p95:.1f}x" if base_p95 and not p.baseline else "",
                f"{statistics.mean(p.cpu):.1f} + {1000 * p.backend_cpu / len(p.ms):.1f}",
                f"{p.queries} ({p.sql_ms:.0f} ms)",
                f"{share} {status}".strip(),
            )
        )
    shop.print_table(
        (
            "probe",
            "median ms",
            "p95 ms",
            "p99 ms",
            "median/base",
            "p95/base",
            "CPU ms: Django + PG",
            "SQL (time)",
            "answers with products, p95 <= 50 ms",
        ),
        rows,
    )
    print(
        "  right: the first product is the one named (exact name), or of the category the word"
        " names (prefix, typo, synonym)"
    )
    print(
        "  CPU ms: this process's CPU time per request (mean) + its PostgreSQL backend's (mean,"
        " from /proc in clock ticks): the work a request costs, which a busy machine does not"
        " inflate as it does wall time"
    )
    errors = [p for p in probes if p.error and not p.missing]
    for p in errors:
        print(f"  {p.label}: {p.error}")
    if measured:
        worst = max(measured)
        print(
            f"  worst p95 of {len(measured)} probes: {worst:.1f} ms (target <= {TARGET_MS:.0f} ms):"
            f" {verdict(worst <= TARGET_MS)}"
        )
    if args.statements:
        for p in probes:
            if p.statements:
                print()
                print(f"  SQL of one request of {p.label}:")
                for ms, sql_text in p.statements:
                    print(f"    {ms:6.1f} ms  {' '.join(sql_text.split())[:150]}")
    if args.profile:
        for p in probes:
            if p.profile:
                print()
                print(f"  cProfile, {args.per_round} requests of {p.label} (cumulative):")
                lines = p.profile.splitlines()
                start = next((k for k, x in enumerate(lines) if "ncalls" in x), 0)
                for line in lines[start:]:
                    if line.strip():
                        print(f"    {line[:160]}")
    if args.explain:
        seen: set[str] = set()
        for p in probes:
            for ms, sql_text in p.slowest:
                key = re.sub(r"'[^']*'|\d+", "N", sql_text)[:300]
                if key in seen or ms < 1.0:
                    continue
                seen.add(key)
                print()
                print(f"  EXPLAIN (ANALYZE, BUFFERS), {ms:.1f} ms in {p.label}:")
                print(f"    {sql_text[:2000]}")
                for line in explain(sql_text).splitlines():
                    print(f"      {line}")
    return 0


# --- main ----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.load_at_start = os.getloadavg()[0]
    args.python_speed = python_speed()
    signal.signal(signal.SIGTERM, terminated)
    try:
        with analytics_bench.bench_database(args.database, keep=args.keep, reuse=args.reuse):
            return measure(args)
    except (BenchError, psycopg.Error) as exc:
        print(f"\nbench/recs.py: {exc}", file=sys.stderr)
        return 1


def measure(args: argparse.Namespace) -> int:
    from tenants.models import Tenant

    data = None
    setup: list[str] = []
    if not args.reuse:
        data = data_make(args)
    else:
        log(f"{back_in_stock_events(args.database):,} {BACK_IN_STOCK} events added")
    tenant = Tenant.objects.get(slug=SLUG)
    if not (args.reuse and args.no_precompute):
        setup += precompute(list(Tenant.objects.filter(slug__startswith="bench-").order_by("pk")))
    if not args.reuse or not _placements_exist(tenant):
        setup += setup_marketing(tenant)
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # the segment's members, as autovacuum would soon
    else:
        setup.append(synonyms_setup(tenant))
    machine = machine_description(args.database.server_version())
    from core.rls import role_bypasses_rls

    args.rls = (
        "row-level security BYPASSED (the URL's role is a superuser or BYPASSRLS: the product's"
        " own role, e.g. postgres://wayfarer@…, measures its policies too)"
        if role_bypasses_rls()
        else "row-level security applied (the URL's role is an ordinary one, as the product's)"
    )
    visitors = visitors_sample(tenant.pk, 200, args.seed)
    probes = probes_make(visitors, tenant)
    wanted = [w.strip() for w in args.probes.split(",") if w.strip()]
    if wanted:
        probes = [p for p in probes if p.baseline or any(w in p.label for w in wanted)]
    measure_probes(args, tenant, probes)
    return print_report(args, machine, data, table_sizes(tenant.pk), setup, probes, visitors)


def _placements_exist(tenant: Any) -> bool:
    try:
        from personalisation.placements.models import Placement
    except ImportError:
        return False
    try:
        return Placement.objects.filter(tenant=tenant).exists()
    except Exception:
        return False


if __name__ == "__main__":
    sys.exit(main())
