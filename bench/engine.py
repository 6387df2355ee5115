#!/usr/bin/env python
# ruff: noqa: T201  (a command-line report: printing is its job)
"""Journey engine benchmark: how many journey steps per second one engine worker runs, whether
two workers contend (they must not: same CPU per step, no step twice, no lock waits), and how
long an ingested event takes to become an email in a mail sink while other traffic is ingested.

    .venv/bin/python bench/engine.py [--enrollments N] [--quick] [--phases one,two,latency]
                                     [--profile]

One run, on its own database (nothing touches the development data):

1. Recreates a PostgreSQL database (default `wayfarer_bench_engine` on 127.0.0.1, dropped
   afterwards), runs `manage.py migrate` on it; every phase gets a tenant of its own.
2. **One worker**: a live journey trigger → wait_delay (1 hour) → branch_condition (attribute
   `plan` is `pro`: everyone) → action_email → end. N contacts and N enrollments standing at the
   wait node, arrived two hours ago and due now, are bulk-inserted (not timed). Then ONE engine
   worker process (a plain Python process, not Celery: `bench/engine.py worker`, which calls
   `journeys.engine.advance_due(limit=--batch)` in a loop until it advances nothing) runs them
   all. A step is one node executed for one enrollment: wait + branch + email = 3 per
   enrollment; the report counts them from the step log (distinct enrollment x node pairs).
   Measured: steps/s (from "go" to the last worker's end), the worker's CPU per step
   (getrusage in the worker), the CPU of its PostgreSQL backend (its own connection, from
   /proc), all PostgreSQL processes and the whole machine (/proc/stat).
3. **Two workers**: the same on fresh data with two worker processes started at once. A 2-core
   machine cannot show a linear speed-up (PostgreSQL and both workers share the two cores), so
   the proof of no contention is: the workers' CPU per step within 10% of one worker's, no step
   twice (every enrollment has exactly one outbox row, no step logged twice per enrollment and
   node), and no lock waits: a monitor samples pg_locks every 10 ms (both phases alike) and
   reports every ungranted lock it saw with how long it had waited.
4. **Latency**: the real stack on loopback: gunicorn (/v1/*), the Celery workers of the
   `ingest`, `engine` and `email` queues (solo pool, as the Procfile), beat when the journeys
   tick is scheduled, and a mail sink process (tests/mail_sink.py). A live journey "Bench
   Trigger" → action_email. A thread posts 200 other events/s to /v1/batch for the whole phase;
   meanwhile M trigger events (one per contact, 10/s) go to /v1/track, and the time from posting
   each one to its email's arrival in the sink (polled every 10 ms) gives p50/p95/p99.
5. Prints the figures against the targets (MET / MISSED), stops the processes, drops the database.
   `--profile` also runs one worker under cProfile on fresh data and prints the top 25
   functions by cumulative time.

Targets (issue 13): >= 2,000 steps/s with one worker; two workers' CPU per step within 10% of
one's; event → email p95 <= 2 s under the background load.

Exit status: 0 when the measurement completed, whether or not the targets were met; 1 when it
is partial (a step ran twice, an enrollment was not advanced, an email is missing or came twice:
the report says which check FAILED) or could not run; 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import pstats
import re
import resource
import signal
import statistics
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
from types import SimpleNamespace
from typing import Any

import psycopg
from common import (
    ROOT,
    BenchDatabase,
    BenchError,
    conditions_lines,
    django_environment,
    django_on_bench_database,
    django_setup,
    log,
    machine_description,
    python_speed,
    terminated,
    verdict,
)
from ingest import (
    Beat,
    Client,
    EventGenerator,
    Gunicorn,
    IngestWorker,
    ManagedProcess,
    basic_auth,
    beat_wanted,
    broker_empty,
    cpu_snapshot,
)
from send import EMAIL_HTML, MailSink, SenderWorker

BIN = Path(sys.executable).parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/wayfarer_bench_engine"
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/11"

TARGET_STEPS_PER_SECOND = 2_000
TARGET_CPU_RATIO = 1.10  # two workers' CPU per step at most 10% above one worker's
TARGET_P95_SECONDS = 2.0
LOCK_WAIT_LIMIT_MS = 5.0  # "no lock waits beyond a few ms"
STEPS_PER_ENROLLMENT = 3  # wait, branch, email
TRIGGER_EVENT = "Bench Trigger"
PHASES = ("one", "two", "latency")


# --- command line --------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Wayfarer journey engine benchmark: steps/s with one and two workers, and"
        " event → email latency under ingestion load.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--enrollments", type=int, default=None, help="enrollments due at once (default 100,000)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="10,000 enrollments and 100 latency events"
    )
    parser.add_argument("--phases", default=",".join(PHASES), help="which phases, in order")
    parser.add_argument(
        "--batch", type=int, default=500, help="advance_due(limit=…) per call of a worker"
    )
    parser.add_argument(
        "--latency-events",
        type=int,
        default=None,
        help="trigger events of the latency phase, one per contact (default 200)",
    )
    parser.add_argument("--latency-rate", type=float, default=10.0, help="trigger events per s")
    parser.add_argument(
        "--background-rate", type=float, default=200.0, help="other events per s meanwhile"
    )
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn workers (latency)")
    parser.add_argument(
        "--beat",
        choices=("auto", "on", "off"),
        default="auto",
        help="run Celery beat in the latency phase (auto: when a journeys task is scheduled)",
    )
    parser.add_argument(
        "--monitor-interval", type=float, default=0.01, help="seconds between pg_locks samples"
    )
    parser.add_argument(
        "--database-url",
        default=DEFAULT_DATABASE_URL,
        help="the bench database; it is DROPPED and recreated (host must be 127.0.0.1)",
    )
    parser.add_argument(
        "--broker-url",
        default=DEFAULT_BROKER_URL,
        help="Celery broker of the latency phase; the bench EMPTIES this Redis database",
    )
    parser.add_argument("--max-seconds", type=float, default=900, help="time limit per phase")
    parser.add_argument(
        "--profile", action="store_true", help="also run one worker under cProfile (top 25)"
    )
    parser.add_argument(
        "--profile-enrollments",
        type=int,
        default=None,
        help="enrollments of the profiling pass (default: min(--enrollments, 20,000))",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the bench database and temporary files"
    )
    args = parser.parse_args(argv)
    if args.enrollments is None:
        args.enrollments = 10_000 if args.quick else 100_000
    if args.latency_events is None:
        args.latency_events = 100 if args.quick else 200
    if args.profile_enrollments is None:
        args.profile_enrollments = min(args.enrollments, 20_000)
    args.phase_list = [p.strip() for p in args.phases.split(",") if p.strip()]
    unknown = set(args.phase_list) - set(PHASES)
    if unknown or not args.phase_list:
        parser.error(f"--phases takes a list of {', '.join(PHASES)}")
    if min(args.enrollments, args.batch, args.latency_events, args.profile_enrollments) < 1:
        parser.error("--enrollments, --batch, --latency-events must be positive")
    if args.latency_rate <= 0 or args.background_rate < 0 or args.web_workers < 1:
        parser.error("--latency-rate and --web-workers must be positive")
    try:
        args.database = BenchDatabase(args.database_url)
    except BenchError as exc:
        parser.error(str(exc))
    if not re.fullmatch(r"redis://(127\.0\.0\.1|localhost)(:\d+)?/\d+", args.broker_url):
        parser.error("--broker-url must be redis://127.0.0.1[:port]/<database number>")
    return args


# --- the engine worker (a process of its own) ----------------------------------------------------


def backend_cpu(pid: int) -> float:
    """CPU seconds of a PostgreSQL backend process (same machine), 0 when unreadable."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def worker_main(argv: list[str]) -> int:
    """`bench/engine.py worker --ready F --result F [--batch N] [--profile-out F]`: sets Django
    up (the environment comes from the parent), connects, writes `ready`, waits for "go" on
    stdin, then calls advance_due until it advances nothing, and writes its figures."""
    parser = argparse.ArgumentParser(prog="bench/engine.py worker")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--ready", required=True)
    parser.add_argument("--result", required=True)
    parser.add_argument("--profile-out", default="")
    args = parser.parse_args(argv)
    django_setup({})
    import cProfile

    from django.db import connection

    from journeys.engine import advance_due

    connection.ensure_connection()
    backend = connection.connection.info.backend_pid
    Path(args.ready + ".tmp").write_text(json.dumps({"pid": os.getpid(), "backend": backend}))
    os.replace(args.ready + ".tmp", args.ready)
    if sys.stdin.readline().strip() != "go":
        return 1
    profiler = cProfile.Profile() if args.profile_out else None
    calls: list[float] = []
    returned = 0
    usage_before = resource.getrusage(resource.RUSAGE_SELF)
    backend_before = backend_cpu(backend)
    began = time.perf_counter()
    if profiler:
        profiler.enable()
    error = ""
    try:
        while True:
            started = time.perf_counter()
            advanced = advance_due(limit=args.batch)
            calls.append(time.perf_counter() - started)
            returned += advanced
            if not advanced:
                break
    except Exception as exc:  # reported by the parent, with the log's traceback
        import traceback

        traceback.print_exc()
        error = f"{type(exc).__name__}: {exc}"[:500]
    finally:
        if profiler:
            profiler.disable()
    wall = time.perf_counter() - began
    usage = resource.getrusage(resource.RUSAGE_SELF)
    if backend != connection.connection.info.backend_pid:
        error = error or "the worker's database connection changed during the run"
    result = {
        "wall": wall,
        "user": usage.ru_utime - usage_before.ru_utime,
        "system": usage.ru_stime - usage_before.ru_stime,
        "backend": backend_cpu(backend) - backend_before,
        "calls": len(calls),
        "returned": returned,
        "call_median": statistics.median(calls) if calls else 0.0,
        "call_max": max(calls) if calls else 0.0,
        "error": error,
    }
    if profiler:
        profiler.dump_stats(args.profile_out)
    Path(args.result).write_text(json.dumps(result))
    return 1 if error else 0


