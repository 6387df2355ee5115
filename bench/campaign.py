#!/usr/bin/env python
# ruff: noqa: T201  (a command-line report: printing is its job)
"""Campaign benchmark (issue 14): "send now" to a big segment end to end into a local SMTP sink,
against a bare smtplib loop; and the time to freeze a 1,000,000-contact segment into the outbox.

    .venv/bin/python bench/campaign.py [--quick] [--phases send,freeze] [--contacts N]
                                       [--freeze-contacts N] [--explain]

One run, on its own database (nothing touches the development data):

1. Recreates a PostgreSQL database (default `wayfarer_bench_campaign` on 127.0.0.1, dropped
   afterwards) and migrates it. Contacts and segment members are written by the database itself
   (`INSERT … SELECT generate_series`, not timed): contacts are not what this measures.
2. **Bare smtplib** (phase `send`): renders `--sample` real messages through the product (not
   timed) and sends N of them with `smtplib.sendmail` on one connection to a mail sink process
   (tests/mail_sink.py, aiosmtpd on loopback), each to its own recipient: what one Python client
   and this sink do at all on this machine, in this run.
3. **Campaign, send now** (phase `send`): a tenant with N contacts in a segment, an email
   campaign to it made with `campaign_create` (one variant, no throttle). With a fresh sink, one
   Celery worker of the `email` queue pointed at it and one of the `engine` queue (campaigns'
   tasks; `-P solo` each, as the Procfile runs them), plus beat when a campaigns task is in the
   beat schedule, the clock starts at `campaign_schedule` and stops when the sink has accepted
   the N-th message: the freeze (Recipient rows), the release into the outbox (Delivery rows),
   the senders' decisions (consent, caps, quiet hours) and the SMTP conversations are all inside.
   Then: every contact got exactly one message, every Recipient is released, the outbox says
   sent for all N.
4. **Raw insert** (phase `freeze`): a tenant with M contacts in a segment; the database's own
   speed for M outbox rows: one `INSERT INTO messaging_delivery … SELECT` from the segment's
   members, with the columns and the template snapshot a campaign's row has. The reference.
   Deleted again and VACUUMed before the next step (not timed).
5. **Freeze M** (phase `freeze`): `occurrence_start` (the audience frozen into Recipient rows;
   on PostgreSQL the same statement writes the outbox rows of everyone due at once), then
   `recipients_release` in a loop until it releases nothing (every Recipient has its queued
   Delivery row), in this process, with no sender running. Timed apart and together;
   the SQL statements Django ran are summed by their first words (where the time went), and
   `--explain` also prints PostgreSQL's plan (auto_explain, ANALYZE) of every statement slower
   than `--explain-ms`.
6. Prints the figures against the targets (MET / MISSED), stops the processes, drops the
   database (`--keep` keeps it and the temporary directory with the workers' logs).

Targets (issue 14): the campaign sends >= 70% of the bare loop's rate end to end; freezing
1,000,000 recipients into the outbox takes <= 60 s.

Exit status: 0 when the measurement completed, whether or not the targets were met; 1 when it
is partial (a recipient got no message or two, a row is not sent or not released: the report
says which check FAILED) or could not run; 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from common import (
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
from ingest import Beat, ManagedProcess, beat_wanted, broker_empty, cpu_snapshot
from send import (
    EMAIL_HTML,
    Arrivals,
    MailSink,
    SenderWorker,
    audience_create,
    render_sample,
    run_bare_email,
)

BIN = Path(sys.executable).parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/wayfarer_bench_campaign"
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/12"  # send.py and ingest.py use 14, engine.py 11

TARGET_RATIO_TO_BARE = 0.70
TARGET_FREEZE_SECONDS = 60.0
PHASES = ("send", "freeze")


# --- command line --------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Wayfarer campaign benchmark: send now end to end against bare smtplib, and"
        " freezing a big segment into the outbox against a raw INSERT … SELECT.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--contacts", type=int, default=None, help="the send phase's segment (default 100,000)"
    )
    parser.add_argument(
        "--freeze-contacts",
        type=int,
        default=None,
        help="the freeze phase's segment (default 1,000,000)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="10,000 contacts to send to, 100,000 to freeze"
    )
    parser.add_argument("--phases", default=",".join(PHASES), help="which phases, in order")
    parser.add_argument(
        "--release-limit",
        type=int,
        default=None,
        help="recipients_release(limit=…) per call in the freeze phase (default: the"
        " dispatcher's own chunk, else 10,000)",
    )
    parser.add_argument(
        "--sample", type=int, default=500, help="distinct rendered messages the bare loop cycles"
    )
    parser.add_argument(
        "--beat",
        choices=("auto", "on", "off"),
        default="auto",
        help="run Celery beat in the send phase (auto: when a campaigns task is scheduled)",
    )
    parser.add_argument(
        "--explain",
        action="store_true",
        help="freeze phase: print the plan (EXPLAIN ANALYZE, via auto_explain) of slow statements",
    )
    parser.add_argument(
        "--explain-ms", type=int, default=500, help="what --explain calls slow, in ms"
    )
    parser.add_argument(
        "--database-url",
        default=DEFAULT_DATABASE_URL,
        help="the bench database; it is DROPPED and recreated (host must be 127.0.0.1)",
    )
    parser.add_argument(
        "--broker-url",
        default=DEFAULT_BROKER_URL,
        help="Celery broker of the workers; the bench EMPTIES this Redis database first",
    )
    parser.add_argument("--max-seconds", type=float, default=1200, help="time limit per phase")
    parser.add_argument(
        "--keep", action="store_true", help="keep the bench database and temporary files"
    )
    args = parser.parse_args(argv)
    if args.contacts is None:
        args.contacts = 10_000 if args.quick else 100_000
    if args.freeze_contacts is None:
        args.freeze_contacts = 100_000 if args.quick else 1_000_000
    args.phase_list = [p.strip() for p in args.phases.split(",") if p.strip()]
    unknown = set(args.phase_list) - set(PHASES)
    if unknown or not args.phase_list:
        parser.error(f"--phases takes a list of {', '.join(PHASES)}")
    if min(args.contacts, args.freeze_contacts, args.sample) < 1:
        parser.error("--contacts, --freeze-contacts and --sample must be positive")
    if args.release_limit is not None and args.release_limit < 1:
        parser.error("--release-limit must be positive")
    try:
        args.database = BenchDatabase(args.database_url)
    except BenchError as exc:
        parser.error(str(exc))
    if not re.fullmatch(r"redis://(127\.0\.0\.1|localhost)(:\d+)?/\d+", args.broker_url):
        parser.error("--broker-url must be redis://127.0.0.1[:port]/<database number>")
    return args


# --- data, written by the database ---------------------------------------------------------------


def insert_select(
    model: Any, values: dict[str, str | tuple[str, list[Any]]], tail: str, params: list[Any]
) -> int:
    """`INSERT INTO <model's table> (every column) SELECT … <tail>`: `values` gives the SQL of
    some columns by column name (with its parameters, as `(sql, [params])`); every other column
    gets its field's default as a parameter (a uuid4 default becomes gen_random_uuid(), so that
    each row has its own). Returns the rows inserted. Django's defaults live in Python, not in
    the tables, hence the list."""
    from django.db import connection

    columns, expressions, arguments = [], [], []
    for f in model._meta.concrete_fields:
        if f.primary_key or getattr(f, "generated", False):
            continue
        columns.append(connection.ops.quote_name(f.column))
        value = values.get(f.column)
        if isinstance(value, tuple):
            expressions.append(value[0])
            arguments += value[1]
        elif value is not None:
            expressions.append(value)
        elif f.default is uuid.uuid4:
            expressions.append("gen_random_uuid()")
        else:
            default = f.get_default()
            if default is None and not f.null:
                raise BenchError(f"{model.__name__}.{f.name} needs a value in insert_select")
            expressions.append("%s")
            arguments.append(f.get_db_prep_save(default, connection))
    statement = (
        f"INSERT INTO {model._meta.db_table} ({', '.join(columns)})"
        f" SELECT {', '.join(expressions)} {tail}"
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, [*arguments, *params])
        return int(cursor.rowcount)


@dataclass
class Audience:
    tenant: Any
    template: Any
    segment: Any
    count: int
    slug: str

    def email(self, i: int) -> str:
        return f"{self.slug}-{i:07}@bench.example"


ALL_REACHABLE = {
    "type": "group",
    "match": "all",
    "negate": False,
    "children": [{"type": "reachable", "channel": "email", "reachable": True}],
}


def audience_seed(slug: str, count: int) -> Audience:
    """A tenant with a confirmed From address, an email template, `count` contacts (an address,
    a first name, a user id each) and a segment "Everyone reachable by email" holding them all
    (its rule matches them all; the members are written directly, without the `Segment Entered`
    events a refresh would record). Not timed."""
    from django.db import connection

    from messaging.services import sender_identity_update, template_save
    from segments.models import Segment, SegmentMembership
    from segments.rules import validate
    from tenants.services import tenant_create

    began = time.perf_counter()
    tenant = tenant_create(name=f"Bench {slug}", slug=slug)
    sender_identity_update(tenant=tenant, sender_email="news@shop.example", verified=True)
    template = template_save(
        tenant=tenant,
        name="Spring sale",
        channel="email",
        subject="{{ contact.first_name | default: 'Hello' }}, the spring sale is on",
        preheader="Tents, sleeping bags and boots: a third off until Sunday",
        html=EMAIL_HTML,
    )
    _contacts_insert(tenant.pk, slug, count)
    segment = Segment.objects.create(
        tenant=tenant,
        name="Everyone reachable by email",
        rules=validate(ALL_REACHABLE),
        member_count=count,
    )
    members = insert_select(
        SegmentMembership,
        {"tenant_id": "c.tenant_id", "segment_id": str(int(segment.pk)), "contact_id": "c.id"},
        "FROM audience_contact c WHERE c.tenant_id = %s",
        [tenant.pk],
    )
    if members != count:
        raise BenchError(f"the segment has {members:,} members, not {count:,}")
    from django.utils.timezone import now

    Segment.objects.filter(pk=segment.pk).update(refreshed_at=now())
    with connection.cursor() as cursor:
        verb = "ANALYZE" if connection.in_atomic_block else "VACUUM ANALYZE"
        for table in ("audience_contact", "segments_segmentmembership", "messaging_delivery"):
            cursor.execute(f"{verb} {table}")
        with contextlib.suppress(Exception):
            cursor.execute("CHECKPOINT")  # every phase starts from a clean WAL state
    log(f"seeded {slug}: {count:,} contacts in a segment in {time.perf_counter() - began:.1f}s")
    return Audience(tenant=tenant, template=template, segment=segment, count=count, slug=slug)


def _contacts_insert(tenant_id: int, slug: str, count: int) -> int:
    from audience.models import Contact

    made = insert_select(
        Contact,
        {
            "tenant_id": str(int(tenant_id)),
            "email": f"'{slug}-' || lpad(i::text, 7, '0') || '@bench.example'",
            "first_name": "'Name' || i",
            "user_id": "'u' || i",
        },
        "FROM generate_series(0, %s) AS i",
        [count - 1],
    )
    if made != count:
        raise BenchError(f"inserted {made:,} contacts, not {count:,}")
    return made


# --- campaigns, through the product's services ---------------------------------------------------


def campaign_make(audience: Audience, name: str, **fields: Any) -> Any:
    """A draft email campaign to the audience's segment: one variant, no throttle, no hold-out."""
    from campaigns import services

    return services.campaign_create(
        tenant=audience.tenant,
        name=name,
        channel="email",
        category="marketing",
        segments=[audience.segment],
        variants=[(audience.template, 100)],
        **fields,
    )


