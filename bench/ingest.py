#!/usr/bin/env python
# ruff: noqa: T201  (a command-line report: printing is its job)
"""Ingestion benchmark: how many Segment-style events per second Wayfarer stores over HTTP, and
how that compares with the fastest way PostgreSQL can take the same rows (COPY).

    .venv/bin/python bench/ingest.py [--events N] [--batch-size B] [--workers W] [--profile]

One run, on its own database (nothing touches the development data):

1. Recreates a PostgreSQL database (default `wayfarer_bench` on 127.0.0.1, dropped afterwards),
   runs `manage.py migrate` on it and creates tenants and a write key through the product's own
   services (`tenant_create`, `api_key_create`).
2. Starts the app under gunicorn (`config.wsgi`, DEBUG=false, a temporary WAYFARER_VAR_DIR) on a
   free port of 127.0.0.1.
3. HTTP batch: sends N generated e-commerce events (Product Viewed, Products Searched, Product
   Added, Checkout Started, Order Completed with Segment E-commerce properties, from N/20
   visitors, some of whom sign in and send a userId, a few on a second device so profiles get
   merged) as POST /v1/batch requests of B messages, from several concurrent keep-alive client
   connections that retry 5xx answers as SDKs do, and measures stored events/s from the first
   request to the last answer. Then checks that exactly N events are stored.
4. COPY: writes the same N events into the same table (for a second tenant, whose contacts are
   created first so the foreign keys hold) with psycopg's `cursor.copy()`, and measures rows/s:
   the ceiling for this table on this machine.
5. Single events: sends single-event POST /v1/track requests and measures requests/s, divided by
   the number of gunicorn workers.
6. Prints the figures against the targets (MET / MISSED), stops gunicorn and drops the database.
   With --profile it also profiles the HTTP path in-process (cProfile plus an SQL count per
   request) to show where the time goes.

Why: ingestion is the product's hot path. The ratio to COPY shows how much of the database's own
speed the application keeps; the absolute figures tell whether a small machine keeps up with a
busy shop. Targets: HTTP batch >= 20,000 events/s and >= 15% of COPY; /v1/track >= 1,000
requests/s per gunicorn worker.

Exit status: 0 when the measurement completed, whether or not the targets were met; 1 when it
is partial (requests that failed after every retry, a stored count that does not match; the
report is still printed and says so) or could not run; 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import http.client
import io
import itertools
import json
import os
import pstats
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
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
    cpu_count,
    django_environment,
    django_on_bench_database,
    log,
    machine_description,
    python_speed,
    terminated,
    verdict,
)
from psycopg import sql

BIN = Path(sys.executable).parent  # .venv/bin when run as `.venv/bin/python bench/ingest.py`
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/wayfarer_bench"
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/14"  # CI uses 15

TARGET_EVENTS_PER_SECOND = 20_000
TARGET_RATIO_TO_COPY = 0.15
TARGET_TRACK_PER_WORKER = 1_000


# --- command line --------------------------------------------------------------------------------


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except empty ones and those the help text already explains."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.default in (None, False, []) or "(default" in text:
            return text
        return super()._get_help_string(action)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Wayfarer ingestion benchmark: HTTP /v1/batch and /v1/track against COPY.",
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--events", type=int, default=50_000, help="events sent through /v1/batch")
    parser.add_argument(
        "--batch-size", type=int, default=100, help="messages per /v1/batch request (Segment: 100)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=cpu_count(),
        help="gunicorn workers (default: nproc, here %(default)s)",
    )
    parser.add_argument(
        "--worker-class", default="sync", help="gunicorn worker class (sync, gthread, …)"
    )
    parser.add_argument("--threads", type=int, default=1, help="gunicorn threads per worker")
    parser.add_argument(
        "--ingest-workers",
        type=int,
        default=cpu_count(),
        help="processes of the Celery ingest worker (default: nproc, Celery's own default,"
        " here %(default)s)",
    )
    parser.add_argument(
        "--clients",
        type=int,
        default=None,
        help="concurrent client connections (default: 2 per worker)",
    )
    parser.add_argument(
        "--visitors", type=int, default=None, help="distinct visitors (default: events / 20)"
    )
    parser.add_argument(
        "--identified", type=float, default=0.3, help="share of visitors who sign in (userId)"
    )
    parser.add_argument(
        "--second-devices",
        type=float,
        default=0.04,
        help="share of those who are a customer already seen on another device (profile merges)",
    )
    parser.add_argument(
        "--track-requests", type=int, default=3_000, help="single-event /v1/track requests"
    )
    parser.add_argument(
        "--database-url",
        default=DEFAULT_DATABASE_URL,
        help="the bench database; it is DROPPED and recreated (host must be 127.0.0.1)",
    )
    parser.add_argument(
        "--broker-url",
        default=DEFAULT_BROKER_URL,
        help="Celery broker of the app and its ingest worker; the bench EMPTIES this Redis"
        " database first (host must be 127.0.0.1)",
    )
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for gunicorn, e.g. CONN_MAX_AGE=60 (repeatable)",
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed of the generated data")
    parser.add_argument(
        "--max-seconds", type=float, default=600, help="time limit of each HTTP phase"
    )
    parser.add_argument(
        "--retries", type=int, default=10, help="retries per request on 5xx / lost connections"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also profile the HTTP path in-process (cProfile, SQL per request)",
    )
    parser.add_argument(
        "--profile-batches", type=int, default=10, help="batches per profiling pass"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the bench database and temporary files"
    )
    args = parser.parse_args(argv)
    if args.ingest_workers < 1:
        parser.error("--ingest-workers must be positive")
    if args.events < 1 or args.batch_size < 1 or args.workers < 1 or args.track_requests < 0:
        parser.error("--events, --batch-size and --workers must be positive")
    if not (0 <= args.identified <= 1 and 0 <= args.second_devices <= 1):
        parser.error("--identified and --second-devices are shares between 0 and 1")
    args.clients = args.clients or 2 * args.workers * args.threads
    args.visitors = max(1, args.visitors or args.events // 20)
    for item in args.server_env:
        if "=" not in item:
            parser.error(f"--server-env {item!r}: use NAME=VALUE")
    try:
        args.database = BenchDatabase(args.database_url)
    except BenchError as exc:
        parser.error(str(exc))
    if not re.fullmatch(r"redis://(127\.0\.0\.1|localhost)(:\d+)?/\d+", args.broker_url):
        parser.error("--broker-url must be redis://127.0.0.1[:port]/<database number>")
    return args


# --- generated e-commerce traffic ----------------------------------------------------------------

CATEGORIES = ["Tents", "Sleeping Bags", "Backpacks", "Footwear", "Jackets", "Stoves", "Lights"]
BRANDS = ["Northfold", "Kestrel", "Alpenrose", "Tarn & Co", "Ridgeline", "Fjellvik"]
ADJECTIVES = ["Ultralight", "Trail", "Summit", "Basecamp", "Storm", "Glacier", "Canyon"]
VARIANTS = ["Red", "Green", "Blue", "Black", "Sand", "S", "M", "L", "XL"]
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
PAGES = ["/", "/c/tents", "/c/footwear", "/search", "/cart", "/checkout", "/account"]
USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.0 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
]
LOCALES = ["en-GB", "de-DE", "fr-FR", "nl-NL", "en-US", "sv-SE"]
# Next event of a visitor: mostly browsing, sometimes buying (checkout/order need a cart; without
# one the visitor adds a product instead).
EVENT_WEIGHTS = {
    "Product Viewed": 52,
    "Products Searched": 16,
    "Product Added": 14,
    "Checkout Started": 10,
    "Order Completed": 8,
}


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    category: str
    brand: str
    price: float

    def properties(self, rng: random.Random) -> dict[str, Any]:
        slug = self.name.lower().replace(" ", "-").replace("&", "and")
        return {
            "product_id": self.sku.lower(),
            "sku": self.sku,
            "category": self.category,
            "name": self.name,
            "brand": self.brand,
            "variant": rng.choice(VARIANTS),
            "price": self.price,
            "currency": "EUR",
            "url": f"https://shop.example.com/p/{slug}",
            "image_url": f"https://cdn.example.com/p/{self.sku.lower()}.jpg",
        }


@dataclass
class Visitor:
    anonymous_id: str
    user_id: str | None  # who they are once they sign in (None: stays anonymous)
    user_agent: str
    ip: str
    locale: str
    campaign: dict[str, str] | None
    signed_in: bool = False
    cart: list[tuple[Product, int]] = field(default_factory=list)
    last_viewed: Product | None = None
    order_id: str | None = None


@dataclass(frozen=True)
class GeneratedEvent:
    visitor: int  # index into EventGenerator.visitors
    message: dict[str, Any]  # the Segment message as an SDK sends it
    timestamp: datetime


class EventGenerator:
    """Deterministic (seeded) Segment track messages of a web shop's visitors."""

    def __init__(
        self,
        *,
        seed: int,
        visitors: int,
        identified: float,
        id_prefix: str,
        second_devices: float = 0.0,
    ) -> None:
        self.rng = random.Random(seed)
        rng = self.rng
        self.catalog = [
            Product(
                sku=f"{category[:3].upper()}-{1000 + i}",
                name=f"{rng.choice(BRANDS)} {rng.choice(ADJECTIVES)} {category.rstrip('s')}",
                category=category,
                brand=rng.choice(BRANDS),
                price=round(rng.uniform(9, 600), 2),
            )
            for i, category in enumerate(CATEGORIES * 40)
        ]
        # A few products sell much more than the rest (Zipf-like popularity).
        self.popularity = list(itertools.accumulate(1 / (rank + 1) for rank in range(280)))
        self.visitors: list[Visitor] = []
        customers: list[str] = []
        for index in range(visitors):
            user_id = None
            if rng.random() < identified:
                # Some customers also shop from a second device: that anonymous profile is merged
                # into the customer's when they sign in there.
                if customers and rng.random() < second_devices:
                    user_id = rng.choice(customers)
                else:
                    user_id = f"{id_prefix}cust-{index:07d}"
                    customers.append(user_id)
            self.visitors.append(
                Visitor(
                    anonymous_id=f"{id_prefix}{self._uuid()}",
                    user_id=user_id,
                    user_agent=rng.choice(USER_AGENTS),
                    ip=f"198.51.100.{rng.randrange(1, 255)}",
                    locale=rng.choice(LOCALES),
                    campaign=(
                        {"source": "newsletter", "medium": "email", "name": "winter-sale"}
                        if rng.random() < 0.2
                        else None
                    ),
                    signed_in=user_id is not None and rng.random() < 0.25,
                )
            )

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _product(self) -> Product:
        return self.rng.choices(self.catalog[:280], cum_weights=self.popularity)[0]

    def events(self, count: int, *, start: datetime, end: datetime) -> list[GeneratedEvent]:
        """`count` events of random visitors, interleaved in time as a shop's server sees them."""
        step = (end - start) / max(count, 1)
        return [self.event(start + step * i) for i in range(count)]

    def event(self, when: datetime) -> GeneratedEvent:
        rng = self.rng
        index = rng.randrange(len(self.visitors))
        visitor = self.visitors[index]
        name = rng.choices(list(EVENT_WEIGHTS), weights=list(EVENT_WEIGHTS.values()))[0]
        if name in ("Checkout Started", "Order Completed") and not visitor.cart:
            name = "Product Added"
        properties = self._properties(name, visitor)
        if name == "Checkout Started" and visitor.user_id:
            visitor.signed_in = True  # checkout asks customers to sign in
        path = {"Products Searched": "/search", "Checkout Started": "/checkout"}.get(
            name, rng.choice(PAGES)
        )
        context: dict[str, Any] = {
            "library": {"name": "analytics.js", "version": "next-1.70.0"},
            "page": {
                "path": path,
                "url": f"https://shop.example.com{path}",
                "title": "Northfold Outdoor Shop",
                "referrer": "https://www.google.com/",
            },
            "userAgent": visitor.user_agent,
            "ip": visitor.ip,
            "locale": visitor.locale,
        }
        if visitor.campaign:
            context["campaign"] = visitor.campaign
        message: dict[str, Any] = {
            "type": "track",
            "event": name,
            "messageId": self._uuid(),
            "anonymousId": visitor.anonymous_id,
            "timestamp": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "properties": properties,
            "context": context,
        }
        if visitor.signed_in:
            message["userId"] = visitor.user_id
        return GeneratedEvent(visitor=index, message=message, timestamp=when)

    def _properties(self, name: str, visitor: Visitor) -> dict[str, Any]:
        rng = self.rng
        if name == "Product Viewed":
            product = self._product()
            visitor.last_viewed = product
            return product.properties(rng)
        if name == "Products Searched":
            return {"query": rng.choice(QUERIES)}
        if name == "Product Added":
            product = visitor.last_viewed if visitor.last_viewed and rng.random() < 0.7 else None
            product = product or self._product()
            quantity = rng.choice([1, 1, 1, 1, 2, 3])
            visitor.cart.append((product, quantity))
            return {
                "cart_id": visitor.anonymous_id[-12:],
                **product.properties(rng),
                "quantity": quantity,
            }
        products = [
            {
                "product_id": p.sku.lower(),
                "sku": p.sku,
                "name": p.name,
                "category": p.category,
                "brand": p.brand,
                "price": p.price,
                "quantity": q,
            }
            for p, q in visitor.cart
        ]
        subtotal = round(sum(p.price * q for p, q in visitor.cart), 2)
        discount = 10.0 if visitor.campaign else 0.0
        totals = {
            "affiliation": "Web shop",
            "subtotal": subtotal,
            "shipping": 4.95,
            "tax": round(subtotal * 0.19 / 1.19, 2),
            "discount": discount,
            "coupon": "WINTER10" if discount else None,
            "currency": "EUR",
            "products": products,
        }
        visitor.order_id = visitor.order_id or f"ord-{rng.randrange(10**9):09d}"
        if name == "Checkout Started":
            return {"order_id": visitor.order_id, "value": subtotal, "revenue": subtotal, **totals}
        # Order Completed
        order = {
            "checkout_id": f"chk-{visitor.order_id[4:]}",
            "order_id": visitor.order_id,
            "total": round(subtotal + 4.95 - discount, 2),
            "revenue": subtotal,
            **totals,
        }
        visitor.cart, visitor.order_id = [], None
        return order