class EngineWorker:
    """One `bench/engine.py worker` process: started, made ready, told to go, awaited."""

    def __init__(self, env: dict[str, str], var_dir: Path, name: str, batch: int, profile: str):
        self.name = name
        self.ready_path = var_dir / f"{name}.ready"
        self.result_path = var_dir / f"{name}.result"
        self.log_path = var_dir / f"{name}.log"
        for path in (self.ready_path, self.result_path):
            path.unlink(missing_ok=True)
        command = [sys.executable, str(Path(__file__).resolve()), "worker"]
        command += ["--batch", str(batch), "--ready", str(self.ready_path)]
        command += ["--result", str(self.result_path)]
        if profile:
            command += ["--profile-out", profile]
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.backend = 0

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready_path.exists():
            if self.process.poll() is not None:
                raise BenchError(f"{self.name} exited at start:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise BenchError(f"{self.name} was not ready within {timeout:.0f}s")
            time.sleep(0.05)
        self.backend = json.loads(self.ready_path.read_text())["backend"]

    def go(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(b"go\n")
        self.process.stdin.flush()

    def result(self) -> dict[str, Any]:
        if not self.result_path.exists():
            return {"error": f"no result (exit {self.process.returncode}):\n{self.log_tail()}"}
        figures: dict[str, Any] = json.loads(self.result_path.read_text())
        return figures

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self._log.close()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


# --- data ----------------------------------------------------------------------------------------


@dataclass
class Setup:
    tenant: Any
    journey: Any
    version: Any
    template: Any
    contacts: list[Any]


def bench_owner() -> Any:
    """The user who owns the bench tenants and builds their journeys."""
    from accounts.models import User

    email = "bench-owner@bench.example"
    return User.objects.filter(email=email).first() or User.objects.create_user(email)


def tenant_setup(slug: str, contacts: int, user_prefix: str) -> tuple[Any, Any, list[Any]]:
    """A tenant with a confirmed From address, an email template and `contacts` contacts (each
    with an email, a user id and the attribute plan=pro)."""
    from audience.models import Contact
    from messaging.services import sender_identity_update, template_save
    from tenants.services import tenant_create

    tenant = tenant_create(name=f"Bench {slug}", slug=slug, owner=bench_owner())
    sender_identity_update(tenant=tenant, sender_email="news@shop.example", verified=True)
    template = template_save(
        tenant=tenant,
        name="Journey email",
        channel="email",
        subject="{{ contact.first_name | default: 'Hello' }}, something for you",
        preheader="From the bench journey",
        html=EMAIL_HTML,
    )
    rows = Contact.objects.bulk_create(
        (
            Contact(
                tenant=tenant,
                email=f"{slug}-{i:06}@bench.example",
                first_name=f"Name{i}",
                user_id=f"{user_prefix}{i}",
                attributes={"plan": "pro"},
            )
            for i in range(contacts)
        ),
        batch_size=5_000,
    )
    return tenant, template, rows


def journey_build(tenant: Any, name: str, graph: dict[str, Any], trigger_event: str) -> tuple:
    """A live journey with `graph` published: through journeys.services when it exists (what the
    editor and the API do), else straight with the ORM (the version published, the trigger
    denormalised). Returns (journey, published version)."""
    from django.utils.timezone import now

    from journeys.models import Edge, Journey, JourneyVersion, Node

    try:
        from journeys import services
    except ImportError:
        services = None
    if services is not None and hasattr(services, "journey_publish"):
        actor = bench_owner()
        journey = services.journey_create(tenant=tenant, name=name, actor=actor, graph=graph)
        services.journey_publish(journey=journey, actor=actor, move_waiting=False)
        journey.refresh_from_db()
        version = JourneyVersion.objects.get(journey=journey, state=JourneyVersion.State.PUBLISHED)
        return journey, version
    journey = Journey.objects.create(tenant=tenant, name=name, status=Journey.Status.LIVE)
    version = JourneyVersion.objects.create(
        tenant=tenant,
        journey=journey,
        number=1,
        state=JourneyVersion.State.PUBLISHED,
        trigger_kind="trigger_event",
        trigger_event=trigger_event,
        published_at=now(),
    )
    Node.objects.bulk_create(
        Node(
            tenant=tenant,
            version=version,
            key=n["key"],
            kind=n["kind"],
            label=n.get("label", ""),
            settings=n["settings"],
        )
        for n in graph["nodes"]
    )
    Edge.objects.bulk_create(
        Edge(tenant=tenant, version=version, source=e["source"], port=e["port"], target=e["target"])
        for e in graph["edges"]
    )
    return journey, version


def engine_graph(template: Any) -> dict[str, Any]:
    """trigger → wait 1 hour → if plan is pro → email → (end)."""
    rules = {
        "type": "group",
        "match": "all",
        "negate": False,
        "children": [
            {"type": "attribute", "field": "attributes.plan", "operator": "equals", "value": "pro"}
        ],
    }
    return {
        "nodes": [
            {"key": "trigger", "kind": "trigger_event", "settings": {"event": TRIGGER_EVENT}},
            {"key": "wait", "kind": "wait_delay", "settings": {"amount": 1, "unit": "hours"}},
            {"key": "branch", "kind": "branch_condition", "settings": {"rules": rules}},
            {
                "key": "email",
                "kind": "action_email",
                "settings": {"template": str(template.public_id), "category": "marketing"},
            },
        ],
        "edges": [
            {"source": "trigger", "port": "next", "target": "wait"},
            {"source": "wait", "port": "next", "target": "branch"},
            {"source": "branch", "port": "yes", "target": "email"},
        ],
    }


def engine_setup(slug: str, count: int) -> Setup:
    """`count` contacts, each with an enrollment standing at the wait node since two hours ago,
    due now (not timed)."""
    from django.db import DatabaseError, connection
    from django.utils.timezone import now

    from journeys.models import Enrollment

    began = time.perf_counter()
    tenant, template, contacts = tenant_setup(slug, count, "u")
    journey, version = journey_build(tenant, "Bench engine", engine_graph(template), TRIGGER_EVENT)
    at = now()
    arrived = at - timedelta(hours=2)
    Enrollment.objects.bulk_create(
        (
            Enrollment(
                tenant=tenant,
                journey=journey,
                version=version,
                contact=contact,
                node_key="wait",
                arrived_at=arrived,
                entered_at=arrived,
                state=Enrollment.State.ACTIVE,
                due_at=arrived,
                steps_taken=1,
                context={
                    "event": {
                        "name": TRIGGER_EVENT,
                        "properties": {"n": i},
                        "occurred_at": arrived.isoformat(),
                        "id": f"bench-{i}",
                    },
                    "data": {},
                },
            )
            for i, contact in enumerate(contacts)
        ),
        batch_size=5_000,
    )
    with connection.cursor() as cursor:
        # VACUUM as autovacuum would have by then: a phase that starts on the previous phase's
        # 100,000 updated rows otherwise walks their dead entries in the due index at every
        # claim (the two-worker phase's backends used 3.4x the CPU per step of a fresh table's).
        verb = "ANALYZE" if connection.in_atomic_block else "VACUUM ANALYZE"
        for table in ("journeys_enrollment", "audience_contact", "journeys_step"):
            cursor.execute(f"{verb} {table}")
        cursor.execute(f"{verb} messaging_delivery")
        # Every phase starts from a clean WAL state (a superuser's right: else noisier figures).
        with contextlib.suppress(psycopg.Error, DatabaseError):
            cursor.execute("CHECKPOINT")
    log(f"seeded {count:,} contacts and enrollments in {time.perf_counter() - began:.1f}s")
    return Setup(tenant, journey, version, template, contacts)


def setup_retire(setup: Setup) -> None:
    """After a phase: its open enrollments end and its outbox rows are set aside, so the next
    phase's engine and sender never see them."""
    from journeys.models import Enrollment
    from messaging.models import Delivery

    Enrollment.objects.filter(
        tenant=setup.tenant, state__in=[Enrollment.State.ACTIVE, Enrollment.State.WAITING]
    ).update(state=Enrollment.State.EXITED, due_at=None)
    Delivery.objects.filter(tenant=setup.tenant, status=Delivery.Status.QUEUED).update(
        status=Delivery.Status.SKIPPED, reason="bench: engine phase, never sent"
    )


# --- the lock monitor ----------------------------------------------------------------------------


class LockMonitor(threading.Thread):
    """Samples the bench database's backends every `interval` seconds on a connection of its
    own: every ungranted lock (pg_locks.waitstart says since when), and what active backends
    are waiting on (wait_event_type/wait_event, or on CPU)."""

    QUERY = """
        SELECT a.pid, a.wait_event_type, a.wait_event, l.locktype, l.mode, l.waitstart,
               EXTRACT(EPOCH FROM clock_timestamp() - l.waitstart), left(a.query, 160)
        FROM pg_stat_activity a
        LEFT JOIN pg_locks l ON l.pid = a.pid AND NOT l.granted
        WHERE a.datname = %s AND a.pid <> pg_backend_pid() AND a.state = 'active'
    """

    def __init__(self, url: str, dbname: str, interval: float, pids: set[int]) -> None:
        super().__init__(daemon=True)
        self.url, self.dbname, self.interval, self.pids = url, dbname, interval, pids
        self.stop_event = threading.Event()
        self.samples = 0
        self.waits: dict[tuple[int, Any], tuple[float, str]] = {}  # (pid, since) -> (s, what)
        self.states: Counter[str] = Counter()  # of the workers' backends, per sample
        self.error = ""

    def run(self) -> None:
        try:
            with psycopg.connect(self.url, autocommit=True) as conn:
                while not self.stop_event.is_set():
                    rows = conn.execute(self.QUERY, [self.dbname], prepare=True).fetchall()
                    self.samples += 1
                    for pid, wtype, wevent, locktype, mode, since, waited, query in rows:
                        if since is not None:
                            what = f"{locktype} {mode}: {' '.join(query.split())[:120]}"
                            old = self.waits.get((pid, since), (0.0, what))[0]
                            self.waits[(pid, since)] = (max(old, float(waited or 0)), what)
                        if pid in self.pids:
                            self.states[f"{wtype}:{wevent}" if wtype else "running"] += 1
                    self.stop_event.wait(self.interval)
        except psycopg.Error as exc:
            self.error = str(exc)

    def stop(self) -> None:
        self.stop_event.set()
        self.join(timeout=10)

    def longest_ms(self) -> float:
        return 1000 * max((s for s, _ in self.waits.values()), default=0.0)


def pg_counters(conn: psycopg.Connection, dbname: str) -> dict[str, int]:
    row = conn.execute(
        "SELECT deadlocks, xact_commit, xact_rollback FROM pg_stat_database WHERE datname = %s",
        [dbname],
    ).fetchone()
    assert row is not None
    return dict(zip(("deadlocks", "commits", "rollbacks"), map(int, row), strict=True))


# --- the engine phases ---------------------------------------------------------------------------


@dataclass
class EnginePhase:
    label: str
    workers: int
    enrollments: int
    seconds: float = 0.0
    steps: int = 0  # distinct (enrollment, node) pairs in the step log, the trigger left out
    step_rows: int = 0
    step_kinds: Counter[str] = field(default_factory=Counter)
    states: Counter[str] = field(default_factory=Counter)
    results: list[dict[str, Any]] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)  # /proc: PostgreSQL, machine
    lock_waits: int = 0
    lock_longest_ms: float = 0.0
    lock_examples: list[str] = field(default_factory=list)
    waits: Counter[str] = field(default_factory=Counter)
    monitor_samples: int = 0
    pg: dict[str, int] = field(default_factory=dict)
    duplicate_steps: int = 0
    deliveries: int = 0
    enrollments_without_one_delivery: int = 0
    duplicate_keys: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.steps / self.seconds if self.seconds else 0.0

    def worker_cpu(self) -> float:
        return sum(r.get("user", 0.0) + r.get("system", 0.0) for r in self.results)

    def backend_cpu(self) -> float:
        return sum(r.get("backend", 0.0) for r in self.results)

    def per_step_ms(self, seconds: float) -> float:
        return 1000 * seconds / self.steps if self.steps else 0.0

    @property
    def complete(self) -> bool:
        done = sum(v for k, v in self.states.items() if k not in ("active", "waiting"))
        return (
            not self.problems
            and done == self.enrollments
            and self.states.get("completed", 0) == self.enrollments
            and self.duplicate_steps == 0
            and self.enrollments_without_one_delivery == 0
            and self.duplicate_keys == 0
        )


def run_engine_phase(
    args: argparse.Namespace,
    env: dict[str, str],
    var_dir: Path,
    label: str,
    workers: int,
    enrollments: int,
    profile_out: str = "",
) -> EnginePhase:
    slug = f"bench-engine-{label.replace(' ', '-')}"
    setup = engine_setup(slug, enrollments)
    phase = EnginePhase(label=label, workers=workers, enrollments=enrollments)
    database: BenchDatabase = args.database
    processes = [
        EngineWorker(env, var_dir, f"{slug}-{i}", args.batch, profile_out) for i in range(workers)
    ]
    monitor: LockMonitor | None = None
    try:
        for process in processes:
            process.wait_ready()
        monitor = LockMonitor(
            database.url, database.name, args.monitor_interval, {p.backend for p in processes}
        )
        with database.connect(autocommit=True) as conn:
            counters_before = pg_counters(conn, database.name)
            monitor.start()
            trees = {p.name: p.process.pid for p in processes}
            cpu_before = cpu_snapshot(trees)
            began = time.perf_counter()
            for process in processes:
                process.go()
            deadline = began + args.max_seconds
            for process in processes:
                try:
                    process.process.wait(timeout=max(1.0, deadline - time.perf_counter()))
                except subprocess.TimeoutExpired:
                    phase.problems.append(f"{process.name} still running after --max-seconds")
            phase.seconds = time.perf_counter() - began
            cpu_after = cpu_snapshot(trees)
            monitor.stop()
            time.sleep(1)  # pg_stat_database is updated when a backend reports
            counters_after = pg_counters(conn, database.name)
        phase.pg = {k: counters_after[k] - counters_before[k] for k in counters_after}
        phase.cpu = {k: cpu_after[k] - cpu_before.get(k, 0.0) for k in ("PostgreSQL", "machine")}
        phase.results = [p.result() for p in processes]
        for process, result in zip(processes, phase.results, strict=True):
            if result.get("error"):
                phase.problems.append(f"{process.name}: {result['error']}")
        phase.lock_waits = len(monitor.waits)
        phase.lock_longest_ms = monitor.longest_ms()
        phase.lock_examples = [
            f"{1000 * s:.1f} ms {what}"
            for s, what in sorted(monitor.waits.values(), reverse=True)[:3]
        ]
        phase.waits = monitor.states
        phase.monitor_samples = monitor.samples
        if monitor.error:
            phase.problems.append(f"lock monitor: {monitor.error}")
        verify_engine_phase(phase, setup)
        setup_retire(setup)
    finally:
        if monitor is not None and monitor.is_alive():
            monitor.stop()
        for process in processes:
            process.stop()
    return phase


def verify_engine_phase(phase: EnginePhase, setup: Setup) -> None:
    """Counts from the database: states, steps, duplicates, one outbox row per enrollment."""
    from django.db import connection

    from journeys.models import Enrollment, Step

    tenant = setup.tenant.pk
    phase.states = Counter(
        Enrollment.objects.filter(tenant=setup.tenant).values_list("state", flat=True)
    )
    kinds = Step.objects.filter(tenant=setup.tenant).values_list("node_key", "result")
    phase.step_kinds = Counter(f"{node}:{result}" for node, result in kinds)
    phase.step_rows = sum(phase.step_kinds.values())
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(DISTINCT (enrollment_id, node_key)) FROM journeys_step"
            " WHERE tenant_id = %s AND node_key <> 'trigger' AND result <> 'entered'",
            [tenant],
        )
        phase.steps = cursor.fetchone()[0]
        cursor.execute(
            "SELECT count(*) FROM (SELECT 1 FROM journeys_step WHERE tenant_id = %s"
            " GROUP BY enrollment_id, node_key, result HAVING count(*) > 1) AS twice",
            [tenant],
        )
        phase.duplicate_steps = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM messaging_delivery WHERE tenant_id = %s", [tenant])
        phase.deliveries = cursor.fetchone()[0]
        cursor.execute(
            "SELECT count(*) FROM journeys_enrollment e WHERE e.tenant_id = %s AND"
            " (SELECT count(*) FROM messaging_delivery d WHERE d.tenant_id = e.tenant_id"
            "  AND d.contact_id = e.contact_id) <> 1",
            [tenant],
        )
        phase.enrollments_without_one_delivery = cursor.fetchone()[0]
        cursor.execute(
            "SELECT count(*) FROM (SELECT 1 FROM messaging_delivery WHERE tenant_id = %s"
            " GROUP BY idempotency_key HAVING count(*) > 1) AS twice",
            [tenant],
        )
        phase.duplicate_keys = cursor.fetchone()[0]
    nominal = STEPS_PER_ENROLLMENT * phase.states.get("completed", 0)
    if phase.steps != nominal:
        phase.problems.append(
            f"step log has {phase.steps:,} distinct enrollment x node pairs, 3 x completed"
            f" = {nominal:,}"
        )