# --- the send phase ------------------------------------------------------------------------------


@dataclass
class SendPhase:
    label: str
    messages: int
    seconds: float = 0.0  # from campaign_schedule (or the first message) to the last accepted
    steady_rate: float = 0.0  # between 10% and 90% of the messages
    arrived: int = 0
    marks: dict[str, float] = field(default_factory=dict)  # seconds after the start
    exactly_once: bool = True
    all_sent: bool = True
    all_released: bool = True
    statuses: Counter[str] = field(default_factory=Counter)
    cpu: dict[str, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    beat: bool = False

    @property
    def rate(self) -> float:
        return self.arrived / self.seconds if self.seconds else 0.0


def _cpu_used(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: seconds - before.get(name, 0.0) for name, seconds in after.items()}


def run_bare(args: argparse.Namespace, var_dir: Path) -> SendPhase:
    log(f"rendering {args.sample} real messages for the bare loop")
    sample = render_sample(audience_create("bench-sample", args.sample, channel="email"), "email")
    broker_empty(args.broker_url)  # the samples' wake-ups: nothing is left to send
    log(f"bare smtplib: {args.contacts:,} messages on one connection")
    bare = run_bare_email(SimpleNamespace(emails=args.contacts), var_dir, sample)
    return SendPhase(
        label="bare smtplib",
        messages=args.contacts,
        seconds=bare.seconds,
        steady_rate=bare.steady_rate,
        arrived=bare.arrived,
        exactly_once=bare.exactly_once,
        cpu=bare.cpu,
    )


def run_campaign_send(args: argparse.Namespace, env: dict[str, str], var_dir: Path) -> SendPhase:
    from send import _settled, _watchdog, outbox_statuses

    from campaigns import services
    from campaigns.models import Occurrence, Recipient

    phase = SendPhase(label="campaign, send now", messages=args.contacts)
    audience = audience_seed("bench-campaign-send", args.contacts)
    campaign = campaign_make(audience, "Bench spring sale", schedule="now")
    broker_empty(args.broker_url)
    sink = MailSink(var_dir, "campaign-sink")
    sender = SenderWorker(
        {**env, "EMAIL_URL": f"smtp://127.0.0.1:{sink.port}"}, var_dir, "email", "email-worker"
    )
    engine = SenderWorker(env, var_dir, "engine", "engine-worker")
    processes: list[ManagedProcess] = [sink, sender, engine]
    phase.beat = beat_wanted(args.beat, "campaigns.")
    if phase.beat:
        processes.append(Beat(env, var_dir))
    try:
        for process in processes:
            process.start()  # type: ignore[attr-defined]
        names = ["sink", "email sender", "engine worker", "beat"]
        trees = {n: p.process.pid for n, p in zip(names, processes, strict=False) if p.process}
        alive = _watchdog(processes, audience.tenant)
        arrivals = Arrivals([sink.out])
        expected = args.contacts
        cpu_before = cpu_snapshot(trees)
        log(f"campaign: send now to {expected:,} contacts")
        began = time.perf_counter()
        services.campaign_schedule(campaign=campaign)
        phase.marks["scheduled"] = time.perf_counter() - began
        deadline = began + args.max_seconds
        progress_checked = 0.0
        got = 0
        while True:
            got = arrivals.count()
            moment = time.perf_counter()
            at = moment - began
            if got and "first message" not in phase.marks:
                phase.marks["first message"] = at
            for share in (0.1, 0.9):
                if got >= share * expected and f"{share:.0%}" not in phase.marks:
                    phase.marks[f"{share:.0%}"] = at
            if got >= expected or moment > deadline:
                break
            if moment - progress_checked >= 1.0:
                progress_checked = moment
                occurrence = Occurrence.objects.filter(campaign=campaign).first()
                if occurrence is not None and occurrence.recipient_count:
                    phase.marks.setdefault("frozen", at)
                    waiting = Recipient.objects.filter(
                        occurrence=occurrence, released=False, holdout=False
                    ).exists()
                    if not waiting:
                        phase.marks.setdefault("all released", at)
                alive()
            time.sleep(0.05)
        phase.seconds = time.perf_counter() - began
        phase.arrived = got
        if (
            "10%" in phase.marks
            and "90%" in phase.marks
            and phase.marks["90%"] > phase.marks["10%"]
        ):
            phase.steady_rate = 0.8 * expected / (phase.marks["90%"] - phase.marks["10%"])
        phase.cpu = _cpu_used(cpu_before, cpu_snapshot(trees))
        log(f"campaign: {got:,} in {phase.seconds:.1f}s; waiting for the outbox")
        phase.statuses = _settled(audience.tenant, timeout=30)
        received = arrivals.recipients()
        wanted = {audience.email(i) for i in range(expected)}
        phase.exactly_once = received.keys() == wanted and max(received.values(), default=0) == 1
        phase.all_sent = phase.statuses == {"sent": expected}
        if not phase.all_sent:
            phase.statuses = outbox_statuses(audience.tenant)
        recipients = Recipient.objects.filter(occurrence__campaign=campaign)
        phase.all_released = (
            recipients.count() == expected and not recipients.filter(released=False).exists()
        )
        phase.problems = [p for w in (sender, engine) for p in w.problems()]
    finally:
        for process in reversed(processes):
            process.stop()
    return phase


# --- the freeze phase ----------------------------------------------------------------------------


class StatementTimes:
    """Django's SQL statements of the phase by their first words: count and seconds."""

    SHAPE = re.compile(
        r"^\s*(INSERT INTO \S+|UPDATE \S+|DELETE FROM \S+|WITH\b.{0,60}|SELECT\b.*?\bFROM \S+|\S+)",
        re.IGNORECASE | re.DOTALL,
    )

    def __init__(self) -> None:
        self.seconds: defaultdict[str, float] = defaultdict(float)
        self.counts: Counter[str] = Counter()

    def __call__(self, execute, sql_text, params, many, context):  # type: ignore[no-untyped-def]
        began = time.perf_counter()
        try:
            return execute(sql_text, params, many, context)
        finally:
            match = self.SHAPE.match(sql_text)
            shape = " ".join((match.group(1) if match else sql_text[:60]).split())[:90]
            self.seconds[shape] += time.perf_counter() - began
            self.counts[shape] += 1


@dataclass
class FreezePhase:
    recipients: int
    raw_seconds: float = 0.0
    start_seconds: float = 0.0  # occurrence_start: the audience frozen into Recipient rows
    release_seconds: float = 0.0  # recipients_release until nothing is left
    release_calls: int = 0
    release_limit: int = 0
    frozen: int = 0
    deliveries: int = 0
    all_released: bool = True
    statements: StatementTimes = field(default_factory=StatementTimes)
    commits: int = 0
    commit_seconds: float = 0.0  # waiting for COMMIT (the WAL flush), apart from the statements
    plans: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return self.start_seconds + self.release_seconds


def raw_insert(audience: Audience) -> tuple[float, int]:
    """The reference: the audience's outbox rows as one INSERT … SELECT from the segment's
    members, with what a campaign's row holds (the template's snapshot, a per-contact key)."""
    from django.db import connection, transaction

    from messaging.models import Delivery

    content = Delivery._meta.get_field("content").get_db_prep_save(
        audience.template.snapshot(), connection
    )
    began = time.perf_counter()
    with transaction.atomic():
        rows = insert_select(
            Delivery,
            {
                "tenant_id": "m.tenant_id",
                "contact_id": "m.contact_id",
                "channel": "'email'",
                "category": "'marketing'",
                "template_id": str(int(audience.template.pk)),
                "content": ("%s", [content]),
                "source": "'campaign:bench-raw'",
                "idempotency_key": "'campaign:bench-raw:' || m.contact_id",
            },
            "FROM segments_segmentmembership m WHERE m.tenant_id = %s AND m.segment_id = %s",
            [audience.tenant.pk, audience.segment.pk],
        )
    return time.perf_counter() - began, rows


def raw_insert_remove(audience: Audience) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM messaging_delivery WHERE tenant_id = %s AND source = 'campaign:bench-raw'",
            [audience.tenant.pk],
        )
        cursor.execute("VACUUM ANALYZE messaging_delivery")
        with contextlib.suppress(Exception):
            cursor.execute("CHECKPOINT")