def batch_bodies(events: list[GeneratedEvent], size: int) -> list[bytes]:
    """JSON bodies of /v1/batch requests, serialised before the clock starts."""
    sent_at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return [
        json.dumps(
            {"batch": [e.message for e in events[i : i + size]], "sentAt": sent_at},
            separators=(",", ":"),
        ).encode()
        for i in range(0, len(events), size)
    ]


def single_bodies(events: list[GeneratedEvent]) -> list[bytes]:
    return [json.dumps(e.message, separators=(",", ":")).encode() for e in events]


# --- Django, in this process (setup, COPY, profiling) --------------------------------------------


def server_environment(args: argparse.Namespace, var_dir: Path) -> dict[str, str]:
    env = django_environment(args.database, var_dir)
    env["CELERY_BROKER_URL"] = args.broker_url
    env.update(item.split("=", 1) for item in args.server_env)
    return env


def broker_empty(url: str) -> None:
    """Start from an empty queue: tasks left by an earlier run would be counted as this one's."""
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=5).flushdb()
    except redis.RedisError as exc:
        raise BenchError(f"the Celery broker {url} is unreachable: {exc}") from None


@dataclass
class Tenants:
    http_id: int
    http_key: str
    copy_id: int
    warmup_id: int
    warmup_key: str