def profile_report(path: str, enrollments: int) -> None:
    stats = pstats.Stats(path)
    print()
    print(
        f"Where one engine worker's time goes (cProfile, {enrollments:,} enrollments, so"
        f" {STEPS_PER_ENROLLMENT * enrollments:,} steps; cProfile slows Python more than SQL:"
        " read it as a ranking)"
    )
    rows = sorted(stats.stats.items(), key=lambda item: item[1][3], reverse=True)  # type: ignore[attr-defined]
    print(f"  {'cumulative s':>12} {'own s':>8} {'calls':>10}  function")
    for (path_, line, name), (_cc, nc, tt, ct, _callers) in rows[:25]:
        where = path_.replace(str(ROOT) + "/", "").split("site-packages/")[-1]
        print(f"  {ct:12.3f} {tt:8.3f} {nc:10,}  {name} ({where}:{line})")
    print("  most own time:")
    rows = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)  # type: ignore[attr-defined]
    for (path_, line, name), (_cc, nc, tt, _ct, _callers) in rows[:12]:
        where = path_.replace(str(ROOT) + "/", "").split("site-packages/")[-1]
        print(f"  {tt:12.3f} s {nc:10,}  {name} ({where}:{line})")


# --- the latency phase ---------------------------------------------------------------------------