def explain_on(ms: int, plans: list[str]) -> Callable[[], None]:
    """auto_explain in this session, its plans sent to this client as NOTICEs (superuser)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("LOAD 'auto_explain'")
        for name, value in (
            ("log_min_duration", f"{ms}ms"),
            ("log_analyze", "on"),
            ("log_buffers", "on"),
            ("log_nested_statements", "on"),
            ("log_level", "notice"),
        ):
            cursor.execute(f"SET auto_explain.{name} = '{value}'")
    raw = connection.connection

    def handler(diagnostic: Any) -> None:
        if diagnostic.message_primary and "duration:" in diagnostic.message_primary:
            plans.append(diagnostic.message_primary)

    raw.add_notice_handler(handler)

    def off() -> None:
        raw.remove_notice_handler(handler)
        with connection.cursor() as cursor:
            cursor.execute("SET auto_explain.log_min_duration = -1")

    return off


def run_freeze(args: argparse.Namespace) -> FreezePhase:
    from django.db import connection
    from django.utils.timezone import now

    from campaigns import services
    from campaigns.models import Recipient
    from messaging.models import Delivery

    phase = FreezePhase(recipients=args.freeze_contacts)
    audience = audience_seed("bench-campaign-freeze", args.freeze_contacts)

    log(f"raw INSERT … SELECT of {audience.count:,} outbox rows (the reference)")
    phase.raw_seconds, rows = raw_insert(audience)
    if rows != audience.count:
        raise BenchError(f"the raw insert wrote {rows:,} rows, not {audience.count:,}")
    raw_insert_remove(audience)

    # Scheduled for tomorrow, so nothing starts it but this phase: occurrence_start now is
    # what the beat's tick (or "send now") calls when its time comes.
    campaign = campaign_make(
        audience, "Bench big freeze", schedule="at", send_at=now() + timedelta(days=1)
    )
    services.campaign_schedule(campaign=campaign)
    phase.release_limit = args.release_limit or _release_chunk()
    off = explain_on(args.explain_ms, phase.plans) if args.explain else None
    log(f"freeze: occurrence_start, then recipients_release(limit={phase.release_limit:,})")
    connection.ensure_connection()
    commit = connection._commit

    def timed_commit() -> None:
        began = time.perf_counter()
        try:
            commit()
        finally:
            phase.commits += 1
            phase.commit_seconds += time.perf_counter() - began

    connection._commit = timed_commit  # type: ignore[method-assign]
    try:
        with connection.execute_wrapper(phase.statements):
            began = time.perf_counter()
            occurrence = services.occurrence_start(campaign=campaign, key="once", at=now())
            phase.start_seconds = time.perf_counter() - began
            if occurrence is None:
                raise BenchError("occurrence_start started nothing (None)")
            log(f"freeze: {phase.start_seconds:.1f}s to freeze; releasing")
            began = time.perf_counter()
            while True:
                released = services.recipients_release(
                    occurrence=occurrence, limit=phase.release_limit
                )
                phase.release_calls += 1
                if not released:
                    break
                if time.perf_counter() - began > args.max_seconds:
                    raise BenchError(f"releasing took over {args.max_seconds:.0f}s")
            phase.release_seconds = time.perf_counter() - began
    finally:
        del connection._commit  # the class's own again
        if off is not None:
            off()
    recipients = Recipient.objects.filter(occurrence=occurrence)
    phase.frozen = recipients.count()
    phase.deliveries = Delivery.objects.filter(
        tenant=audience.tenant, source=f"campaign:{campaign.public_id}"
    ).count()
    phase.all_released = (
        phase.frozen == audience.count
        and phase.deliveries == audience.count
        and not recipients.filter(released=False).exists()
    )
    broker_empty(args.broker_url)  # the releases' wake-ups: no sender runs in this phase
    return phase


def _release_chunk() -> int:
    """The chunk the dispatcher's own release task takes per call (else 10,000)."""
    try:
        from campaigns import dispatch
    except ImportError:
        return 10_000
    for name in ("RELEASE_CHUNK", "RELEASE_LIMIT", "CHUNK"):
        value = getattr(dispatch, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return 10_000


# --- report --------------------------------------------------------------------------------------


OTHER_WORK_LIMIT = 0.25  # of a core: above it, a phase shared the machine with other work


def other_work(phase: SendPhase) -> float:
    """The share of a core the machine spent on processes other than this run's during the
    phase (its sink, workers, beat, this script; PostgreSQL counts as ours, other databases'
    backends included, so this is a lower bound)."""
    if not phase.seconds or "machine" not in phase.cpu:
        return 0.0
    ours = sum(sec for name, sec in phase.cpu.items() if name != "machine")
    return max(phase.cpu["machine"] - ours, 0.0) / phase.seconds


def table(rows: list[tuple[str, str, str, str]]) -> list[str]:
    header = ("measure", "result", "target", "verdict")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    lines = ["  " + "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  " + "  ".join("-" * w for w in widths))
    for row in rows:
        lines.append(
            "  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        )
    return lines


def print_report(
    args: argparse.Namespace,
    machine: str,
    sends: dict[str, SendPhase],
    freeze: FreezePhase | None,
) -> None:
    rows: list[tuple[str, str, str, str]] = []
    bare, campaign = sends.get("bare"), sends.get("campaign")
    if bare and campaign:
        rows.append(("bare smtplib messages/s", f"{bare.rate:,.0f}", "(the ceiling)", ""))
        rows.append(
            (
                "campaign send now, messages/s end to end",
                f"{campaign.rate:,.0f} (steady {campaign.steady_rate:,.0f})",
                "",
                "",
            )
        )
        ratio = campaign.rate / bare.rate if bare.rate else 0.0
        rows.append(
            (
                "  campaign / bare",
                f"{100 * ratio:.0f}%",
                f">= {100 * TARGET_RATIO_TO_BARE:.0f}%",
                verdict(ratio >= TARGET_RATIO_TO_BARE),
            )
        )
    if freeze:
        n = freeze.recipients
        rows.append(
            (
                f"raw INSERT … SELECT of {n:,} outbox rows",
                f"{freeze.raw_seconds:.1f} s ({n / freeze.raw_seconds:,.0f} rows/s)",
                "(the reference)",
                "",
            )
        )
        target = TARGET_FREEZE_SECONDS * n / 1_000_000
        rows.append(
            (
                f"freeze {n:,} recipients into the outbox",
                f"{freeze.seconds:.1f} s ({n / freeze.seconds:,.0f}/s)" if freeze.seconds else "-",
                f"<= {target:.0f} s" + ("" if n == 1_000_000 else " (60 s per 1M)"),
                verdict(0 < freeze.seconds <= target),
            )
        )
        rows.append(
            (
                "  of it: occurrence_start (freeze)",
                f"{freeze.start_seconds:.1f} s",
                "",
                "",
            )
        )
        rows.append(
            (
                "  of it: recipients_release (the rest)",
                f"{freeze.release_seconds:.1f} s",
                "",
                "",
            )
        )
        if freeze.raw_seconds:
            rows.append(
                ("  freeze / raw insert", f"{freeze.seconds / freeze.raw_seconds:.1f}x", "", "")
            )
    print()
    print("Wayfarer campaign benchmark")
    print(f"  machine:    {machine}")
    print("\n".join(conditions_lines(args.load_at_start, args.python_speed, "lower figures")))
    print(
        f"  parameters: phases {','.join(args.phase_list)}; send now to {args.contacts:,} contacts,"
        f" {args.sample} distinct messages in the bare loop; freeze {args.freeze_contacts:,}"
    )
    print()
    print("\n".join(table(rows)))
    shared = [p.label for p in sends.values() if other_work(p) > OTHER_WORK_LIMIT]
    if shared:
        print(
            f"  caution: other work took more than {100 * OTHER_WORK_LIMIT:.0f}% of a core during"
            f" {' and '.join(shared)}: the ratio compares phases run under different loads"
        )
    print()
    checks = []
    for phase in sends.values():
        print(
            f"  {phase.label}: {phase.arrived:,} of {phase.messages:,} in {phase.seconds:.1f}s"
            + (f"; steady {phase.steady_rate:,.0f}/s (10% to 90%)" if phase.steady_rate else "")
        )
        if phase.marks:
            marks = ", ".join(
                f"{k} {v:.1f}s" for k, v in sorted(phase.marks.items(), key=lambda kv: kv[1])
            )
            print(f"    timeline: {marks}")
        if phase.cpu and phase.seconds:
            shares = ", ".join(
                f"{name} {100 * sec / phase.seconds:.0f}%"
                for name, sec in sorted(phase.cpu.items())
                if name != "load generator"
            )
            print(f"    CPU (100% = one core): {shares}")
            if phase.arrived:
                per = ", ".join(
                    f"{name} {1000 * sec / phase.arrived:.2f} ms"
                    for name, sec in sorted(phase.cpu.items())
                    if name not in ("machine", "load generator")
                )
                print(f"    CPU per message: {per}")
            other = other_work(phase)
            print(
                f"    other work on the machine meanwhile: {100 * other:.0f}% of a core"
                " (the machine's busy time less this run's processes and all of PostgreSQL)"
            )
        if phase.label != "bare smtplib":
            print(f"    beat: {'running' if phase.beat else 'not running'}")
        checks.append(f"{phase.label} exactly once: {'OK' if phase.exactly_once else 'FAILED'}")
        if phase.statuses:
            checks.append(
                f"{phase.label} outbox all sent: {'OK' if phase.all_sent else 'FAILED'}"
                + ("" if phase.all_sent else f" {dict(phase.statuses)}")
            )
            checks.append(
                f"{phase.label} every recipient released once:"
                f" {'OK' if phase.all_released else 'FAILED'}"
            )
    if freeze:
        print(
            f"  freeze: occurrence_start {freeze.start_seconds:.1f}s, recipients_release"
            f" {freeze.release_seconds:.1f}s ({freeze.release_calls} calls of"
            f" {freeze.release_limit:,}); {freeze.frozen:,} recipients, {freeze.deliveries:,}"
            " outbox rows"
        )
        in_sql = sum(freeze.statements.seconds.values())
        print(
            f"    where the {freeze.seconds:.1f}s went: SQL statements {in_sql:.1f}s; COMMIT"
            f" {freeze.commit_seconds:.1f}s ({freeze.commits} commits: the deferred foreign-key"
            " checks of every row written, then the WAL flush); the rest (Python, wake-ups)"
            f" {freeze.seconds - in_sql - freeze.commit_seconds:.1f}s"
        )
        print("    SQL by statement (Django's cursors, this process):")
        top = sorted(freeze.statements.seconds.items(), key=lambda kv: kv[1], reverse=True)[:8]
        for shape, seconds in top:
            print(f"      {seconds:7.2f}s  {freeze.statements.counts[shape]:>6,}x  {shape}")
        checks.append(
            f"freeze every recipient released once: {'OK' if freeze.all_released else 'FAILED'}"
        )
        for plan in freeze.plans[:12]:
            print()
            print("    " + plan.replace("\n", "\n    "))
    print("  checks: " + "; ".join(checks))
    problems = [p for phase in sends.values() for p in phase.problems]
    print(f"  worker errors: {'none' if not problems else ''}")
    for line in problems[:10]:
        print(f"    {line}")


# --- main ----------------------------------------------------------------------------------------


def environment(args: argparse.Namespace, var_dir: Path) -> dict[str, str]:
    env = django_environment(args.database, var_dir)
    env["CELERY_BROKER_URL"] = args.broker_url
    env["SITE_URL"] = "https://wayfarer.bench.example"  # the messages' links; nothing answers
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
        print(f"\nbench/campaign.py: {exc}", file=sys.stderr)
        return 1


def measure(args: argparse.Namespace, env: dict[str, str], var_dir: Path) -> int:
    try:
        from campaigns import services

        missing = [
            name
            for name in (
                "campaign_create",
                "campaign_schedule",
                "occurrence_start",
                "recipients_release",
            )
            if not hasattr(services, name)
        ]
    except ImportError:
        missing = ["campaigns.services"]
    if missing:
        raise BenchError(f"the campaigns dispatch is not there yet: {', '.join(missing)}")
    machine = machine_description(args.database.server_version())
    broker_empty(args.broker_url)
    sends: dict[str, SendPhase] = {}
    freeze: FreezePhase | None = None
    for name in args.phase_list:
        if name == "send":
            sends["bare"] = run_bare(args, var_dir)
            sends["campaign"] = run_campaign_send(args, env, var_dir)
        else:
            freeze = run_freeze(args)
    print_report(args, machine, sends, freeze)
    broker_empty(args.broker_url)
    complete = all(p.exactly_once and p.all_sent and p.all_released for p in sends.values())
    complete = complete and (freeze is None or freeze.all_released)
    return 0 if complete else 1


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
    sys.exit(130)