def create_tenants() -> Tenants:
    from tenants.services import api_key_create, tenant_create

    def make(slug: str) -> tuple[int, str]:
        tenant = tenant_create(name=f"Bench {slug}", slug=slug)
        return tenant.pk, api_key_create(tenant=tenant, kind="write", name="bench")[1]

    http_id, http_key = make("bench-http")
    copy_id, _ = make("bench-copy")
    warmup_id, warmup_key = make("bench-warmup")
    return Tenants(
        http_id=http_id,
        http_key=http_key,
        copy_id=copy_id,
        warmup_id=warmup_id,
        warmup_key=warmup_key,
    )


def event_count(tenant_id: int) -> int:
    from audience.models import Event

    return Event.objects.filter(tenant_id=tenant_id).count()


def basic_auth(write_key: str) -> str:
    return "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()


# --- gunicorn ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ManagedProcess:
    """A process this script starts, logs to a file and stops (with its children)."""

    def __init__(self, command: list[str], env: dict[str, str], log_path: Path) -> None:
        self.command = command
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def spawn(self) -> None:
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            self.command,
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # graceful: it stops its own children
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)  # the session this process started
                self.process.wait(timeout=10)
        self._log.close()
        self.process = None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


class Beat(ManagedProcess):
    def __init__(self, env: dict[str, str], var_dir: Path) -> None:
        command = [str(BIN / "celery"), "-A", "config", "beat", "-l", "info"]
        command += ["-s", str(var_dir / "celerybeat-schedule")]
        super().__init__(command, env, var_dir / "beat.log")

    def start(self, timeout: float = 60) -> None:
        self.spawn()
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"beat exited at start:\n{self.log_tail()}")
            if "beat: Starting" in self.log_path.read_text(errors="replace"):
                return
            time.sleep(0.1)
        raise BenchError(f"beat was not ready within {timeout:.0f}s")


def beat_wanted(mode: str, task_prefix: str) -> bool:
    """--beat on/off, or auto: whether the beat schedule has a task starting with `task_prefix`."""
    if mode != "auto":
        return mode == "on"
    from config.celery import app

    return any(
        str(entry.get("task", "")).startswith(task_prefix)
        for entry in app.conf.beat_schedule.values()
    )


class IngestWorker(ManagedProcess):
    """The Celery worker of the `ingest` queue: it records what the HTTP endpoints accepted.
    Celery's default pool (prefork) with `concurrency` processes (Celery's default: one per
    core); 1 runs the solo pool, as the Procfile does."""

    def __init__(self, env: dict[str, str], log_path: Path, concurrency: int) -> None:
        pool = ["-P", "solo"] if concurrency == 1 else ["-c", str(concurrency)]
        command = [
            str(BIN / "celery"), "-A", "config", "worker", "-Q", "ingest", *pool, "-l", "info",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]  # fmt: skip
        super().__init__(command, env, log_path)

    def start(self, timeout: float = 60) -> None:
        self.spawn()
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"the ingest worker exited at start:\n{self.log_tail()}")
            if " ready." in self.log_path.read_text(errors="replace"):
                return
            time.sleep(0.2)
        raise BenchError(f"the ingest worker was not ready within {timeout:.0f}s")

    def problems(self) -> list[str]:
        """The worker's ERROR and CRITICAL log lines (a failed chunk, a set-aside row)."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return [ln for ln in text.splitlines() if "ERROR/" in ln or "CRITICAL/" in ln]


class Gunicorn(ManagedProcess):
    """The app server under test, started and stopped by this process only."""

    def __init__(
        self,
        args: argparse.Namespace,
        env: dict[str, str],
        log_path: Path,
        app: str = "config.wsgi",
        chdir: Path = ROOT,
    ) -> None:
        self.port = free_port()
        command = [
            str(BIN / "gunicorn"), app, "--chdir", str(chdir),
            "--bind", f"127.0.0.1:{self.port}",
            "--workers", str(args.workers),
            "--worker-class", args.worker_class,
            "--timeout", "120",
            "--graceful-timeout", "10",
            "--log-level", "warning",
        ]  # fmt: skip
        if args.threads > 1:
            command += ["--threads", str(args.threads)]
        super().__init__(command, env, log_path)

    def start(self, timeout: float = 120) -> None:
        self.spawn()
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"gunicorn exited at start:\n{self.log_tail()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("OPTIONS", "/v1/batch")
                if conn.getresponse().status in (200, 204):  # the bare app answers 200
                    conn.close()
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise BenchError(f"gunicorn did not answer within {timeout:.0f}s:\n{self.log_tail()}")

    EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception|Detected): ")
    FRAME = re.compile(r'^\s*File "(?P<path>[^"]+)", line (?P<line>\d+), in (?P<func>\S+)')

    def server_errors(self) -> Counter[str]:
        """Root causes of the server's 500 answers, from its log (one per failed request): the
        first exception of each report, and the last project line it went through."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        header = r"^.*(?:Error handling request|Internal Server Error: |WORKER TIMEOUT).*$"
        causes: Counter[str] = Counter()
        for block in re.split(header, text, flags=re.M)[1:]:
            # What follows "During handling…" is the error page failing in turn (the bench does
            # not run collectstatic, so it misses the static manifest): a consequence.
            block = block.split("During handling of the above exception")[0]
            lines = block.splitlines()
            first = next((ln for ln in lines if self.EXCEPTION.match(ln)), None)
            if first is None:
                continue
            frames = [
                f"{Path(m['path']).relative_to(ROOT)}:{m['line']} {m['func']}"
                for m in map(self.FRAME.match, lines)
                if m and m["path"].startswith(f"{ROOT}/") and "/.venv/" not in m["path"]
            ]
            causes[f"{first.strip()[:110]} (at {frames[-1] if frames else '?'})"] += 1
        causes["worker timeouts"] = text.count("WORKER TIMEOUT")
        return +causes