@dataclass
class LatencyPhase:
    events: int
    latencies: list[float] = field(default_factory=list)  # seconds, event posted → in the sink
    missing: int = 0
    twice: int = 0
    failed_posts: list[str] = field(default_factory=list)
    background_sent: int = 0
    background_seconds: float = 0.0
    background_failures: int = 0
    trigger_seconds: float = 0.0
    stages: dict[str, list[float]] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    beat: bool = False
    problems: list[str] = field(default_factory=list)

    def percentile(self, p: float) -> float:
        return percentile(self.latencies, p)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


class SinkWatcher:
    """Reads the sink's JSON lines as they come and stamps each recipient's first message."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset = path, 0
        self.first: dict[str, float] = {}
        self.count: Counter[str] = Counter()

    def poll(self) -> None:
        with self.path.open("rb") as fh:
            fh.seek(self.offset)
            new = fh.read()
        at = time.time()
        complete = new.rfind(b"\n") + 1
        for line in new[:complete].splitlines():
            for rcpt in json.loads(line)["to"]:
                self.count[rcpt] += 1
                self.first.setdefault(rcpt, at)
        self.offset += complete


def post_json(client: Client, path: str, message: dict[str, Any], auth: str) -> int:
    body = json.dumps(message, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "Authorization": auth}
    for attempt in range(5):
        try:
            status, _ = client.post(path, body, headers)
        except (OSError, http.client.HTTPException):
            status = 0
        if status == 200:
            return status
        time.sleep(0.05 * 2**attempt)
    return status


def iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def background_load(
    port: int, auth: str, rate: float, stop: threading.Event, phase: LatencyPhase
) -> None:
    """`rate` shop events per second to /v1/batch, in 10 batches a second, until `stop`."""
    if rate <= 0:
        return
    generator = EventGenerator(seed=7, visitors=3_000, identified=0.3, id_prefix="bg-")
    client = Client(port, timeout=30)
    per_batch = max(1, round(rate / 10))
    interval = per_batch / rate
    began = next_at = time.perf_counter()
    try:
        while not stop.is_set():
            now = datetime.now(UTC)
            batch = [generator.event(now).message for _ in range(per_batch)]
            status = post_json(client, "/v1/batch", {"batch": batch, "sentAt": iso_now()}, auth)
            if status == 200:
                phase.background_sent += per_batch
            else:
                phase.background_failures += 1
            next_at += interval
            delay = next_at - time.perf_counter()
            if delay > 0:
                stop.wait(delay)
    finally:
        phase.background_seconds = time.perf_counter() - began
        client.close()


def latency_setup(count: int) -> tuple[Any, str, list[Any]]:
    from audience.models import Identity
    from tenants.services import api_key_create

    tenant, template, contacts = tenant_setup("bench-latency", count + 10, "lat-")
    # Ingestion finds a contact by its identities (a userId leads to it), as after a sign-up.
    Identity.objects.bulk_create(
        Identity(tenant=tenant, contact=c, kind=Identity.Kind.USER_ID, value=c.user_id)
        for c in contacts
    )
    graph = {
        "nodes": [
            {"key": "trigger", "kind": "trigger_event", "settings": {"event": TRIGGER_EVENT}},
            {
                "key": "email",
                "kind": "action_email",
                "settings": {"template": str(template.public_id), "category": "marketing"},
            },
        ],
        "edges": [{"source": "trigger", "port": "next", "target": "email"}],
    }
    journey_build(tenant, "Bench latency", graph, TRIGGER_EVENT)
    key = api_key_create(tenant=tenant, kind="write", name="bench")[1]
    return tenant, key, contacts


def run_latency_phase(args: argparse.Namespace, env: dict[str, str], var_dir: Path) -> LatencyPhase:
    phase = LatencyPhase(events=args.latency_events)
    tenant, key, contacts = latency_setup(args.latency_events)
    warm, timed = contacts[:10], contacts[10:]
    auth = basic_auth(key)
    broker_empty(args.broker_url)
    sink = MailSink(var_dir, "latency-sink")
    web = Gunicorn(
        SimpleNamespace(workers=args.web_workers, worker_class="sync", threads=1),
        env,
        var_dir / "gunicorn.log",
    )
    ingest = IngestWorker(env, var_dir / "ingest-worker.log", 1)
    engine = SenderWorker(env, var_dir, "engine", "engine-worker")
    email = SenderWorker(
        {**env, "EMAIL_URL": f"smtp://127.0.0.1:{sink.port}"}, var_dir, "email", "email-worker"
    )
    processes: list[ManagedProcess] = [sink, web, ingest, engine, email]
    phase.beat = beat_wanted(args.beat, "journeys.")
    if phase.beat:
        processes.append(Beat(env, var_dir))
    stop = threading.Event()
    loader: threading.Thread | None = None
    try:
        for process in processes:
            process.start()  # type: ignore[attr-defined]
        names = ["sink", "app server", "ingest worker", "engine worker", "email worker", "beat"]
        trees = {n: p.process.pid for n, p in zip(names, processes, strict=False) if p.process}
        watcher = SinkWatcher(sink.out)
        client = Client(web.port, timeout=30)

        def trigger(contact: Any) -> int:
            message = {
                "type": "track",
                "event": TRIGGER_EVENT,
                "userId": contact.user_id,
                "messageId": str(uuid.uuid4()),
                "timestamp": iso_now(),
                "properties": {"marker": uuid.uuid4().hex},
            }
            return post_json(client, "/v1/track", message, auth)

        log("latency: warming up the stack (10 trigger events, no load)")
        for contact in warm:
            trigger(contact)
        deadline = time.monotonic() + 120
        while len(watcher.first) < len(warm) and time.monotonic() < deadline:
            watcher.poll()
            time.sleep(0.05)
        if len(watcher.first) < len(warm):
            raise BenchError(
                f"warm-up: {len(watcher.first)} of {len(warm)} emails arrived within 120s\n"
                f"engine worker:\n{engine.log_tail()}\nemail worker:\n{email.log_tail()}"
            )
        log(
            f"latency: {args.background_rate:.0f} background events/s, then"
            f" {len(timed)} trigger events at {args.latency_rate:g}/s"
        )
        loader = threading.Thread(
            target=background_load,
            args=(web.port, auth, args.background_rate, stop, phase),
            daemon=True,
        )
        cpu_before = cpu_snapshot(trees)
        began = time.perf_counter()
        loader.start()
        time.sleep(3)  # the load is running before the first trigger
        sent: dict[str, float] = {}
        trigger_began = time.perf_counter()
        next_at = trigger_began
        for contact in timed:
            delay = next_at - time.perf_counter()
            while delay > 0:  # poll the sink while waiting for the next slot
                watcher.poll()
                time.sleep(min(delay, 0.01))
                delay = next_at - time.perf_counter()
            sent[contact.email] = time.time()
            status = trigger(contact)
            if status != 200:
                phase.failed_posts.append(f"{contact.user_id}: HTTP {status}")
            next_at += 1 / args.latency_rate
        phase.trigger_seconds = time.perf_counter() - trigger_began
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(e in watcher.first for e in sent):
            watcher.poll()
            time.sleep(0.01)
        stop.set()
        loader.join(timeout=30)
        phase.seconds = time.perf_counter() - began
        cpu_after = cpu_snapshot(trees)
        phase.cpu = {k: cpu_after[k] - cpu_before.get(k, 0.0) for k in cpu_after}
        time.sleep(2)  # a second email would come late
        watcher.poll()
        phase.latencies = [watcher.first[e] - t for e, t in sent.items() if e in watcher.first]
        phase.missing = sum(1 for e in sent if e not in watcher.first)
        phase.twice = sum(1 for e in sent if watcher.count[e] > 1)
        phase.stages = latency_stages(tenant, sent)
        for name, process in (("ingest worker", ingest), ("engine worker", engine)):
            phase.problems += [f"{name}: {p}" for p in process.problems()[:5]]
        phase.problems += [f"email worker: {p}" for p in email.problems()[:5]]
        client.close()
    finally:
        stop.set()
        if loader is not None:
            loader.join(timeout=30)
        for process in reversed(processes):
            process.stop()
    return phase


def latency_stages(tenant: Any, sent: dict[str, float]) -> dict[str, list[float]]:
    """Per trigger, from the database: posted → enrolled (Enrollment.entered_at), → decided
    (the outbox row's created_at) → handed to the SMTP server (sent_at)."""
    from journeys.models import Enrollment
    from messaging.models import Delivery

    by_contact = {
        c: e.timestamp()
        for c, e in Enrollment.objects.filter(tenant=tenant).values_list(
            "contact__email", "entered_at"
        )
    }
    decided: dict[str, float] = {}
    handed: dict[str, float] = {}
    for email_, created, sent_at in Delivery.objects.filter(tenant=tenant).values_list(
        "contact__email", "created_at", "sent_at"
    ):
        decided[email_] = created.timestamp()
        if sent_at:
            handed[email_] = sent_at.timestamp()
    stages: dict[str, list[float]] = {"enrolled": [], "decided": [], "sent": []}
    for email_, at in sent.items():
        for name, source in (("enrolled", by_contact), ("decided", decided), ("sent", handed)):
            if email_ in source:
                stages[name].append(source[email_] - at)
    return stages


# --- report --------------------------------------------------------------------------------------


def table(rows: list[tuple[str, str, str, str]]) -> None:
    header = ("measure", "result", "target", "verdict")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    print("  " + "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("  " + "  ".join("-" * w for w in widths))
    for row in rows:
        print("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def describe_engine(phase: EnginePhase) -> list[str]:
    per = phase.per_step_ms
    plural = "s" if phase.workers > 1 else ""
    other = max(
        0.0,
        phase.cpu.get("machine", 0.0) - phase.worker_cpu() - phase.cpu.get("PostgreSQL", 0.0),
    )
    lines = [
        f"  {phase.label}: {phase.steps:,} steps ({phase.enrollments:,} enrollments x 3) in"
        f" {phase.seconds:.1f}s = {phase.rate:,.0f} steps/s"
        f" ({phase.rate / STEPS_PER_ENROLLMENT:,.0f} enrollments/s)",
        f"    CPU per step: worker{plural} {per(phase.worker_cpu()):.3f} ms, their PostgreSQL"
        f" backend{plural}"
        f" {per(phase.backend_cpu()):.3f} ms, all of PostgreSQL"
        f" {per(phase.cpu.get('PostgreSQL', 0)):.3f} ms, whole machine"
        f" {per(phase.cpu.get('machine', 0)):.3f} ms",
        "    CPU (100% = one core): "
        + ", ".join(
            f"{name} {100 * seconds / phase.seconds:.0f}%"
            for name, seconds in (
                ("workers" if phase.workers > 1 else "worker", phase.worker_cpu()),
                ("their backends", phase.backend_cpu()),
                ("PostgreSQL", phase.cpu.get("PostgreSQL", 0.0)),
                ("machine", phase.cpu.get("machine", 0.0)),
            )
        )
        + f" of {os.cpu_count()} cores; anything else (other work on the machine)"
        f" {100 * other / phase.seconds if phase.seconds else 0:.0f}%",
    ]
    for i, result in enumerate(phase.results):
        if "wall" in result:
            lines.append(
                f"    worker {i + 1}: {result['calls']:,} advance_due calls (returned"
                f" {result['returned']:,} in all), {result['wall']:.1f}s, median call"
                f" {1000 * result['call_median']:.0f} ms,"
                f" longest {1000 * result['call_max']:.0f} ms"
            )
    lines.append(
        f"    step log: {phase.step_rows:,} rows ("
        + ", ".join(f"{k} {v:,}" for k, v in sorted(phase.step_kinds.items()))
        + f"); enrollments: {dict(phase.states)}; outbox rows {phase.deliveries:,}"
    )
    lines.append(
        f"    PostgreSQL: {phase.pg.get('commits', 0) - phase.monitor_samples:,} commits (the"
        " lock monitor's left out),"
        f" {phase.pg.get('rollbacks', 0):,} rollbacks, {phase.pg.get('deadlocks', 0)} deadlocks"
    )
    total = sum(phase.waits.values())
    if total:
        lines.append(
            f"    the workers' backends, {phase.monitor_samples:,} samples: "
            + ", ".join(f"{k} {100 * v / total:.0f}%" for k, v in phase.waits.most_common(6))
        )
    lines.append(
        f"    lock waits seen: {phase.lock_waits} (longest {phase.lock_longest_ms:.1f} ms)"
        + "".join(f"\n      {e}" for e in phase.lock_examples)
    )
    return lines


def print_report(
    args: argparse.Namespace,
    machine: str,
    engine: dict[str, EnginePhase],
    latency: LatencyPhase | None,
) -> None:
    rows: list[tuple[str, str, str, str]] = []
    one, two = engine.get("one worker"), engine.get("two workers")
    if one:
        rows.append(
            (
                "one worker: steps/s",
                f"{one.rate:,.0f}",
                f">= {TARGET_STEPS_PER_SECOND:,}",
                verdict(one.rate >= TARGET_STEPS_PER_SECOND),
            )
        )
        rows.append(
            ("  worker CPU per step", f"{one.per_step_ms(one.worker_cpu()):.3f} ms", "", "")
        )
    if two:
        rows.append(("two workers: steps/s", f"{two.rate:,.0f}", "", ""))
        rows.append(
            ("  workers' CPU per step", f"{two.per_step_ms(two.worker_cpu()):.3f} ms", "", "")
        )
    if one and two and one.steps and two.steps:
        ratio = two.per_step_ms(two.worker_cpu()) / one.per_step_ms(one.worker_cpu())
        rows.append(
            (
                "  two / one, CPU per step",
                f"{ratio:.3f}",
                f"<= {TARGET_CPU_RATIO:.2f}",
                verdict(ratio <= TARGET_CPU_RATIO),
            )
        )
        both = (two.worker_cpu() + two.backend_cpu()) / two.steps
        single = (one.worker_cpu() + one.backend_cpu()) / one.steps
        rows.append(
            (
                "  the same with their backends",
                f"{both / single:.3f}",
                f"<= {TARGET_CPU_RATIO:.2f}",
                verdict(both / single <= TARGET_CPU_RATIO),
            )
        )
        rows.append(("  speed-up (2 cores, shared)", f"{two.rate / one.rate:.2f}x", "", ""))
    if two:
        rows.append(
            (
                "  longest lock wait",
                f"{two.lock_longest_ms:.1f} ms ({two.lock_waits} waits)",
                f"<= {LOCK_WAIT_LIMIT_MS:.0f} ms",
                verdict(two.lock_longest_ms <= LOCK_WAIT_LIMIT_MS),
            )
        )
    if latency:
        rows.append(
            (
                "event → email p95",
                f"{latency.percentile(95):.3f} s",
                f"<= {TARGET_P95_SECONDS:.0f} s",
                verdict(latency.percentile(95) <= TARGET_P95_SECONDS and not latency.missing),
            )
        )
    print()
    print("Wayfarer journey engine benchmark")
    print(f"  machine:    {machine}")
    print("\n".join(conditions_lines(args.load_at_start, args.python_speed, "lower figures")))
    print(
        f"  parameters: {args.enrollments:,} enrollments per engine phase, advance_due(limit="
        f"{args.batch}), workers are plain processes calling journeys.engine.advance_due in a"
        f" loop; latency: {args.latency_events} trigger events at {args.latency_rate:g}/s,"
        f" {args.background_rate:g} background events/s, {args.web_workers} gunicorn workers"
    )
    print()
    table(rows)
    print()
    for phase in engine.values():
        print("\n".join(describe_engine(phase)))
    if two:
        print(
            "  On 2 cores two workers cannot go twice as fast: both workers and PostgreSQL share"
            " the same two cores (see the CPU lines). What shows that they do not get in each"
            " other's way is the CPU per step (the same as one worker's) and the lock waits"
            " (SKIP LOCKED: a worker never waits for another's batch)."
        )
    if latency:
        print("\n".join(describe_latency(latency)))
    checks = []
    for phase in engine.values():
        ok = ("FAILED", "OK")
        checks.append(
            f"{phase.label}: all {phase.enrollments:,} completed"
            f" {'OK' if phase.states.get('completed', 0) == phase.enrollments else 'FAILED'},"
            f" steps twice {phase.duplicate_steps} {ok[not phase.duplicate_steps]},"
            f" enrollments without exactly one email {phase.enrollments_without_one_delivery}"
            f" {'OK' if not phase.enrollments_without_one_delivery else 'FAILED'}"
        )
    if latency:
        bad = latency.missing or latency.twice or latency.failed_posts
        checks.append(
            f"latency: missing emails {latency.missing}, twice {latency.twice},"
            f" failed posts {len(latency.failed_posts)} {'FAILED' if bad else 'OK'}"
        )
    print("  checks:")
    for line in checks:
        print(f"    {line}")
    problems = [p for phase in engine.values() for p in phase.problems]
    problems += latency.problems if latency else []
    print(f"  problems: {'none' if not problems else ''}")
    for line in problems[:15]:
        print(f"    {line}")


def describe_latency(phase: LatencyPhase) -> list[str]:
    got = len(phase.latencies)
    lines = [
        f"  latency: {got} of {phase.events} emails arrived; event posted → email in the sink"
        f" p50 {phase.percentile(50):.3f} s, p95 {phase.percentile(95):.3f} s,"
        f" p99 {phase.percentile(99):.3f} s, max {max(phase.latencies, default=float('nan')):.3f} s"
        f" (beat {'running' if phase.beat else 'not running'})"
    ]
    for name, values in phase.stages.items():
        if values:
            lines.append(
                f"    posted → {name}: p50 {percentile(values, 50):.3f} s,"
                f" p95 {percentile(values, 95):.3f} s ({len(values)})"
            )
    if phase.background_seconds:
        lines.append(
            f"    background: {phase.background_sent:,} events in {phase.background_seconds:.1f}s"
            f" = {phase.background_sent / phase.background_seconds:,.0f}/s"
            f" ({phase.background_failures} failed posts)"
        )
    if phase.cpu and phase.seconds:
        lines.append(
            "    CPU (100% = one core): "
            + ", ".join(
                f"{name} {100 * seconds / phase.seconds:.0f}%"
                for name, seconds in sorted(phase.cpu.items())
            )
        )
    return lines


# --- main ----------------------------------------------------------------------------------------


def environment(args: argparse.Namespace, var_dir: Path) -> dict[str, str]:
    env = django_environment(args.database, var_dir)
    env["CELERY_BROKER_URL"] = args.broker_url
    env["SITE_URL"] = "https://wayfarer.bench.example"
    return env


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.load_at_start = os.getloadavg()[0]
    args.python_speed = python_speed()
    signal.signal(signal.SIGTERM, terminated)
    try:
        with django_on_bench_database(
            args.database, keep=args.keep, environment=partial(environment, args)
        ) as (env, var_dir):
            return measure(args, env, var_dir)
    except BenchError as exc:
        print(f"\nbench/engine.py: {exc}", file=sys.stderr)
        return 1


def measure(args: argparse.Namespace, env: dict[str, str], var_dir: Path) -> int:
    database: BenchDatabase = args.database
    machine = machine_description(database.server_version(), gunicorn=True)
    try:
        import journeys.engine  # noqa: F401
    except ImportError as exc:
        raise BenchError(f"journeys.engine is not there yet: {exc}") from None
    broker_empty(args.broker_url)
    engine: dict[str, EnginePhase] = {}
    latency: LatencyPhase | None = None
    for name in args.phase_list:
        if name in ("one", "two"):
            workers = 1 if name == "one" else 2
            label = "one worker" if name == "one" else "two workers"
            log(f"{label}: {args.enrollments:,} enrollments due at once")
            engine[label] = run_engine_phase(args, env, var_dir, label, workers, args.enrollments)
            log(f"{label}: {engine[label].rate:,.0f} steps/s")
        else:
            broker_empty(args.broker_url)  # the engine phases' sender wake-ups
            latency = run_latency_phase(args, env, var_dir)
    print_report(args, machine, engine, latency)
    if args.profile:
        log(f"profiling one worker: {args.profile_enrollments:,} enrollments")
        out = str(var_dir / "engine.prof")
        phase = run_engine_phase(
            args, env, var_dir, "profile", 1, args.profile_enrollments, profile_out=out
        )
        print(f"\n  profiled run: {phase.rate:,.0f} steps/s under cProfile")
        profile_report(out, args.profile_enrollments)
    broker_empty(args.broker_url)
    complete = all(p.complete for p in engine.values()) and (
        latency is None
        or not (latency.missing or latency.twice or latency.failed_posts or latency.problems)
    )
    return 0 if complete else 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        sys.exit(worker_main(sys.argv[2:]))
    sys.exit(main())
