#!/usr/bin/env python
# ruff: noqa: T201  (a command-line report: printing is its job)
"""Analytics benchmark: how fast every analytics page answers for a team with 1M contacts and
10M events, what building the rollups takes, and what keeping them on ingest costs.

    .venv/bin/python bench/analytics.py [--contacts N] [--events N] [--small] [--explain] [--keep]

One run, on its own database (nothing touches the development data):

1. Recreates a PostgreSQL database (default `wayfarer_bench_analytics` on 127.0.0.1, dropped
   afterwards unless --keep; `--reuse` measures a database kept by an earlier run instead, after
   `manage.py migrate`), and generates a web shop's data with bench/segments.py's generator
   (imported, not copied): the measured team's contacts and its shop events, plus, in the same
   COPY, what analytics counts beyond them: message outcomes (Email Sent / Delivered / Opened /
   Link Clicked / Bounced / Marked as Spam, Unsubscribed, Push Sent / Clicked / Subscribed),
   "NPS Submitted" with a score, and "Lifecycle Stage Changed" events whose last one per
   contact is the contact's `lifecycle_stage`. Then the demo's segments, templates, running
   journeys and sent campaigns through the product's own services (ops.demo's steps), so the
   funnel and campaign-result pages have content.
2. Builds the rollups from the raw events with the analytics app's rebuild, timed (events/s).
3. Pages: every GET pattern of analytics.urls (found in the URL resolver; a journey's and a
   campaign's ids from the data), each with the default period, the last 90 days and a custom
   one-year range, through Django's test Client in this process, signed in as a team member:
   one warm-up, then N timed requests each; median and p95 per page, SQL statements per page;
   the p95 over every request against the target (<= 300 ms). A baseline page in the same run
   (the team's settings page) says what the machine's noise does to a trivial page.
   --explain prints EXPLAIN (ANALYZE, BUFFERS) of the slowest statements.
4. Ingest: batches of shop events accepted into the ingestion inbox and recorded by the inbox
   drain (the ingest worker's code) in this process, with and without the analytics hook on
   audience.registry.EVENTS_STORED, interleaved; CPU per event of the process and of its
   PostgreSQL backend, and the ratio.

Exit status: 0 when the measurement completed, whether or not the target was met; 1 when it could
not run (or a page answered an error); 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import bisect
import importlib.util
import inspect
import os
import random
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
import uuid
from array import array
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from common import (
    ROOT,
    BenchDatabase,
    BenchError,
    conditions_lines,
    django_environment,
    django_setup,
    log,
    machine_description,
    manage,
    python_speed,
    terminated,
    verdict,
)


def _bench_module(name: str, file: str) -> Any:
    """bench/<file> as module `name`: bench/segments.py must not be imported as `segments`
    (that is the app's name), and this file is `analytics`, as the app is."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / file)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


shop = _bench_module("bench_segments", "segments.py")  # the web shop's data generator
ingest = _bench_module("bench_ingest", "ingest.py")  # the ingestion benchmark's event generator
# With bench/ first on sys.path, as it is for a script, `import analytics` would find this file
# instead of the app (bench_segments already removed it; this keeps it so).
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/wayfarer_bench_analytics"
SMALL_CONTACTS, SMALL_EVENTS = 50_000, 500_000
TARGET_MS = 300.0
DAYS = shop.DAYS
SLUG = "bench-shop"
CSV = "csv"  # the period column of a page's CSV export
MEMBER_EMAIL = "bench-analyst@bench.example"

# --- what analytics counts beyond the shop's events ------------------------------------------

STAGES = ["awareness", "acquisition", "onboarding", "engagement", "retention", "advocacy"]
AWARENESS, ACQUISITION, ONBOARDING, ENGAGEMENT, RETENTION, ADVOCACY = range(1, 7)
STAGE_CHANGED = "Lifecycle Stage Changed"
# Per shop event: email sends, push sends, NPS answers. Per new contact: push subscriptions,
# stage moves after the first stage.
EMAIL_SENDS, PUSH_SENDS, NPS_ANSWERS = 0.08, 0.01, 0.004
PUSH_SUBSCRIBES, STAGE_MOVES = 0.05, 0.45
EVENTS_PER_EMAIL = 1 + 0.97 + 0.97 * 0.28 * 1.25 + 0.03 + 0.005  # sent, delivered, opened, …
# Extra events per shop event and per contact, to split --events between the shop and the rest.
EXTRA_PER_SHOP_EVENT = EMAIL_SENDS * EVENTS_PER_EMAIL + PUSH_SENDS * 1.08 + NPS_ANSWERS
EXTRA_PER_CONTACT = 1 + STAGE_MOVES + PUSH_SUBSCRIBES
TEMPLATES = [
    (str(uuid.UUID(int=random.Random(k).getrandbits(128), version=4)), name)
    for k, name in enumerate(["Weekly picks", "Spring sale", "Back in stock", "Welcome"])
]


def stage_move(rng: random.Random, stage: int) -> int:
    """The next stage of a contact's drift through the six, or 0 (stays)."""
    r = rng.random()
    if stage == AWARENESS:
        return ACQUISITION
    if stage == ACQUISITION:
        return ONBOARDING if r < 0.7 else 0
    if stage == ONBOARDING:
        return ENGAGEMENT if r < 0.8 else RETENTION
    if stage == ENGAGEMENT:
        return RETENTION if r < 0.35 else ADVOCACY if r < 0.45 else 0
    if stage == RETENTION:
        return ENGAGEMENT if r < 0.3 else 0
    if stage == ADVOCACY:
        return RETENTION if r < 0.1 else 0
    return 0


class AnalyticsGenerator(shop.Generator):
    """bench/segments.py's generator, plus, day by day in the same COPY, the events analytics
    counts beyond the shop's (message outcomes, NPS, stage changes), and the contacts' lifecycle
    stage set to the last stage their events moved them to."""

    def __init__(self, rng: random.Random, tenants: list[Any], end: float, seed: int) -> None:
        super().__init__(rng, tenants, end)
        self.extra_rng = random.Random(seed + 7)
        self.stage = {t.tenant_id: bytearray(t.contacts) for t in tenants}
        self.known_index = {
            t.tenant_id: array("I", (i for i in range(t.contacts) if t.known[i])) for t in tenants
        }
        self.extra: Counter[str] = Counter()
        self.new_stages = True  # set by measure(): whether the model has the six stages

    def events(self, write: Callable[[str], None]) -> int:
        per_day = {t.tenant_id: t.per_day(self.start) for t in self.tenants}
        day = 0
        extra = 0

        def write_day(chunk: str) -> None:
            nonlocal day, extra
            rows: list[str] = []
            for data in self.tenants:
                self.day_extra(data, day, per_day[data.tenant_id][day], rows)
            extra += len(rows)
            write(chunk + "".join(rows))
            day += 1

        written = super().events(write_day)
        return written + extra

    def _row(self, tenant: int, pk: int, name: str, properties: str, t: float, source: str) -> str:
        stamp = self.clock.text(min(t, self.end))
        mid = f"wf:{source}:{self.extra_rng.getrandbits(96):024x}:{pk}"
        return (
            f"{tenant}\t{pk}\ttrack\t{name}\t{properties}\t{{}}\t{stamp}\t{stamp}\t{mid}\t"
            f"{source}\n"
        )

    def day_extra(self, data: Any, d: int, shop_events: int, rows: list[str]) -> None:
        rng, tenant, created, ids = self.extra_rng, data.tenant_id, data.created, data.ids
        random_ = rng.random
        stage = self.stage[tenant]
        known = self.known_index[tenant]
        day_start = self.start + d * 86400
        lo = bisect.bisect(created, day_start)
        hi = bisect.bisect(created, day_start + 86400)
        if d == 0:
            lo = 0
        row, count = self._row, self.extra

        def stage_to(i: int, to: int, t: float, reason: str) -> None:
            was = STAGES[stage[i] - 1] if stage[i] else ""
            stage[i] = to
            properties = f'{{"from": "{was}", "to": "{STAGES[to - 1]}", "reason": "{reason}"}}'
            rows.append(row(tenant, ids[i], STAGE_CHANGED, properties, t, "lifecycle"))
            count[STAGE_CHANGED] += 1

        for i in range(lo, hi):  # the new contacts' first stage, and a few push opt-ins
            stage_to(i, ACQUISITION if data.known[i] else AWARENESS, created[i], "new contact")
            if random_() < PUSH_SUBSCRIBES:
                host = '{"endpoint_host": "fcm.googleapis.com"}'
                rows.append(row(tenant, ids[i], "Push Subscribed", host, created[i] + 60, "push"))
                count["Push Subscribed"] += 1
        if not hi:
            return

        def moment(i: int) -> float:
            return max(day_start + random_() * 86400, created[i])

        for _ in range(int((hi - lo) * STAGE_MOVES + random_())):
            i = int(random_() * hi)
            to = stage_move(rng, stage[i])
            if to:
                stage_to(i, to, moment(i), "bench drift")
        known_now = bisect.bisect(known, hi - 1)
        if known_now:
            for _ in range(int(shop_events * EMAIL_SENDS + random_())):
                self.email(data, known[int(random_() * known_now)], moment, rows)
            for _ in range(int(shop_events * NPS_ANSWERS + random_())):
                i = known[int(random_() * known_now)]
                score = rng.choice((10, 10, 9, 9, 9, 8, 8, 7, 7, 6, 5, 3, 0))
                properties = f'{{"score": {score}, "survey": "nps-q4"}}'
                rows.append(row(tenant, ids[i], "NPS Submitted", properties, moment(i), "api"))
                count["NPS Submitted"] += 1
        for _ in range(int(shop_events * PUSH_SENDS + random_())):
            i = int(random_() * hi)
            t = moment(i)
            properties = (
                f'{{"delivery_id": "{uuid.UUID(int=rng.getrandbits(128), version=4)}",'
                ' "channel": "push", "category": "marketing", "source": "journey"}'
            )
            rows.append(row(tenant, ids[i], "Push Sent", properties, t, "messaging"))
            count["Push Sent"] += 1
            if random_() < 0.08:
                rows.append(row(tenant, ids[i], "Push Clicked", properties, t + 300, "messaging"))
                count["Push Clicked"] += 1

    def email(self, data: Any, i: int, moment: Callable[[int], float], rows: list[str]) -> None:
        rng, random_ = self.extra_rng, self.extra_rng.random
        tenant, pk = data.tenant_id, data.ids[i]
        template_id, template = TEMPLATES[int(random_() * len(TEMPLATES))]
        properties = (
            f'{{"delivery_id": "{uuid.UUID(int=rng.getrandbits(128), version=4)}",'
            f' "channel": "email", "category": "marketing", "template_id": "{template_id}",'
            f' "template": "{template}", "source": "campaign"}}'
        )
        t = moment(i)
        names = ["Email Sent"]
        if random_() < 0.03:
            names.append("Email Bounced")
        else:
            names.append("Email Delivered")
            if random_() < 0.28:
                names.append("Email Opened")
                if random_() < 0.25:
                    names.append("Email Link Clicked")
            if random_() < 0.004:
                names.append("Unsubscribed")
            elif random_() < 0.0005:
                names.append("Email Marked as Spam")
        for k, name in enumerate(names):
            rows.append(self._row(tenant, pk, name, properties, t + 40 * k * k, "messaging"))
            self.extra[name] += 1

    def contacts(self, write: Callable[[str], None], order: list[tuple[Any, int]]) -> int:
        """The shop's contacts, each with the stage its last Lifecycle Stage Changed event says
        (when the model has the six stages; before that, the generator's own)."""
        if not self.new_stages:
            return super().contacts(write, order)
        at = 0
        column = shop.CONTACT_COLUMNS.index("lifecycle_stage")

        def rewrite(chunk: str) -> None:
            nonlocal at
            lines = chunk.split("\n")
            for k, line in enumerate(lines[:-1]):  # the chunk ends with a newline
                data, i = order[at]
                at += 1
                fields = line.split("\t")
                code = self.stage[data.tenant_id][i]
                fields[column] = STAGES[code - 1] if code else STAGES[0]
                lines[k] = "\t".join(fields)
            write("\n".join(lines))

        return super().contacts(rewrite, order)


# --- command line --------------------------------------------------------------------------------


PHASES = ("data", "rebuild", "pages", "ingest")
# With --reuse (data does them otherwise): the demo's journeys and campaigns, and copies of the
# journeys' enrollments.
EXTRA_PHASES = ("demo", "scale")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Wayfarer analytics benchmark: pages at scale, rollup rebuild, ingest cost.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--contacts", type=int, default=1_000_000, help="the team's contacts")
    parser.add_argument(
        "--events",
        type=int,
        default=10_000_000,
        help="the team's events: the shop's plus message outcomes, NPS and stage changes",
    )
    parser.add_argument(
        "--small",
        action="store_true",
        help=f"a quick run: {SMALL_CONTACTS:,} contacts and {SMALL_EVENTS:,} events",
    )
    parser.add_argument(
        "--noise-tenants", type=int, default=1, help="other teams with data of the same shape"
    )
    parser.add_argument(
        "--noise-scale",
        type=float,
        default=0.1,
        help="each noise team's size, a share of the team's",
    )
    parser.add_argument("--runs", type=int, default=20, help="timed requests per page and period")
    parser.add_argument("--warmup", type=int, default=1, help="untimed requests first")
    parser.add_argument(
        "--pages",
        default="",
        help="only the pages whose URL name or path contains one of these comma-separated words",
    )
    parser.add_argument(
        "--no-csv",
        dest="csv",
        action="store_false",
        help="leave out the pages' CSV exports (?format=csv, timed apart from the target)",
    )
    parser.add_argument(
        "--explain",
        action="store_true",
        help="print EXPLAIN (ANALYZE, BUFFERS) of the slowest statements",
    )
    parser.add_argument("--explain-top", type=int, default=8, help="statements --explain prints")
    parser.add_argument(
        "--ingest-events", type=int, default=10_000, help="events per ingest batch (a round)"
    )
    parser.add_argument(
        "--ingest-rounds", type=int, default=4, help="pairs of rounds: with and without the hook"
    )
    parser.add_argument(
        "--phases",
        default=",".join(PHASES),
        help=f"what to run, of {', '.join(PHASES)} (data is skipped with --reuse)",
    )
    parser.add_argument(
        "--no-demo",
        action="store_true",
        help="leave out the demo's journeys and campaigns (ops.demo's steps on the team)",
    )
    parser.add_argument(
        "--enrollments",
        type=int,
        default=None,
        help="copies of the demo cart journey's enrollments (and half as many of each other"
        " journey's), with their steps; default: a tenth of --contacts",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="measure the database kept by an earlier run (--keep): migrate it, skip the load",
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
    if args.runs < 1 or args.warmup < 0 or args.ingest_events < 100 or args.ingest_rounds < 0:
        parser.error("--runs, --ingest-events and --ingest-rounds must be positive")
    if args.enrollments is None:
        args.enrollments = args.contacts // 10
    args.phases = {p.strip() for p in args.phases.split(",") if p.strip()}
    unknown = args.phases - set(PHASES) - set(EXTRA_PHASES)
    if unknown:
        parser.error(f"--phases: unknown {', '.join(sorted(unknown))}")
    try:
        args.database = BenchDatabase(args.database_url)
    except BenchError as exc:
        parser.error(str(exc))
    return args


def environment(database: BenchDatabase, var_dir: Path) -> dict[str, str]:
    env = django_environment(database, var_dir)
    env["ALLOWED_HOSTS"] += ",testserver"  # Django's test Client
    return env


@contextmanager
def bench_database(database: BenchDatabase, *, keep: bool, reuse: bool) -> Iterator[Path]:
    """common.django_on_bench_database, but `migrate --skip-checks` (a system check of an app
    being written at the same time must not stop a measurement of another), and with `reuse`
    the database kept by an earlier run, migrated (the code may have moved on) instead of
    recreated. Dropped afterwards unless `keep`."""
    var_dir = Path(tempfile.mkdtemp(prefix="wayfarer-bench-"))
    (var_dir / "static").mkdir()  # STATIC_ROOT; WhiteNoise warns when it is missing
    claimed = ready = False
    try:
        try:
            database.claim()
        except psycopg.Error as exc:
            raise BenchError(str(exc)) from None
        claimed = True
        if not reuse:
            log(f"recreating database {database.name}")
            database.recreate()
        env = environment(database, var_dir)
        log("manage.py migrate" + (" (the kept database)" if reuse else ""))
        manage(env, "migrate", "--skip-checks")
        # DEBUG is off, so pages name their static files through the manifest, as in production.
        manage(env, "collectstatic", "--skip-checks")
        django_setup(env)
        ready = True
        yield var_dir
    finally:
        if ready:
            from django.db import connections

            connections.close_all()
        shutil.rmtree(var_dir, ignore_errors=True)
        if claimed and keep:
            log(f"kept database {database.name}")
        elif claimed:
            try:
                database.drop()
                log(f"dropped database {database.name}")
            except psycopg.Error as exc:
                log(f"could not drop database {database.name}: {exc}")
        database.release()


# --- the data ------------------------------------------------------------------------------------


@dataclass
class DataResult:
    seconds: dict[str, float] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    extra: Counter[str] = field(default_factory=Counter)
    shop_mix: Counter[str] = field(default_factory=Counter)
    demo: str = ""


def member() -> Any:
    from accounts.models import User

    return User.objects.filter(email=MEMBER_EMAIL).first() or User.objects.create_user(MEMBER_EMAIL)


def create_tenants(args: argparse.Namespace) -> list[Any]:
    from tenants.services import tenant_create

    shop_events = max(
        1_000, int((args.events - EXTRA_PER_CONTACT * args.contacts) / (1 + EXTRA_PER_SHOP_EVENT))
    )
    sizes = [(SLUG, args.contacts, shop_events)]
    for n in range(args.noise_tenants):
        sizes.append(
            (
                f"bench-noise-{n + 1}",
                max(100, int(args.contacts * args.noise_scale)),
                max(1_000, int(shop_events * args.noise_scale)),
            )
        )
    owner = member()
    return [
        shop.TenantData(
            tenant_id=tenant_create(
                name=f"Bench {slug}", slug=slug, owner=owner, timezone_name="Europe/Berlin"
            ).pk,
            slug=slug,
            contacts=contacts,
            events=events,
        )
        for slug, contacts, events in sizes
    ]


def data_make(args: argparse.Namespace) -> DataResult:
    from audience.models import LifecycleStage

    database: BenchDatabase = args.database
    result = DataResult()
    shop.disconnect_segment_receivers()
    shop.check_columns()
    tenants = create_tenants(args)
    rng = random.Random(args.seed)
    end = time.time()
    for data in tenants:
        data.plan(rng, end - DAYS * 86400, end)
    with database.connect() as conn:
        shop.ORDERS_LEDGER = shop.table_exists(conn, shop.ORDERS)
    partitions = shop.partitions_make(database, tenants[0].tenant_id, end - DAYS * 86400, end)
    if partitions:
        log(f"{partitions} monthly event partitions")
    generator = AnalyticsGenerator(rng, tenants, end, args.seed)
    generator.new_stages = "awareness" in set(LifecycleStage.values)
    log(
        f"generating {sum(t.contacts for t in tenants):,} contacts and"
        f" ~{args.events * (1 + args.noise_tenants * args.noise_scale):,.0f} events"
        f" ({len(tenants)} teams)"
    )
    loaded = shop.load(database, generator, tenants)
    result.seconds.update(loaded.seconds)
    result.rows.update(loaded.rows)
    result.extra = generator.extra
    result.shop_mix = tenants[0].mix
    log(f"generated and loaded in {sum(loaded.seconds.values()):.0f} s")
    if not args.no_demo:
        began = time.perf_counter()
        result.demo = demo_make()
        result.seconds["demo journeys and campaigns"] = time.perf_counter() - began
        if args.enrollments:
            began = time.perf_counter()
            result.demo += "; at scale: " + journeys_scale(
                enrollments=args.enrollments, seed=args.seed
            )
            result.seconds["journeys at scale"] = time.perf_counter() - began
    return result


def demo_make() -> str:
    """The demo's segments, templates, journeys (a few people at each step) and campaigns (an
    A/B test sent with its outcomes, a digest, a draft), through ops.demo's steps on the
    team. The campaigns' audience is a segment of the same name made first with a narrower
    rule (the enterprise plan, under 22), so the sent campaign reaches a few thousand at 1M
    contacts, not everyone (the demo's own code works message by message)."""
    from campaigns.models import Campaign, Recipient
    from journeys.models import Enrollment, Journey
    from segments.services import segment_create
    from tenants.models import Tenant

    tenant = Tenant.objects.get(slug=SLUG)
    actor = member()
    done: list[str] = []
    try:
        from ops.demo import seed_segments, seed_templates

        log("demo: segments and templates")
        seed_segments(tenant=tenant)
        seed_templates(tenant=tenant)
    except Exception as exc:
        log(f"demo: segments/templates failed: {exc!r}")
        done.append(f"segments/templates failed ({exc.__class__.__name__})")
    try:
        from campaigns import demo as campaigns_demo
        from segments.models import Segment

        # A kept database (--reuse --phases demo) may hold a wider one from an older run.
        if not Campaign.objects.filter(tenant=tenant).exists():
            Segment.objects.filter(tenant=tenant, name=campaigns_demo.AUDIENCE_NAME).delete()
        segment_create(
            tenant=tenant,
            name=campaigns_demo.AUDIENCE_NAME,
            description="The bench's newsletter readers: enterprise plan, reachable by email.",
            rules={
                "type": "group",
                "match": "all",
                "negate": False,
                "children": [
                    {"type": "reachable", "channel": "email", "reachable": True},
                    {
                        "type": "attribute",
                        "field": "attributes.plan",
                        "operator": "equals",
                        "value": "enterprise",
                    },
                    # The demo sends, updates and records outcomes per message: a few
                    # thousand recipients at 1M contacts keep it to minutes.
                    {"type": "attribute", "field": "attributes.age", "operator": "lt", "value": 22},
                ],
            },
        )
    except Exception as exc:
        log(f"demo: the campaigns' audience failed: {exc!r}")
    for label, seed in (
        ("journeys", "journeys.services:journey_demo_seed"),
        ("campaigns", "campaigns.services:campaign_demo_seed"),
    ):
        module, name = seed.split(":")
        try:
            log(f"demo: {label}")
            getattr(importlib.import_module(module), name)(tenant=tenant, actor=actor)
        except Exception as exc:
            log(f"demo: {label} failed: {exc!r}")
            done.append(f"{label} failed ({exc.__class__.__name__}: {exc})")
    journeys = Journey.objects.filter(tenant=tenant).count()
    enrollments = Enrollment.objects.filter(tenant=tenant).count()
    campaigns = Campaign.objects.filter(tenant=tenant).count()
    recipients = Recipient.objects.filter(tenant=tenant).count()
    done.insert(
        0,
        f"{journeys} journeys ({enrollments:,} enrollments), {campaigns} campaigns"
        f" ({recipients:,} recipients)",
    )
    return "; ".join(done)


def journeys_scale(*, enrollments: int, seed: int) -> str:
    """The demo journeys at the team's scale: `enrollments` contacts who have none yet each get
    a copy of one of the journey's own demo enrollments (the engine made those: the same node,
    state, conversion and revenue, and the same step log), finished ones moved back by up to a
    year, so the funnels count what a busy shop's journeys hold. The cart journey gets
    `enrollments`, each other journey half as many. Plain INSERT … SELECT, not timed."""
    from django.db import connection, transaction

    from journeys.models import Enrollment, Journey, Step
    from tenants.models import Tenant

    tenant = Tenant.objects.get(slug=SLUG)
    open_states = ("active", "waiting")
    made: list[str] = []

    def columns(model: Any, values: dict[str, str]) -> tuple[str, str]:
        names = [f.column for f in model._meta.concrete_fields if not f.primary_key]
        return ", ".join(names), ", ".join(values.get(n, f"t.{n}") for n in names)

    weights = {"completed": 6, "converted": 3, "exited": 1, "failed": 0.2}
    for n, journey in enumerate(Journey.objects.filter(tenant=tenant).order_by("pk")):
        templates = list(
            Enrollment.objects.filter(tenant=tenant, journey=journey)
            .values_list("pk", "state")
            .order_by("pk")
        )
        if not templates:
            continue
        count = enrollments if n == 0 else enrollments // 2
        # Each template's share: the finished ones most (a shop's journeys are mostly done).
        slots = [pk for pk, state in templates for _ in range(int(10 * weights.get(state, 0.5)))]
        with transaction.atomic(), connection.cursor() as cursor:
            # The copies keep the foreign keys true by construction: skip their deferred checks
            # (a million at COMMIT, minutes on a busy machine), as segments.py's load does.
            cursor.execute("SET LOCAL session_replication_role = replica")
            cursor.execute("SELECT setseed(%s)", [((seed * 31 + n) % 1000) / 1000])
            cursor.execute(
                "CREATE TEMP TABLE bench_clone ON COMMIT DROP AS"
                " SELECT c.id AS contact_id, (%s::bigint[])[1 + floor(random() * %s)::int]"
                " AS template_id, make_interval(days => floor(random() * 365)::int,"
                " secs => floor(random() * 86400)::int) AS shift"
                # The sample first: random() in the same SELECT as ORDER BY random() is
                # correlated with it (the picked rows drew low numbers).
                " FROM (SELECT c.id FROM audience_contact c WHERE c.tenant_id = %s"
                "  AND NOT EXISTS (SELECT 1 FROM journeys_enrollment x"
                "   WHERE x.tenant_id = c.tenant_id AND x.journey_id = %s AND x.contact_id = c.id)"
                "  ORDER BY random() LIMIT %s) c",
                [slots, len(slots), tenant.pk, journey.pk, count],
            )
            cursor.execute("SELECT coalesce(max(id), 0) FROM journeys_enrollment")
            last = cursor.fetchone()[0]
            moved = f"CASE WHEN t.state IN {open_states} THEN interval '0' ELSE b.shift END"
            names, values = columns(
                Enrollment,
                {
                    "public_id": "gen_random_uuid()",
                    "contact_id": "b.contact_id",
                    "arrived_at": f"t.arrived_at - {moved}",
                    "due_at": f"t.due_at - {moved}",
                    "converted_at": f"t.converted_at - {moved}",
                    "entered_at": f"t.entered_at - {moved}",
                    "finished_at": f"t.finished_at - {moved}",
                    "updated_at": f"t.updated_at - {moved}",
                    "context": "jsonb_build_object('bench_template', t.id)",
                },
            )
            cursor.execute(
                f"INSERT INTO journeys_enrollment ({names}) SELECT {values}"
                " FROM bench_clone b JOIN journeys_enrollment t ON t.id = b.template_id"
            )
            cloned = cursor.rowcount
            names, values = columns(
                Step,
                {
                    "enrollment_id": "e.id",
                    "created_at": f"t.created_at - CASE WHEN o.state IN {open_states}"
                    " THEN interval '0' ELSE b.shift END",
                },
            )
            cursor.execute(
                f"INSERT INTO journeys_step ({names}) SELECT {values}"
                " FROM journeys_enrollment e"
                " JOIN bench_clone b ON b.contact_id = e.contact_id"
                " JOIN journeys_enrollment o ON o.id = b.template_id"
                " JOIN journeys_step t ON t.enrollment_id = o.id"
                " WHERE e.id > %s AND e.tenant_id = %s AND e.journey_id = %s",
                [last, tenant.pk, journey.pk],
            )
            steps = cursor.rowcount
            # The template's own context back (the marker only found each copy's template).
            cursor.execute(
                "UPDATE journeys_enrollment e SET context = t.context FROM journeys_enrollment t"
                " WHERE e.id > %s AND e.tenant_id = %s AND e.journey_id = %s"
                " AND t.id = (e.context->>'bench_template')::bigint",
                [last, tenant.pk, journey.pk],
            )
        made.append(f"{journey.name} +{cloned:,} enrollments, +{steps:,} steps")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE journeys_enrollment")
        cursor.execute("ANALYZE journeys_step")
    return "; ".join(made)


# --- rollups -------------------------------------------------------------------------------------


@dataclass
class RebuildResult:
    how: str = ""
    seconds: float | None = None
    events: int = 0
    rows: str = ""
    error: str = ""


def rollups_rebuild() -> RebuildResult:
    """The analytics app's rebuild of every team's rollups from the raw events, timed."""
    from django.db import connection

    from tenants.models import Tenant

    result = RebuildResult()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM audience_event")
        result.events = int(cursor.fetchone()[0])
    try:
        rebuild = importlib.import_module("analytics.rebuild").rollups_rebuild
    except (ImportError, AttributeError):
        result.error = "analytics.rebuild.rollups_rebuild does not exist (yet)"
        return result
    parameters = inspect.signature(rebuild).parameters
    began = time.perf_counter()
    try:
        if "tenant" in parameters:
            result.how = "analytics.rebuild.rollups_rebuild(tenant=…) for each team"
            for tenant in Tenant.objects.order_by("pk"):
                rebuild(tenant=tenant)
        elif "tenant_id" in parameters:
            result.how = "analytics.rebuild.rollups_rebuild(tenant_id=…) for each team"
            for tenant_id in Tenant.objects.order_by("pk").values_list("pk", flat=True):
                rebuild(tenant_id=tenant_id)
        else:
            result.how = "analytics.rebuild.rollups_rebuild()"
            rebuild()
    except Exception as exc:
        result.error = f"{exc.__class__.__name__}: {exc}"
        log(f"rollups rebuild failed: {result.error}")
        return result
    result.seconds = time.perf_counter() - began
    with connection.cursor() as cursor:
        sizes = []
        cursor.execute(
            "SELECT c.relname, c.reltuples::bigint, pg_total_relation_size(c.oid)"
            " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relname LIKE 'analytics\\_%%' AND c.relkind IN ('r', 'p')"
            " AND n.nspname = 'public' ORDER BY 1"
        )
        for name, _, size in cursor.fetchall():
            cursor.execute(f'SELECT count(*) FROM "{name}"')
            sizes.append(f"{name} {cursor.fetchone()[0]:,} rows ({size / 2**20:.1f} MB)")
        cursor.execute("ANALYZE")
    result.rows = "; ".join(sizes)
    return result


def stage_history_seed() -> str:
    """The nightly stage snapshots (analytics.tasks) the team would have written over its two
    years, from its `Lifecycle Stage Changed` events: per local day and stage, the contacts
    moved in minus those moved out, summed up to that day. The product writes them from now on
    only; without them the churn and retention charts would show one day. Then today's, by
    the product (`stage_snapshot_take`). Not timed."""
    from django.db import connection

    from tenants.models import Tenant

    try:
        snapshots = importlib.import_module("analytics.snapshots")
        table = importlib.import_module("analytics.models").StageSnapshot._meta.db_table
    except (ImportError, AttributeError) as exc:
        return f"not seeded ({exc})"
    written = 0
    for tenant in Tenant.objects.filter(slug__startswith="bench-").order_by("pk"):
        zone = tenant.timezone or "UTC"
        with connection.cursor() as cursor:
            cursor.execute(
                "WITH moves AS ("
                " SELECT (occurred_at AT TIME ZONE %s)::date AS day, properties->>'to' AS stage,"
                "  1 AS n FROM audience_event WHERE tenant_id = %s AND name = %s"
                " UNION ALL"
                " SELECT (occurred_at AT TIME ZONE %s)::date, properties->>'from', -1"
                "  FROM audience_event WHERE tenant_id = %s AND name = %s"
                "  AND properties->>'from' <> ''),"
                " daily AS (SELECT day, stage, sum(n) AS n FROM moves GROUP BY 1, 2),"
                " grid AS (SELECT d::date AS day, s AS stage FROM generate_series("
                "  (SELECT min(day) FROM daily), (now() AT TIME ZONE %s)::date - 1,"
                "  interval '1 day') d CROSS JOIN unnest(%s::text[]) s)"
                f" INSERT INTO {table} (tenant_id, day, stage, contacts)"
                " SELECT %s, g.day, g.stage, greatest(0, sum(coalesce(daily.n, 0))"
                "  OVER (PARTITION BY g.stage ORDER BY g.day))"
                " FROM grid g LEFT JOIN daily USING (day, stage)"
                " ON CONFLICT DO NOTHING",
                [zone, tenant.pk, STAGE_CHANGED] * 2 + [zone, STAGES, tenant.pk],
            )
            written += cursor.rowcount
        take = getattr(snapshots, "stage_snapshot_take", None)
        if take is not None:
            take(tenant=tenant)
    return f"{written:,} stage snapshot rows (every day of the teams' history)"


# --- pages ---------------------------------------------------------------------------------------


@dataclass
class Page:
    name: str  # the URL name, namespaced
    route: str  # the pattern, e.g. t/<slug:tenant_slug>/journeys/<uuid:journey_id>/funnel/
    path: str = ""  # filled in
    skipped: str = ""


@dataclass
class Sample:
    page: str
    period: str
    path: str
    status: int = 0
    ms: list[float] = field(default_factory=list)
    queries: int = 0
    sql_ms: float = 0.0
    slowest: list[tuple[float, str]] = field(default_factory=list)
    error: str = ""


def analytics_patterns() -> list[Page]:
    """Every pattern the URL resolver reaches through analytics.urls, with its full route."""
    from django.urls import URLPattern, URLResolver, get_resolver

    pages: list[Page] = []

    def walk(patterns: list[Any], prefix: str, namespace: str, inside: bool) -> None:
        for p in patterns:
            route = prefix + str(p.pattern)
            if isinstance(p, URLResolver):
                module = getattr(p.urlconf_module, "__name__", "")
                # analytics.urls and what it includes (urls_dashboard, urls_map): the UI, not
                # the REST API the app also mounts (analytics.api_urls, key-authenticated).
                within = inside or module.startswith("analytics.urls")
                ns = f"{namespace}{p.namespace}:" if p.namespace else namespace
                walk(p.url_patterns, route, ns, within)
            elif isinstance(p, URLPattern) and inside:
                pages.append(Page(name=f"{namespace}{p.name or p.lookup_str}", route=route))

    walk(get_resolver().url_patterns, "", "", False)
    return pages


CONVERTER = re.compile(r"<(?:(?P<conv>\w+):)?(?P<name>\w+)>")


def fill(route: str, values: dict[str, Any]) -> tuple[str, str]:
    """The route with its arguments filled in from `values` (by argument name, then by what
    the name mentions); ("", reason) when one is unknown."""
    missing: list[str] = []

    def one(match: re.Match[str]) -> str:
        conv, name = match["conv"] or "str", match["name"]
        for key, value in values.items():
            if key == name or (key in name and conv in value):
                found = value if isinstance(value, str) else value.get(conv)
                if found is not None:
                    return str(found)
        missing.append(f"{conv}:{name}")
        return ""

    path = "/" + CONVERTER.sub(one, route).replace("^", "").replace("$", "")
    if missing:
        return "", "no value for " + ", ".join(missing)
    return path, ""


def page_values(tenant: Any) -> dict[str, Any]:
    """Values for the routes' arguments, from the data: the team, its journey with the most
    enrollments, its campaign with the most recipients (and that one's latest occurrence)."""
    from django.db.models import Count

    from campaigns.models import Campaign, Occurrence
    from journeys.models import Journey

    values: dict[str, Any] = {"tenant_slug": tenant.slug, "slug": tenant.slug}
    journey = (
        Journey.objects.filter(tenant=tenant)
        .annotate(n=Count("enrollments", distinct=True))
        .order_by("-n", "pk")
        .first()
        if hasattr(Journey, "enrollments")
        else Journey.objects.filter(tenant=tenant).order_by("pk").first()
    )
    if journey is not None:
        values["journey"] = {"uuid": journey.public_id, "int": journey.pk}
    occurrence = (
        Occurrence.objects.filter(tenant=tenant).order_by("-recipient_count", "-pk").first()
    )
    campaign = (
        Campaign.objects.get(pk=occurrence.campaign_id)
        if occurrence
        else Campaign.objects.filter(tenant=tenant).order_by("pk").first()
    )
    if campaign is not None:
        values["campaign"] = {"uuid": campaign.public_id, "int": campaign.pk}
    if occurrence is not None:
        values["occurrence"] = {
            "uuid": getattr(occurrence, "public_id", None),
            "int": occurrence.pk,
        }
    values["stage"] = {"str": "engagement", "slug": "engagement"}
    return values


def periods(today: date) -> list[tuple[str, dict[str, str]]]:
    """The periods every page is asked for (analytics/dashboards.py's `?range=`): its default
    (30 days), the last 90 days, and a custom range of a year (365 days, today included)."""
    start = today - timedelta(days=364)
    return [
        ("default", {}),
        ("90 days", {"range": "90"}),
        ("1 year", {"range": "custom", "start": start.isoformat(), "end": today.isoformat()}),
    ]


def measure_pages(args: argparse.Namespace) -> tuple[list[Sample], list[Page], Sample | None]:
    import logging

    from django.core.signals import got_request_exception
    from django.db import connection, reset_queries
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from tenants.models import Tenant

    tenant = Tenant.objects.get(slug=SLUG)
    client = Client(raise_request_exception=False)  # a page's error is a finding
    failures: list[str] = []

    def failed(sender: Any, request: Any = None, **kwargs: Any) -> None:
        exc = sys.exc_info()[1]
        failures.append(f"{exc.__class__.__name__}: {exc}"[:160] if exc else "?")

    got_request_exception.connect(failed, weak=False)
    logging.getLogger("django.request").setLevel(logging.CRITICAL)  # the report says it
    client.force_login(member())
    values = page_values(tenant)
    pages = analytics_patterns()
    wanted = [w.strip() for w in args.pages.split(",") if w.strip()]
    if wanted:
        pages = [p for p in pages if any(w in p.name or w in p.route for w in wanted)]
    try:
        from analytics.selectors import today as team_today

        today = team_today(tenant)
    except ImportError:
        today = datetime.now(UTC).date()
    targets: list[tuple[str, str, str]] = []  # (page, period, path with query)
    for page in pages:
        page.path, page.skipped = fill(page.route, values)
        if page.skipped:
            continue
        for label, query in periods(today):
            from urllib.parse import urlencode

            targets.append(
                (page.name, label, page.path + ("?" + urlencode(query) if query else ""))
            )
        if args.csv:  # the page's table as a download (decision 8), default period
            targets.append((page.name, CSV, page.path + "?format=csv"))

    def run(page: str, period: str, path: str) -> Sample:
        sample = Sample(page=page, period=period, path=path)
        failures.clear()
        for _ in range(args.warmup):
            response = client.get(path)
        for _ in range(args.runs):
            began = time.perf_counter()
            response = client.get(path)
            if hasattr(response, "streaming_content"):
                b"".join(response.streaming_content)
            sample.ms.append(1000 * (time.perf_counter() - began))
            sample.status = response.status_code
            if response.status_code != 200:
                break
        with CaptureQueriesContext(connection) as captured:
            response = client.get(path)
            if hasattr(response, "streaming_content"):
                b"".join(response.streaming_content)
        sample.queries = len(captured.captured_queries)
        times = [(1000 * float(q["time"]), q["sql"]) for q in captured.captured_queries]
        sample.sql_ms = sum(t for t, _ in times)
        sample.slowest = sorted(times, reverse=True)[: args.explain_top]
        reset_queries()
        if sample.status != 200:
            sample.error = f"HTTP {sample.status}" + (f" {failures[-1]}" if failures else "")
            if sample.status in (301, 302):
                sample.error += f" → {response.get('Location', '')}"
        return sample

    baseline = None
    settings_path = f"/t/{tenant.slug}/settings/"
    log(f"pages: baseline {settings_path}")
    baseline = run("baseline: team settings", "-", settings_path)
    samples = []
    for n, (page, period, path) in enumerate(targets, 1):
        log(f"pages: {n}/{len(targets)} {path}")
        samples.append(run(page, period, path))
    return samples, pages, baseline


def explain(sql_text: str) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        try:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql_text)
            return "\n".join(row[0] for row in cursor.fetchall())
        except Exception as exc:
            return f"(EXPLAIN failed: {exc})"


# --- ingest --------------------------------------------------------------------------------------


@dataclass
class IngestRound:
    hook: bool
    events: int
    wall: float
    cpu: float  # this process
    backend: float  # its PostgreSQL backend


@dataclass
class IngestResult:
    hooks: list[str] = field(default_factory=list)
    rounds: list[IngestRound] = field(default_factory=list)
    error: str = ""


def backend_cpu(pid: int) -> float:
    """utime + stime of a process, in seconds (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure_ingest(args: argparse.Namespace) -> IngestResult:
    """Rounds of shop events through the inbox and its drain, the analytics hook on and off."""
    from django.db import connection

    import audience.inbox
    from audience import registry
    from audience.models import Identity
    from audience.segment_spec import parse_batch
    from tenants.models import Tenant

    result = IngestResult()
    hooks = [
        h for h in registry.EVENTS_STORED if getattr(h, "__module__", "").startswith("analytics")
    ]
    result.hooks = [f"{h.__module__}.{getattr(h, '__qualname__', h)}" for h in hooks]
    if not hooks:
        result.error = "no analytics hook on audience.registry.EVENTS_STORED (yet)"
    # What else analytics does inside ingestion's transaction: a merge of two profiles moves
    # the absorbed one's rollup rows (audience.signals.contacts_merged). Off with the hook.
    receivers: list[tuple[Any, Any, str]] = []
    try:
        from analytics import receivers as analytics_receivers
        from audience.signals import contacts_merged

        receivers.append(
            (
                contacts_merged,
                analytics_receivers.on_contacts_merged,
                "analytics.rollups.contacts_merged",
            )
        )
        result.hooks.append("analytics.receivers.on_contacts_merged")
    except (ImportError, AttributeError):
        pass
    audience.inbox.inbox_wake = lambda: None  # type: ignore[assignment]  # drained here
    tenant = Tenant.objects.get(slug=SLUG)
    # Visitors who sign in are the team's known customers (their user ids exist already).
    user_ids = list(
        Identity.objects.filter(tenant=tenant, kind="user_id").values_list("value", flat=True)[
            :50_000
        ]
    )
    rounds = 2 * args.ingest_rounds
    generator = ingest.EventGenerator(
        seed=args.seed + 3,
        visitors=max(20, args.ingest_events // 10),
        identified=0.5,
        id_prefix="bench-",
    )
    rng = random.Random(args.seed + 4)
    for visitor in generator.visitors:
        if visitor.user_id and user_ids:
            visitor.user_id = rng.choice(user_ids)
    # A run of its own: a kept database (--reuse) has the last run's message ids already.
    token = f"r{int(time.time())}"
    for visitor in generator.visitors:
        visitor.anonymous_id = f"{token}-{visitor.anonymous_id}"
    now = datetime.now(UTC)
    events = generator.events(
        args.ingest_events * (rounds + 1), start=now - timedelta(minutes=30), end=now
    )
    batches = []
    for e in events:
        e.message["messageId"] = f"{token}-{e.message['messageId']}"
    for r in range(rounds + 1):
        chunk = events[r * args.ingest_events : (r + 1) * args.ingest_events]
        batches.append(
            [
                parse_batch({"batch": [e.message for e in chunk[i : i + 100]]})
                for i in range(0, len(chunk), 100)
            ]
        )
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = int(cursor.fetchone()[0])

    def one_round(calls_lists: list[list[Any]], hook: bool) -> IngestRound:
        for calls in calls_lists:
            audience.inbox.inbox_accept(tenant=tenant, calls=calls, source="api")
        saved = list(registry.EVENTS_STORED)
        if not hook:
            registry.EVENTS_STORED[:] = [h for h in saved if h not in hooks]
            for signal_, _receiver, uid in receivers:
                signal_.disconnect(dispatch_uid=uid)
        try:
            wall, cpu, pg = time.perf_counter(), time.process_time(), backend_cpu(pid)
            drained = audience.inbox.inbox_drain()
            wall = time.perf_counter() - wall
            cpu, pg = time.process_time() - cpu, backend_cpu(pid) - pg
        finally:
            registry.EVENTS_STORED[:] = saved
            for signal_, receiver, uid in receivers:
                signal_.connect(receiver, dispatch_uid=uid)
        if drained.failed or drained.stored < drained.calls - drained.duplicates:
            result.error = f"a round set {drained.failed} inbox rows aside"
        return IngestRound(hook=hook, events=drained.stored, wall=wall, cpu=cpu, backend=pg)

    log("ingest: warm-up round")
    one_round(batches[0], True)
    for r in range(rounds):
        hook = (r % 4) in (0, 3)  # with, without, without, with, …
        log(f"ingest: round {r + 1}/{rounds} ({'with' if hook else 'without'} the hook)")
        result.rounds.append(one_round(batches[r + 1], hook))
    return result


# --- the report ----------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def print_table(header: tuple[str, ...], rows: list[tuple[str, ...]], indent: str = "  ") -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print(indent + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def print_report(
    args: argparse.Namespace,
    machine: str,
    data: DataResult | None,
    rebuild: RebuildResult | None,
    pages: tuple[list[Sample], list[Page], Sample | None] | None,
    ingested: IngestResult | None,
) -> int:
    status = 0
    print()
    print("Wayfarer analytics benchmark")
    print(f"  machine:    {machine}")
    for line in conditions_lines(args.load_at_start, args.python_speed, "slower pages"):
        print(line)
    print(f"  team:       {args.contacts:,} contacts, ~{args.events:,} events (--events)")
    if data:
        total = sum(data.rows.values())
        rows = ", ".join(f"{t} {n:,}" for t, n in data.rows.items())
        print(f"  loaded:     {rows} rows ({total:,})")
        print(f"  load time:  {', '.join(f'{k} {v:.0f} s' for k, v in data.seconds.items())}")
        mix = ", ".join(f"{k} {v:,}" for k, v in data.shop_mix.most_common())
        print(f"  the team's shop events: {mix}")
        extra = ", ".join(f"{k} {v:,}" for k, v in data.extra.most_common())
        print(f"  other events (all teams): {extra}")
        if data.demo:
            print(f"  demo:       {data.demo}")
    if rebuild:
        print()
        if rebuild.error:
            print(f"Rollups rebuild: NOT MEASURED: {rebuild.error}")
        else:
            print(
                f"Rollups rebuild ({rebuild.how}): {rebuild.seconds:.1f} s for {rebuild.events:,}"
                f" events = {rebuild.events / rebuild.seconds:,.0f} events/s"
            )
            print(f"  {rebuild.rows}")
    if getattr(args, "pages_error", ""):
        print()
        print(f"Pages: NOT MEASURED: {args.pages_error}")
        status = 1
    if pages:
        samples, patterns, baseline = pages
        print()
        every = [ms for s in samples if not s.error and s.period != CSV for ms in s.ms]
        csv = [ms for s in samples if not s.error and s.period == CSV for ms in s.ms]
        print(
            f"Pages: server time in this process (Django's test Client, signed in), {args.warmup}"
            f" warm-up + {args.runs} timed requests per page and period"
        )
        if baseline:
            median, p95 = statistics.median(baseline.ms), percentile(baseline.ms, 95)
            print(
                f"  baseline {baseline.path} (a trivial page): median {median:.1f} ms,"
                f" p95 {p95:.1f} ms, {baseline.queries} SQL statements {baseline.error}"
            )
        rows = []
        for s in samples:
            if s.error:
                rows.append((s.page, s.period, "-", "-", "-", str(s.queries), s.error))
                continue
            rows.append(
                (
                    s.page,
                    s.period,
                    f"{statistics.median(s.ms):.1f}",
                    f"{percentile(s.ms, 95):.1f}",
                    f"{max(s.ms):.1f}",
                    f"{s.queries} ({s.sql_ms:.0f} ms)",
                    verdict(percentile(s.ms, 95) <= TARGET_MS),
                )
            )
        print_table(
            ("page", "period", "median ms", "p95 ms", "max ms", "SQL (time)", "<= 300"), rows
        )
        for p in patterns:
            if p.skipped:
                print(f"  skipped {p.name} ({p.route}): {p.skipped}")
        errors = [s for s in samples if s.error]
        if every:
            overall = percentile(every, 95)
            print(
                f"  overall p95 over {len(every):,} requests of"
                f" {sum(1 for s in samples if not s.error and s.period != CSV)}"
                f" page/period pairs: {overall:.1f} ms (target <= {TARGET_MS:.0f} ms):"
                f" {verdict(overall <= TARGET_MS)}"
            )
        else:
            print("  overall p95: NOT MEASURED (no analytics page answered 200)")
        if csv:
            print(
                f"  CSV exports (not in the target): p95 over {len(csv):,} requests"
                f" {percentile(csv, 95):.1f} ms"
            )
        if errors:
            print(f"  {len(errors)} page/period pairs answered an error (see the table)")
            status = 1
        if args.explain:
            slowest: dict[str, tuple[float, str, str, str]] = {}
            for s in samples:
                for ms, sql_text in s.slowest:
                    key = re.sub(r"\d+", "N", sql_text)[:300]  # one per statement shape
                    if key not in slowest or ms > slowest[key][0]:
                        slowest[key] = (ms, sql_text, s.page, s.period)
            top = sorted(slowest.values(), reverse=True)[: args.explain_top]
            for ms, sql_text, page, period in top:
                print()
                print(f"  EXPLAIN (ANALYZE, BUFFERS), {ms:.1f} ms in {page} ({period}):")
                print(f"    {sql_text[:2000]}")
                for line in explain(sql_text).splitlines():
                    print(f"      {line}")
    if ingested:
        print()
        if not ingested.rounds or not all(r.events for r in ingested.rounds):
            print(f"Ingest: NOT MEASURED: {ingested.error or 'a round stored no event'}")
        else:
            print(
                "Ingest: shop events accepted into the inbox and recorded by inbox_drain() in this"
                f" process, {args.ingest_events:,} per round, rounds interleaved;"
                f" hook(s): {', '.join(ingested.hooks) or 'none: ' + ingested.error}"
            )
            rows = []
            figures = {}
            for hook in (True, False):
                rs = [r for r in ingested.rounds if r.hook == hook]
                n = sum(r.events for r in rs)
                figures[hook] = (
                    1e6 * sum(r.cpu for r in rs) / n,
                    1e6 * sum(r.backend for r in rs) / n,
                    1e6 * sum(r.wall for r in rs) / n,
                )
                rows.append(
                    (
                        "with the analytics hook" if hook else "without",
                        f"{len(rs)} x {n // max(1, len(rs)):,}",
                        f"{figures[hook][0]:.1f}",
                        f"{figures[hook][1]:.1f}",
                        f"{figures[hook][0] + figures[hook][1]:.1f}",
                        f"{figures[hook][2]:.1f}",
                    )
                )
            with_, without = figures[True], figures[False]
            rows.append(
                (
                    "with / without",
                    "",
                    f"{with_[0] / without[0]:.2f}",
                    f"{with_[1] / without[1]:.2f}",
                    f"{(with_[0] + with_[1]) / (without[0] + without[1]):.2f}",
                    f"{with_[2] / without[2]:.2f}",
                )
            )
            print_table(
                (
                    "rounds",
                    "events",
                    "worker CPU µs/event",
                    "PostgreSQL µs/event",
                    "both",
                    "wall µs/event",
                ),
                rows,
            )
    return status


# --- main ----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.load_at_start = os.getloadavg()[0]
    args.python_speed = python_speed()
    signal.signal(signal.SIGTERM, terminated)
    try:
        with bench_database(args.database, keep=args.keep, reuse=args.reuse):
            return measure(args)
    except (BenchError, psycopg.Error) as exc:
        print(f"\nbench/analytics.py: {exc}", file=sys.stderr)
        return 1


def measure(args: argparse.Namespace) -> int:
    data = rebuild = pages = ingested = None
    if not args.reuse:
        data = data_make(args)
    if args.reuse and "demo" in args.phases:
        log(f"demo: {demo_make()}")
    if args.reuse and "scale" in args.phases:
        log(f"journeys at scale: {journeys_scale(enrollments=args.enrollments, seed=args.seed)}")
    machine = machine_description(args.database.server_version())
    if "rebuild" in args.phases:
        log("rollups: rebuild")
        rebuild = rollups_rebuild()
        log(f"rollups: {stage_history_seed()}")
    if "pages" in args.phases:
        try:
            pages = measure_pages(args)
        except Exception as exc:  # the app's code mid-change (an import error): say so
            log(f"pages: NOT MEASURED: {exc.__class__.__name__}: {exc}")
            args.pages_error = f"{exc.__class__.__name__}: {exc}"
    if "ingest" in args.phases and args.ingest_rounds:
        ingested = measure_ingest(args)
    return print_report(args, machine, data, rebuild, pages, ingested)


if __name__ == "__main__":
    sys.exit(main())