# --- CPU accounting (Linux /proc) ----------------------------------------------------------------


def _proc_stat(pid: str) -> tuple[str, int, float] | None:
    """(command, parent pid, CPU seconds including reaped children) of one process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()
    ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))  # utime stime cutime cstime
    return comm, int(fields[1]), ticks / os.sysconf("SC_CLK_TCK")


def cpu_snapshot(trees: dict[str, int]) -> dict[str, float]:
    """CPU seconds used so far by each named process tree (a process and its children: the app
    server, the ingest worker), PostgreSQL, this load generator and the machine."""
    usage = Counter[str]()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        stat = _proc_stat(pid)
        if stat is None:
            continue
        comm, ppid, seconds = stat
        tree = next((name for name, root in trees.items() if root in (int(pid), ppid)), None)
        if tree is not None:
            usage[tree] += seconds
        elif comm.startswith("postgres"):
            usage["PostgreSQL"] += seconds
    own = os.times()
    usage["load generator"] = own.user + own.system
    with open("/proc/stat") as fh:
        values = [int(v) for v in fh.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    usage["machine"] = (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")
    return dict(usage)


# --- the load generator --------------------------------------------------------------------------


class Client:
    """One HTTP/1.1 connection that is kept alive when the server allows (gunicorn's sync worker
    closes after every answer; http.client then reconnects on the next request)."""

    def __init__(self, port: int, timeout: float) -> None:
        self.http = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        self.connections = 0

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        if self.http.sock is None:
            self.connections += 1
        try:
            self.http.request("POST", path, body=body, headers=headers)
            response = self.http.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException):
            self.http.close()
            raise

    def close(self) -> None:
        self.http.close()


@dataclass
class PhaseResult:
    requests: int
    events: int  # sent in those requests
    done: int = 0
    accepted: int = 0  # events in requests answered 200 (durably in the inbox)
    seconds: float = 0.0  # first request to last answer
    recorded_seconds: float = 0.0  # first request to the last event recorded by the worker
    latencies: list[float] = field(default_factory=list)
    retries: int = 0
    retry_reasons: Counter[str] = field(default_factory=Counter)
    connections: int = 0
    failures: list[str] = field(default_factory=list)
    timed_out: bool = False
    started: float = 0.0  # time.perf_counter() at the first request
    cpu: dict[str, float] = field(default_factory=dict)
    stored: int = 0  # events the database holds afterwards (set by the caller)

    @property
    def accept_rate(self) -> float:
        """Events answered 200 per second: a phase cut short still gives a true rate."""
        return self.accepted / self.seconds if self.seconds else 0.0

    @property
    def rate(self) -> float:
        """Events recorded per second, end to end (accepted, then recorded by the worker)."""
        return self.stored / self.recorded_seconds if self.recorded_seconds else 0.0

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else 0.0


RETRY_STATUSES = {429, 500, 502, 503, 504}  # what Segment's SDKs retry
MAX_FAILED_REQUESTS = 10  # then the phase stops: something is broken, not unlucky


def send_all(
    *,
    port: int,
    path: str,
    bodies: list[bytes],
    counts: list[int],
    write_key: str,
    clients: int,
    retries: int,
    max_seconds: float,
) -> PhaseResult:
    """POST every body once (retrying 5xx and lost connections with backoff, as SDKs do) from
    `clients` threads, each with its own connection. A request that still fails after its
    retries is recorded and skipped, as an SDK drops it. Bounded: `clients` threads, a socket
    timeout, a time limit for the phase and at most MAX_FAILED_REQUESTS failed requests."""
    result = PhaseResult(requests=len(bodies), events=sum(counts))
    headers = {
        "Content-Type": "application/json",
        "Authorization": basic_auth(write_key),
        "User-Agent": "wayfarer-bench/1",
    }
    counter = itertools.count()
    lock = threading.Lock()
    stop = threading.Event()
    deadline = time.monotonic() + max_seconds

    def run() -> None:
        client = Client(port, timeout=min(120.0, max_seconds))
        latencies: list[float] = []
        try:
            while not stop.is_set():
                with lock:
                    index = next(counter)
                if index >= len(bodies):
                    return
                if time.monotonic() > deadline:
                    result.timed_out = True
                    stop.set()
                    return
                began = time.perf_counter()
                for attempt in range(retries + 1):
                    try:
                        status, answer = client.post(path, bodies[index], headers)
                        reason = f"HTTP {status}"
                    except (OSError, http.client.HTTPException) as exc:
                        status, answer, reason = 0, b"", type(exc).__name__
                    if status == 200:
                        latencies.append(time.perf_counter() - began)
                        with lock:
                            result.accepted += counts[index]
                        break
                    if (status in RETRY_STATUSES or status == 0) and attempt < retries:
                        with lock:
                            result.retries += 1
                            result.retry_reasons[reason] += 1
                        time.sleep(min(5.0, 0.1 * 2**attempt) * random.uniform(0.5, 1.5))
                        continue
                    with lock:
                        result.failures.append(f"request {index}: {reason} {answer[:200]!r}")
                        if len(result.failures) >= MAX_FAILED_REQUESTS:
                            stop.set()
                    break
        finally:
            client.close()
            with lock:
                result.latencies.extend(latencies)
                result.connections += client.connections

    threads = [threading.Thread(target=run, daemon=True) for _ in range(clients)]
    began = result.started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()) + 130)
    result.seconds = time.perf_counter() - began
    if any(t.is_alive() for t in threads):
        result.timed_out = True
        stop.set()
    result.done = len(result.latencies)
    return result


def run_phase(
    *, tenant_id: int, stored_before: int, trees: dict[str, int], **send: Any
) -> PhaseResult:
    """Send (send_all), then wait until the ingest worker has recorded what was accepted: the
    inbox has no waiting row. Records CPU use from the first request to the last recording."""
    cpu_before = cpu_snapshot(trees)
    phase = send_all(**send)
    deadline = time.monotonic() + send["max_seconds"]
    while inbox_waiting() and time.monotonic() < deadline:
        time.sleep(0.02)
    phase.recorded_seconds = time.perf_counter() - phase.started
    after = cpu_snapshot(trees)
    phase.cpu = {k: after[k] - cpu_before.get(k, 0.0) for k in after}
    phase.stored = event_count(tenant_id) - stored_before
    return phase


def batch_counts(events: int, size: int) -> list[int]:
    """Events per request when `events` are sent in batches of `size` (batch_bodies)."""
    return [min(size, events - start) for start in range(0, events, size)]


def inbox_failed() -> int:
    from audience.models import InboxBatch

    return InboxBatch.objects.exclude(failed_at=None).count()


def inbox_waiting() -> bool:
    from audience.models import InboxBatch

    return InboxBatch.objects.filter(failed_at=None).exists()


# --- COPY ----------------------------------------------------------------------------------------


@dataclass
class CopyResult:
    rows: int
    seconds: float
    stored: int


def run_copy(
    database_url: str, tenant_id: int, events: list[GeneratedEvent], generator: EventGenerator
) -> CopyResult:
    """COPY the same events, for another tenant, into the events table: the same columns the ORM
    writes, JSON serialised in the timed part as the app must do too."""
    from audience.models import Contact, Event

    # One contact per visitor, created beforehand so the foreign keys hold (not timed).
    contacts = Contact.objects.bulk_create(
        [Contact(tenant_id=tenant_id, user_id=v.user_id or "") for v in generator.visitors],
        batch_size=2_000,
    )
    contact_ids = [c.pk for c in contacts]
    names = [
        "tenant",
        "contact",
        "type",
        "name",
        "properties",
        "context",
        "occurred_at",
        "received_at",
        "message_id",
        "source",
    ]
    columns = [Event._meta.get_field(n).column for n in names]
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(Event._meta.db_table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    dumps = json.dumps
    table = sql.Identifier(Event._meta.db_table)
    with psycopg.connect(database_url) as conn:
        # PostgreSQL refuses COPY FROM into a table under row-level security, which FORCE
        # applies to its owner too (tenants/rls.py): lifted for this COPY only (the owner may),
        # so the ceiling stays COPY's. A superuser needs neither.
        conn.execute(sql.SQL("ALTER TABLE {} NO FORCE ROW LEVEL SECURITY").format(table))
        received_at = datetime.now(UTC)
        began = time.perf_counter()
        with conn.cursor() as cursor, cursor.copy(statement) as copy:
            for e in events:
                m = e.message
                copy.write_row(
                    (
                        tenant_id,
                        contact_ids[e.visitor],
                        "track",
                        m["event"],
                        dumps(m["properties"]),
                        dumps(m["context"]),
                        e.timestamp,
                        received_at,
                        m["messageId"],
                        "copy",
                    )
                )
        conn.commit()
        seconds = time.perf_counter() - began
        # Not in the COPY's transaction: its foreign-key checks are pending until the commit.
        conn.execute(sql.SQL("ALTER TABLE {} FORCE ROW LEVEL SECURITY").format(table))
        conn.commit()
    return CopyResult(rows=len(events), seconds=seconds, stored=event_count(tenant_id))


# --- profiling (in-process) ----------------------------------------------------------------------


class QueryCounter:
    """An execute wrapper: counts and times every SQL statement, grouped by verb and table."""

    TABLE = re.compile(r'\b(?:FROM|INTO|UPDATE)\s+"(\w+)"')

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0
        self.kinds: Counter[str] = Counter()
        self.kind_seconds: Counter[str] = Counter()

    def __call__(self, execute, sql_text, params, many, context):  # type: ignore[no-untyped-def]
        began = time.perf_counter()
        try:
            return execute(sql_text, params, many, context)
        finally:
            elapsed = time.perf_counter() - began
            self.seconds += elapsed
            self.count += 1
            verb = sql_text.split(None, 1)[0].upper()
            table = self.TABLE.search(sql_text)
            kind = f"{verb} {table.group(1) if table else ''}".strip()
            self.kinds[kind] += 1
            self.kind_seconds[kind] += elapsed


def wsgi_post(app, path: str, body: bytes, auth: str) -> int:  # type: ignore[no-untyped-def]
    """One request through Django's real WSGI handler (middleware, view, signals), no network."""
    from wsgiref.util import setup_testing_defaults

    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "SERVER_NAME": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_AUTHORIZATION": auth,
        "wsgi.input": io.BytesIO(body),
    }
    setup_testing_defaults(environ)
    status: list[str] = []
    chunks = app(environ, lambda s, h, exc_info=None: status.append(s))
    try:
        b"".join(chunks)
    finally:
        if hasattr(chunks, "close"):
            chunks.close()
    return int(status[0].split()[0])


# Where a /v1/batch request spends its time: (label, file, function) in the cProfile data.
ACCEPT_HOTSPOTS = [
    ("whole request (Django WSGI handler)", "django/core/handlers/wsgi.py", "__call__"),
    ("  open a DB connection", "django/db/backends/base/base.py", "connect"),
    ("  write key: api_key_authenticate", "tenants/selectors.py", "api_key_authenticate"),
    ("  JSON body: orjson.loads", "core/body.py", "body_json"),
    ("  validation: parse_batch", "audience/segment_spec.py", "parse_batch"),
    ("  inbox_accept", "audience/inbox.py", "inbox_accept"),
]
# Where the ingest worker spends its time recording accepted requests.
DRAIN_HOTSPOTS = [
    ("whole drain (inbox_drain)", "audience/inbox.py", "inbox_drain"),
    ("  claim rows (FOR UPDATE SKIP LOCKED)", "audience/inbox.py", "_claim"),
    ("  read rows: _call", "audience/inbox.py", "_call"),
    ("  calls_record_in_transaction", "audience/services.py", "calls_record_in_transaction"),
    ("    advisory locks per id", "audience/identity.py", "lock_identities"),
    ("    duplicates: message_ids_stored", "audience/bulk.py", "message_ids_stored"),
    ("    load + lock contacts", "audience/bulk.py", "identities_load_locked"),
    ("    IdentityResolver.resolve", "audience/identity.py", "resolve"),
    ("    apply_call_to_profile", "audience/services.py", "apply_call_to_profile"),
    ("    IdentityResolver.flush", "audience/identity.py", "flush"),
    ("      contacts_update", "audience/bulk.py", "contacts_update"),
    ("    events_insert (COPY)", "audience/bulk.py", "events_insert"),
    ("  commit", "django/db/backends/base/base.py", "commit"),
]


def _cumulative(stats: pstats.Stats, path_suffix: str, function: str) -> tuple[int, float]:
    calls, seconds = 0, 0.0
    for (path, _line, name), (_cc, nc, _tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        if name == function and path.endswith(path_suffix):
            calls, seconds = calls + nc, seconds + ct
    return calls, seconds


def profile_http_path(args: argparse.Namespace) -> None:
    """Where a request's time goes: Django's WSGI handler in this process (one thread, no
    contention, no network), on steady-state traffic (most visitors already known)."""
    from django.core.wsgi import get_wsgi_application
    from django.db import connection

    import audience.inbox
    from tenants.services import api_key_create, tenant_create

    # Accepted requests stay in the inbox; the drain is profiled on its own below.
    audience.inbox.inbox_wake = lambda: None  # type: ignore[assignment]

    tenant = tenant_create(name="Bench profile", slug="bench-profile")
    auth = basic_auth(api_key_create(tenant=tenant, kind="write", name="profile")[1])
    app = get_wsgi_application()
    per_pass = args.profile_batches * args.batch_size
    generator = EventGenerator(
        seed=args.seed + 1,
        visitors=max(1, per_pass * 3 // 20),
        identified=args.identified,
        second_devices=args.second_devices,
        id_prefix="p-",
    )
    now = datetime.now(UTC)
    events = generator.events(per_pass * 3, start=now - timedelta(hours=1), end=now)
    warm, profiled, timed = (
        batch_bodies(events[i * per_pass : (i + 1) * per_pass], args.batch_size) for i in range(3)
    )
    track = single_bodies(generator.events(1200, start=now, end=now + timedelta(seconds=1)))

    def post_all(path: str, bodies: list[bytes]) -> float:
        began = time.perf_counter()
        for body in bodies:
            status = wsgi_post(app, path, body, auth)
            if status != 200:
                raise BenchError(f"in-process {path} answered {status}")
        return time.perf_counter() - began

    log(f"profiling: warm-up pass ({len(warm)} batches)")
    post_all("/v1/batch", warm)
    audience.inbox.inbox_drain()
    log(f"profiling: cProfile pass ({len(profiled)} batches)")
    profiler = cProfile.Profile()
    profiler.enable()
    post_all("/v1/batch", profiled)
    profiler.disable()
    drain_profiler = cProfile.Profile()
    drain_profiler.enable()
    audience.inbox.inbox_drain()
    drain_profiler.disable()
    log(f"profiling: timing pass ({len(timed)} batches, SQL counted), drain, then /v1/track")
    batch_sql = QueryCounter()
    with connection.execute_wrapper(batch_sql):
        batch_seconds = post_all("/v1/batch", timed)
    began = time.perf_counter()
    drained = audience.inbox.inbox_drain()
    drain_seconds = time.perf_counter() - began
    post_all("/v1/track", track[:300])  # warm
    track_sql = QueryCounter()
    with connection.execute_wrapper(track_sql):
        track_seconds = post_all("/v1/track", track[300:600])
    # What a connection per request costs: the same with CONN_MAX_AGE=0, whatever the settings.
    configured = connection.settings_dict["CONN_MAX_AGE"]
    connection.close()
    connection.settings_dict["CONN_MAX_AGE"] = 0
    reconnecting_seconds = post_all("/v1/track", track[600:900])
    connection.close()
    connection.settings_dict["CONN_MAX_AGE"] = configured
    track_profiler = cProfile.Profile()
    track_profiler.enable()
    post_all("/v1/track", track[900:])
    track_profiler.disable()

    n_batches, n_track = len(timed), 300
    print()
    print("Profile of the HTTP path (in-process WSGI handler, one thread, no network, no")
    print(f"contention; steady state: most visitors already known; CONN_MAX_AGE={configured})")
    print(
        f"  /v1/batch of {args.batch_size}: {1000 * batch_seconds / n_batches:.1f} ms/request"
        f" = {len(timed) * args.batch_size / batch_seconds:,.0f} events/s per core;"
        f" {batch_sql.count / n_batches:.0f} SQL statements/request, waiting on SQL"
        f" {100 * batch_sql.seconds / batch_seconds:.0f}% of the time"
    )
    for kind, n in batch_sql.kinds.most_common(8):
        ms = 1000 * batch_sql.kind_seconds[kind] / n_batches
        print(f"      {n / n_batches:7.1f} x {kind:<28} {ms:6.2f} ms/request")
    print(
        f"  ingest worker: recorded those {drained.stored:,} events in {drain_seconds:.2f}s"
        f" = {drained.stored / drain_seconds:,.0f} events/s per core"
        f" ({1e6 * drain_seconds / max(drained.stored, 1):.0f} µs/event, database included)"
    )
    print(
        f"  /v1/track: {1000 * track_seconds / n_track:.2f} ms/request"
        f" = {n_track / track_seconds:,.0f} requests/s per core;"
        f" {track_sql.count / n_track:.1f} SQL statements/request, waiting on SQL"
        f" {100 * track_sql.seconds / track_seconds:.0f}% of the time;"
        f" with a new DB connection per request (CONN_MAX_AGE=0)"
        f" {1000 * reconnecting_seconds / n_track:.2f} ms/request"
    )
    for kind, n in track_sql.kinds.most_common(8):
        ms = 1000 * track_sql.kind_seconds[kind] / n_track
        print(f"      {n / n_track:7.1f} x {kind:<28} {ms:6.2f} ms/request")

    print_hotspots(profiler, len(profiled), "/v1/batch", ACCEPT_HOTSPOTS, top=12)
    print_hotspots(drain_profiler, len(profiled), "drain of /v1/batch", DRAIN_HOTSPOTS, top=15)
    print_hotspots(track_profiler, 300, "/v1/track", ACCEPT_HOTSPOTS, top=12)


def print_hotspots(
    profiler: cProfile.Profile,
    requests: int,
    path: str,
    hotspots: list[tuple[str, str, str]],
    top: int,
) -> None:
    stats = pstats.Stats(profiler)
    _, total = _cumulative(stats, *hotspots[0][1:])
    print(
        f"\n  cProfile of {requests} {path} requests (cumulative time; cProfile slows Python"
        " code more than SQL waits):"
    )
    print(f"    {'':42} {'calls/req':>9} {'ms/req':>8} {'share':>6}")
    for label, path_suffix, function in hotspots:
        calls, seconds = _cumulative(stats, path_suffix, function)
        if calls:
            print(
                f"    {label:42} {calls / requests:9.1f} {1000 * seconds / requests:8.2f}"
                f" {100 * seconds / total if total else 0:5.0f}%"
            )
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("tottime").print_stats(top)
    body = out.getvalue()
    print(f"\n  {path}: top functions by own time ({requests} requests):")
    print("\n".join("    " + ln for ln in body[body.find("   ncalls") :].rstrip().splitlines()))


def phase_check(label: str, phase: PhaseResult, expected: int) -> tuple[str, bool]:
    ok = phase.stored == expected and not phase.failures and not phase.timed_out
    text = f"{label} stored {phase.stored:,} of {expected:,}"
    if phase.failures:
        text += f", {len(phase.failures)} requests failed after every retry"
    if phase.timed_out:
        text += f", stopped at the time limit (--max-seconds) after {phase.done:,} requests"
    return text, ok


# --- the report ----------------------------------------------------------------------------------


def describe_phase(label: str, phase: PhaseResult, cores: int, unit: str) -> list[str]:
    lines = [
        f"  {label}: {phase.done:,}/{phase.requests:,} requests answered in {phase.seconds:.2f}s,"
        f" all recorded {phase.recorded_seconds:.2f}s after the first;"
        f" latency p50 {1000 * phase.percentile(50):.0f} ms, p95 {1000 * phase.percentile(95):.0f}"
        f" ms, p99 {1000 * phase.percentile(99):.0f} ms; {phase.connections:,} TCP connections"
        f" opened; {phase.retries} retries"
        + (
            f" ({', '.join(f'{k} x{v}' for k, v in phase.retry_reasons.items())})"
            if phase.retries
            else ""
        )
    ]
    if phase.cpu and phase.recorded_seconds:
        share = {k: 100 * v / phase.recorded_seconds for k, v in phase.cpu.items()}
        lines.append(
            f"    CPU until recorded (100% = one core, {100 * cores}% = all): app server"
            f" {share.get('app server', 0):.0f}%, ingest worker"
            f" {share.get('ingest worker', 0):.0f}%, PostgreSQL {share.get('PostgreSQL', 0):.0f}%,"
            f" load generator {share.get('load generator', 0):.0f}%, whole machine"
            f" {share.get('machine', 0):.0f}% (PostgreSQL counts every database on the machine)"
        )
        app, worker = phase.cpu.get("app server", 0.0), phase.cpu.get("ingest worker", 0.0)
        if phase.stored and app:
            lines.append(
                f"    CPU per {unit}: app server {1000 * app / phase.stored:.3f} ms, ingest worker"
                f" {1000 * worker / phase.stored:.3f} ms, PostgreSQL"
                f" {1000 * phase.cpu.get('PostgreSQL', 0.0) / phase.stored:.3f} ms"
            )
    return lines


def print_report(
    args: argparse.Namespace,
    machine: str,
    mix: Counter[str],
    batch: PhaseResult,
    copy: CopyResult,
    track: PhaseResult | None,
    bare: PhaseResult | None,
    checks: list[tuple[str, bool]],
    server_problems: Counter[str],
    worker: IngestWorker,
) -> None:
    accepted_rate, recorded_rate = batch.accept_rate, batch.rate
    copy_rate = copy.rows / copy.seconds
    partial = " (partial)" if batch.stored != args.events else ""
    rows = [
        (
            "/v1/batch accepted events/s",
            f"{accepted_rate:,.0f}",
            f">= {TARGET_EVENTS_PER_SECOND:,}",
            verdict(accepted_rate >= TARGET_EVENTS_PER_SECOND),
        ),
        (
            "/v1/batch recorded events/s",
            f"{recorded_rate:,.0f}{partial}",
            "(end to end)",
            "",
        ),
        ("COPY rows/s (same events)", f"{copy_rate:,.0f}", "(the ceiling)", ""),
        (
            "recorded / COPY",
            f"{100 * recorded_rate / copy_rate:.1f}%",
            f">= {100 * TARGET_RATIO_TO_COPY:.0f}%",
            verdict(recorded_rate / copy_rate >= TARGET_RATIO_TO_COPY),
        ),
        ("accepted / COPY", f"{100 * accepted_rate / copy_rate:.1f}%", "", ""),
    ]
    if track is not None and track.seconds:
        per_worker = track.accept_rate / args.workers
        rows += [
            (
                "/v1/track accepted req/s per worker",
                f"{per_worker:,.0f} ({track.accept_rate:,.0f} total)",
                f">= {TARGET_TRACK_PER_WORKER:,}",
                verdict(per_worker >= TARGET_TRACK_PER_WORKER),
            ),
            ("/v1/track recorded events/s", f"{track.rate:,.0f}", "(end to end)", ""),
        ]
        if bare is not None and bare.seconds:
            bare_per_worker = bare.accept_rate / args.workers
            rows += [
                (
                    "bare WSGI app req/s per worker",
                    f"{bare_per_worker:,.0f} ({bare.accept_rate:,.0f} total)",
                    "(the ceiling)",
                    "",
                ),
                ("/v1/track / bare WSGI app", f"{100 * per_worker / bare_per_worker:.1f}%", "", ""),
            ]
    cores = cpu_count()
    print()
    print("Wayfarer ingestion benchmark")
    print(f"  machine:    {machine}")
    print("\n".join(conditions_lines(args.load_at_start, args.python_speed, "lower figures")))
    print(
        f"  parameters: events {args.events:,}, batch size {args.batch_size}, gunicorn workers"
        f" {args.workers} ({args.worker_class}"
        + (f", {args.threads} threads" if args.threads > 1 else "")
        + f"), ingest worker processes {args.ingest_workers}, client connections {args.clients},"
        f" visitors {args.visitors:,}"
        f" ({100 * args.identified:.0f}% sign in), /v1/track requests {args.track_requests:,},"
        f" seed {args.seed}"
        + (f", server env {' '.join(args.server_env)}" if args.server_env else "")
    )
    print(f"  event mix:  {', '.join(f'{name} {n:,}' for name, n in mix.most_common())}")
    print()
    widths = [
        max(len(r[i]) for r in [("measure", "result", "target", "verdict"), *rows])
        for i in range(4)
    ]
    header = ("measure", "result", "target", "verdict")
    print("  " + "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("  " + "  ".join("-" * w for w in widths))
    for row in rows:
        print("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    print()
    for line in describe_phase("/v1/batch", batch, cores, "event"):
        print(line)
    print(f"  COPY: {copy.rows:,} rows in {copy.seconds:.2f}s (JSON serialisation included)")
    if track is not None:
        for line in describe_phase("/v1/track", track, cores, "request"):
            print(line)
    print("  checks: " + "; ".join(f"{name}: {'OK' if ok else 'FAILED'}" for name, ok in checks))
    print(f"  server errors: {'none' if not server_problems else ''}")
    for cause, n in server_problems.most_common():
        print(f"    {n:5} x {cause}")
    problems = worker.problems()
    print(f"  ingest worker errors: {'none' if not problems else ''}")
    for line in problems[:10]:
        print(f"    {line}")


# --- main ----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.load_at_start = os.getloadavg()[0]  # 1-minute load: is something else running?
    args.python_speed = python_speed()
    # A `kill` of this script still stops gunicorn and drops the database (finally blocks).
    signal.signal(signal.SIGTERM, terminated)
    try:
        with django_on_bench_database(
            args.database, keep=args.keep, environment=partial(server_environment, args)
        ) as (env, var_dir):
            return measure(args, env, var_dir)
    except BenchError as exc:
        print(f"\nbench/ingest.py: {exc}", file=sys.stderr)
        return 1


def measure(args: argparse.Namespace, env: dict[str, str], var_dir: Path) -> int:
    database: BenchDatabase = args.database
    server: Gunicorn | None = None
    worker: IngestWorker | None = None
    try:
        tenants = create_tenants()
        machine = machine_description(database.server_version(), gunicorn=True)

        log(f"generating {args.events:,} events from {args.visitors:,} visitors")
        generator = EventGenerator(
            seed=args.seed,
            visitors=args.visitors,
            identified=args.identified,
            second_devices=args.second_devices,
            id_prefix="",
        )
        now = datetime.now(UTC)
        events = generator.events(args.events, start=now - timedelta(hours=1), end=now)
        mix = Counter(e.message["event"] for e in events)
        bodies = batch_bodies(events, args.batch_size)
        from audience.segment_spec import MAX_BATCH_BYTES

        largest = max(map(len, bodies))
        if largest > MAX_BATCH_BYTES:
            raise BenchError(
                f"a batch is {largest:,} bytes, over the server's limit of "
                f"{MAX_BATCH_BYTES:,}: use a smaller --batch-size"
            )
        track_events = generator.events(
            args.track_requests, start=now, end=now + timedelta(minutes=1)
        )

        broker_empty(args.broker_url)
        server = Gunicorn(args, env, var_dir / "gunicorn.log")
        worker = IngestWorker(env, var_dir / "worker.log", args.ingest_workers)
        log(f"starting gunicorn on 127.0.0.1:{server.port} ({args.workers} workers)")
        server.start()
        log(f"starting the ingest worker (Celery, queue ingest, {args.ingest_workers} processes)")
        worker.start()
        assert server.process is not None and worker.process is not None
        trees = {"app server": server.process.pid, "ingest worker": worker.process.pid}
        common = {
            "port": server.port,
            "clients": args.clients,
            "retries": args.retries,
            "max_seconds": args.max_seconds,
        }

        log("warming up the workers (separate tenant)")
        warm = EventGenerator(seed=args.seed + 2, visitors=50, identified=0.3, id_prefix="w-")
        warm_events = warm.events(40 * args.clients, start=now - timedelta(hours=1), end=now)
        warm_bodies = batch_bodies(warm_events, 10)
        warm_result = run_phase(
            tenant_id=tenants.warmup_id,
            stored_before=0,
            trees=trees,
            path="/v1/batch",
            bodies=warm_bodies,
            counts=batch_counts(len(warm_events), 10),
            write_key=tenants.warmup_key,
            **common,
        )
        if warm_result.failures or warm_result.stored != len(warm_events):
            raise BenchError(
                f"warm-up failed: {warm_result.failures[:1]}, {warm_result.stored} of"
                f" {len(warm_events)} recorded\n{server.log_tail()}\n{worker.log_tail()}"
            )

        log(
            f"HTTP batch: {len(bodies):,} requests of up to {args.batch_size} events, "
            f"{args.clients} connections"
        )
        batch = run_phase(
            tenant_id=tenants.http_id,
            stored_before=0,
            trees=trees,
            path="/v1/batch",
            bodies=bodies,
            counts=batch_counts(args.events, args.batch_size),
            write_key=tenants.http_key,
            **common,
        )
        checks = [phase_check("/v1/batch", batch, args.events)]

        log(f"COPY: {args.events:,} rows")
        copy = run_copy(database.url, tenants.copy_id, events, generator)
        checks.append((f"COPY stored {copy.stored:,}", copy.stored == args.events))

        track = None
        if args.track_requests:
            log(f"/v1/track: {args.track_requests:,} single-event requests")
            track = run_phase(
                tenant_id=tenants.http_id,
                stored_before=batch.stored,
                trees=trees,
                path="/v1/track",
                bodies=single_bodies(track_events),
                counts=[1] * len(track_events),
                write_key=tenants.http_key,
                **common,
            )
            checks.append(phase_check("/v1/track", track, args.track_requests))
        bare = None
        if args.track_requests:
            log("baseline: the same /v1/track requests to a bare WSGI app (bench/bare_wsgi.py)")
            bare_server = Gunicorn(
                args, env, var_dir / "bare.log", app="bare_wsgi", chdir=Path(__file__).parent
            )
            bare_server.start()
            try:
                bare = send_all(
                    path="/v1/track",
                    bodies=single_bodies(track_events),
                    counts=[1] * len(track_events),
                    write_key=tenants.http_key,
                    **{**common, "port": bare_server.port},
                )
            finally:
                bare_server.stop()
        failed = inbox_failed()
        checks.append((f"inbox rows the worker set aside: {failed}", failed == 0))
        worker.stop()
        server.stop()
        print_report(
            args, machine, mix, batch, copy, track, bare, checks, server.server_errors(), worker
        )
        if args.profile:
            profile_http_path(args)
        if not all(ok for _, ok in checks):
            print("\nA check FAILED: the figures above are partial.", file=sys.stderr)
            for phase in (batch, track):
                if phase is not None and phase.failures:
                    print("\n".join(phase.failures[:3]), file=sys.stderr)
            return 1
        return 0
    finally:
        for process in (server, worker):
            if process is not None:
                process.stop()


if __name__ == "__main__":
    sys.exit(main())
