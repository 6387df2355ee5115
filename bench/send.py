#!/usr/bin/env python
# ruff: noqa: T201  (a command-line report: printing is its job)
"""Sending benchmark: how many emails and web pushes per second Wayfarer sends through its real
path (decide → outbox → Celery sender → SMTP / push service), against a bare client loop that
sends the same number of ready-made messages to the same kind of server.

    .venv/bin/python bench/send.py [--emails N] [--pushes N] [--workers 1,2] [--profile]

One run, on its own database (nothing touches the development data):

1. Recreates a PostgreSQL database (default `wayfarer_bench_send` on 127.0.0.1, dropped
   afterwards), runs `manage.py migrate` on it and creates one tenant per phase with
   `tenant_create` (each has its own VAPID keys), its contacts and a template.
2. **Bare SMTP**: renders a sample of real messages through the product (not timed), then sends
   N of them with `smtplib` on one connection to a mail sink process (tests/mail_sink.py,
   aiosmtpd on loopback), each to its own recipient: what one Python client and this sink do at
   all on this machine.
3. **Email, W workers** (for each W of --workers): starts W Celery workers of the `email` queue
   (`-P solo`, as the Procfile runs them), each with Django's SMTP backend pointed at a sink
   process of its own (a relay takes many connections at once; a single-threaded sink would
   measure itself), then decides N marketing emails with `deliveries_create` in chunks, as a
   campaign does (each commit wakes a sender through the broker), and times from the first
   decision to the last message accepted by the sinks. Then checks that every recipient got
   exactly one message and that the outbox says sent for all.
4. **Bare web push**: `pywebpush.webpush()` in a loop on one `requests.Session`, to the local
   push receiver (tests/messaging/push_receiver.py: it verifies the VAPID signature and decrypts
   every message), P subscriptions of fake browsers, with the payload a real message carries
   and a VAPID token signed once before the loop (a sender may reuse one for hours).
5. **Push, 1 worker**: the same through the real path (`deliveries_create`, a worker of the
   `push` queue).
6. Prints the figures against the targets (MET / MISSED), stops the processes and drops the
   database. `--profile` also sends a few thousand emails in this process under cProfile and
   shows where a message's time goes.

Targets: the real path with one worker sends >= 60% of the bare loop's rate; two workers send
>= 1.7x what one does.

Exit status: 0 when the measurement completed, whether or not the targets were met; 1 when it
is partial (a recipient got no message or two, a row is not sent; the report says which check
FAILED) or could not run; 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import cProfile
import email.policy
import json
import os
import pstats
import re
import signal
import smtplib
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
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
from ingest import ManagedProcess, broker_empty, cpu_snapshot, free_port

BIN = Path(sys.executable).parent  # .venv/bin when run as `.venv/bin/python bench/send.py`
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/wayfarer_bench_send"
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/14"  # CI uses 15

TARGET_RATIO_TO_BARE = 0.60
TARGET_SCALING = 1.7

EMAIL_HTML = (
    "<html><head><style>body { font-family: sans-serif; } p { color: #333; line-height: 1.5; }"
    " a.button { background: #0a6; color: #fff; padding: 8px 16px; }</style></head><body>"
    "<p>Hi {{ contact.first_name | default: 'there' }},</p>"
    "<p>Spring is here and so is our sale: tents, sleeping bags and boots, a third off until"
    " Sunday. {% if contact.email %}We kept your favourites for {{ contact.email }}.{% endif %}"
    "</p>"
    '<p><a class="button" href="https://shop.example/sale?utm_source=email">Shop the sale</a></p>'
    '<p><a href="https://shop.example/c/tents">Tents</a> · <a href="https://shop.example/c/boots">'
    'Boots</a> · <a href="https://shop.example/c/sleeping-bags">Sleeping bags</a></p>'
    "<p>Happy trails,<br>{{ tenant.name }}</p></body></html>"
)


# --- command line --------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Wayfarer sending benchmark: email and web push through the real path"
        " against bare client loops.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--emails", type=int, default=100_000, help="emails per phase")
    parser.add_argument("--pushes", type=int, default=20_000, help="web pushes per phase (0: none)")
    parser.add_argument(
        "--workers", default="1,2", help="email phases: Celery sender workers in each, in order"
    )
    parser.add_argument(
        "--push-workers", type=int, default=1, help="Celery workers of the push phase"
    )
    parser.add_argument(
        "--decide-chunk",
        type=int,
        default=2_000,
        help="decisions per deliveries_create call (each commit wakes one sender task)",
    )
    parser.add_argument(
        "--sample", type=int, default=500, help="distinct rendered messages the bare loop cycles"
    )
    parser.add_argument(
        "--database-url",
        default=DEFAULT_DATABASE_URL,
        help="the bench database; it is DROPPED and recreated (host must be 127.0.0.1)",
    )
    parser.add_argument(
        "--broker-url",
        default=DEFAULT_BROKER_URL,
        help="Celery broker of the senders; the bench EMPTIES this Redis database first",
    )
    parser.add_argument("--max-seconds", type=float, default=1200, help="time limit per phase")
    parser.add_argument(
        "--profile", action="store_true", help="also profile the email path in-process (cProfile)"
    )
    parser.add_argument(
        "--profile-messages", type=int, default=3_000, help="emails of the profiling pass"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the bench database and temporary files"
    )
    args = parser.parse_args(argv)
    try:
        args.worker_counts = [int(w) for w in args.workers.split(",")]
    except ValueError:
        parser.error("--workers is a comma-separated list of numbers, e.g. 1,2")
    if not args.worker_counts or min(args.worker_counts) < 1 or args.push_workers < 1:
        parser.error("worker counts must be positive")
    if args.emails < 1 or args.pushes < 0 or args.decide_chunk < 1 or args.sample < 1:
        parser.error("--emails, --decide-chunk and --sample must be positive")
    try:
        args.database = BenchDatabase(args.database_url)
    except BenchError as exc:
        parser.error(str(exc))
    if not re.fullmatch(r"redis://(127\.0\.0\.1|localhost)(:\d+)?/\d+", args.broker_url):
        parser.error("--broker-url must be redis://127.0.0.1[:port]/<database number>")
    return args


# --- processes -----------------------------------------------------------------------------------


class MailSink(ManagedProcess):
    """tests/mail_sink.py as its own process: one JSON line per accepted message."""

    def __init__(self, var_dir: Path, name: str) -> None:
        self.port = free_port()
        self.out = var_dir / f"{name}.jsonl"
        self.out.touch()
        command = [sys.executable, "-m", "tests.mail_sink", "--port", str(self.port)]
        command += ["--out", str(self.out)]
        super().__init__(command, dict(os.environ), var_dir / f"{name}.log")

    def start(self, timeout: float = 30) -> None:
        self.spawn()
        _wait_for_line(self, "listening", timeout)


class SenderWorker(ManagedProcess):
    """A Celery worker of one sending queue, solo pool (one process), as the Procfile runs it."""

    def __init__(self, env: dict[str, str], var_dir: Path, queue: str, name: str) -> None:
        command = [
            str(BIN / "celery"), "-A", "config", "worker", "-Q", queue, "-P", "solo",
            "-n", f"bench-{name}-{uuid.uuid4().hex[:6]}@%h", "-l", "info",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]  # fmt: skip
        super().__init__(command, env, var_dir / f"{name}.log")

    def start(self, timeout: float = 60) -> None:
        self.spawn()
        _wait_for_line(self, " ready.", timeout)

    def problems(self) -> list[str]:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return [ln for ln in text.splitlines() if "ERROR/" in ln or "CRITICAL/" in ln]


def _wait_for_line(process: ManagedProcess, text: str, timeout: float) -> None:
    assert process.process is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.process.poll() is not None:
            raise BenchError(f"{process.log_path.stem} exited at start:\n{process.log_tail()}")
        if text in process.log_path.read_text(errors="replace"):
            return
        time.sleep(0.1)
    raise BenchError(f"{process.log_path.stem} was not ready within {timeout:.0f}s")


class Arrivals:
    """Counts the sinks' lines as they are appended (reads only what is new each time)."""

    def __init__(self, paths: Iterable[Path]) -> None:
        self.offsets = dict.fromkeys(paths, 0)
        self.total = 0

    def count(self) -> int:
        for path, offset in self.offsets.items():
            with path.open("rb") as fh:
                fh.seek(offset)
                new = fh.read()
            complete = new.rfind(b"\n") + 1  # a line being written counts once it is whole
            self.total += new.count(b"\n", 0, complete)
            self.offsets[path] = offset + complete
        return self.total

    def recipients(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        for path in self.offsets:
            for line in path.read_text().splitlines():
                counts.update(json.loads(line)["to"])
        return counts


# --- data ----------------------------------------------------------------------------------------


@dataclass
class Audience:
    tenant: Any
    template: Any
    contacts: list[Any]


def audience_create(slug: str, count: int, *, channel: str) -> Audience:
    """A tenant with `count` contacts and a template of `channel` (not timed)."""
    from audience.models import Contact
    from messaging.models import Template
    from messaging.services import sender_identity_update, template_save
    from tenants.services import tenant_create

    tenant = tenant_create(name=f"Bench {slug}", slug=slug)
    sender_identity_update(tenant=tenant, sender_email="news@shop.example")
    fields: dict[str, Any]
    if channel == "email":
        fields = {
            "subject": "{{ contact.first_name | default: 'Hello' }}, the spring sale is on",
            "preheader": "Tents, sleeping bags and boots: a third off until Sunday",
            "html": EMAIL_HTML,
        }
    else:
        fields = {
            "title": "{{ contact.first_name | default: 'Hello' }}, the sale is on",
            "body": "A third off tents and boots until Sunday.",
            "target_url": "https://shop.example/sale",
            "icon_url": "https://shop.example/icon.png",
        }
    template = template_save(tenant=tenant, name="Spring sale", channel=channel, **fields)
    assert isinstance(template, Template)
    contacts = Contact.objects.bulk_create(
        (
            Contact(
                tenant=tenant,
                email=f"{slug}-{i:06}@bench.example",
                first_name=f"Name{i}",
                user_id=f"u{i}",
            )
            for i in range(count)
        ),
        batch_size=5_000,
    )
    return Audience(tenant=tenant, template=template, contacts=contacts)


def decide_all(audience: Audience, chunk: int) -> float:
    """Decide one message per contact through deliveries_create, `chunk` at a time (each
    commit wakes a sender); returns the seconds it took."""
    from messaging.services import Decision, deliveries_create

    began = time.perf_counter()
    for start in range(0, len(audience.contacts), chunk):
        part = audience.contacts[start : start + chunk]
        created = deliveries_create(
            tenant=audience.tenant,
            template=audience.template,
            source="campaign:bench",
            decisions=[Decision(c, f"bench:{c.pk}") for c in part],
        )
        if created != len(part):
            raise BenchError(f"deliveries_create decided {created} of {len(part)}")
    return time.perf_counter() - began


def outbox_statuses(tenant: Any) -> Counter[str]:
    from messaging.models import Delivery

    return Counter(Delivery.objects.filter(tenant=tenant).values_list("status", flat=True))


# --- phases --------------------------------------------------------------------------------------


@dataclass
class Phase:
    label: str
    messages: int
    seconds: float = 0.0  # from the first decision (or message) to the last one accepted
    decide_seconds: float = 0.0
    steady_rate: float = 0.0  # between 10% and 90% of the messages
    arrived: int = 0
    exactly_once: bool = True
    all_sent: bool = True
    statuses: Counter[str] = field(default_factory=Counter)
    cpu: dict[str, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.arrived / self.seconds if self.seconds else 0.0


def _cpu_used(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds per kind of process (`sender 1` and `sender 2` add up to `senders`)."""
    used: Counter[str] = Counter()
    for name, seconds in after.items():
        used[re.sub(r" \d+$", "s", name)] += seconds - before.get(name, 0.0)
    return dict(used)


def _watch(
    count: Callable[[], int],
    expected: int,
    began: float,
    deadline: float,
    alive: Callable[[], None],
) -> tuple[float, float, int]:
    """Polls `count` until it reaches `expected`; returns (seconds, steady rate, count)."""
    marks: dict[float, float] = {}
    got = 0
    while True:
        got = count()
        moment = time.perf_counter()
        for share in (0.1, 0.9):
            if got >= share * expected and share not in marks:
                marks[share] = moment
        if got >= expected or moment > deadline:
            break
        alive()
        time.sleep(0.05)
    seconds = time.perf_counter() - began
    steady = 0.0
    if 0.1 in marks and 0.9 in marks and marks[0.9] > marks[0.1]:
        steady = 0.8 * expected / (marks[0.9] - marks[0.1])
    return seconds, steady, got


def render_sample(audience: Audience, channel: str) -> list[bytes]:
    """Real messages of the product (email: the bytes on the wire; push: the JSON payload before
    encryption), claimed and built as a sender does, then set aside as skipped so that no
    sender ever sends them."""
    from django.utils.timezone import now

    from messaging.context import contexts_build
    from messaging.models import Delivery
    from messaging.outbox import SENDERS, claim

    decide_all(audience, chunk=len(audience.contacts))
    token = uuid.uuid4()
    batch = claim(channel=channel, limit=len(audience.contacts), token=token, at=now())
    contexts = contexts_build(batch)
    sender = SENDERS[channel]()
    prepared = [sender.prepare(d, contexts[d.pk]) for d in batch]
    sender.close()
    Delivery.objects.filter(claim_token=token).update(
        status=Delivery.Status.SKIPPED, reason="bench sample: built, never sent", claim_token=None
    )
    if channel == "email":
        return [p.message.message(policy=email.policy.SMTP).as_bytes() for p in prepared]
    return [p.payload for p in prepared]


def run_bare_email(args: argparse.Namespace, var_dir: Path, sample: list[bytes]) -> Phase:
    from django.conf import settings

    phase = Phase(label="bare smtplib", messages=args.emails)
    sink = MailSink(var_dir, "bare-sink")
    sink.start()
    assert sink.process is not None
    try:
        from_email = settings.DEFAULT_FROM_EMAIL
        recipients = [f"bare-{i:06}@bench.example" for i in range(args.emails)]
        arrivals = Arrivals([sink.out])
        trees = {"sink 1": sink.process.pid}
        cpu_before = cpu_snapshot(trees)
        began = time.perf_counter()
        client = smtplib.SMTP("127.0.0.1", sink.port, timeout=30)
        for i, rcpt in enumerate(recipients):
            client.sendmail(from_email, [rcpt], sample[i % len(sample)])
        client.quit()
        phase.seconds, phase.steady_rate, phase.arrived = _watch(
            arrivals.count, args.emails, began, time.perf_counter() + 30, lambda: None
        )
        phase.cpu = _cpu_used(cpu_before, cpu_snapshot(trees))
        phase.steady_rate = phase.rate  # one loop, no start-up to leave out
        received = arrivals.recipients()
        phase.exactly_once = received.keys() == set(recipients) and max(received.values()) == 1
    finally:
        sink.stop()
    return phase


def run_email(
    args: argparse.Namespace, env: dict[str, str], var_dir: Path, workers: int, audience: Audience
) -> Phase:
    phase = Phase(
        label=f"email, {workers} worker{'s' if workers > 1 else ''}", messages=args.emails
    )
    sinks = [MailSink(var_dir, f"sink-{workers}w-{i}") for i in range(workers)]
    senders = [
        SenderWorker(
            {**env, "EMAIL_URL": f"smtp://127.0.0.1:{sink.port}"},
            var_dir,
            "email",
            f"email-{workers}w-{i}",
        )
        for i, sink in enumerate(sinks)
    ]
    try:
        for process in [*sinks, *senders]:
            process.start()
        trees = {f"sink {i}": s.process.pid for i, s in enumerate(sinks) if s.process}
        trees |= {f"sender {i}": w.process.pid for i, w in enumerate(senders) if w.process}

        alive = _watchdog([*sinks, *senders], audience.tenant)
        arrivals = Arrivals(s.out for s in sinks)
        cpu_before = cpu_snapshot(trees)
        began = time.perf_counter()
        phase.decide_seconds = decide_all(audience, args.decide_chunk)
        phase.seconds, phase.steady_rate, phase.arrived = _watch(
            arrivals.count, args.emails, began, began + args.max_seconds, alive
        )
        phase.cpu = _cpu_used(cpu_before, cpu_snapshot(trees))
        log(f"{phase.label}: {phase.arrived:,} in {phase.seconds:.1f}s; waiting for the outbox")
        phase.statuses = _settled(audience.tenant, timeout=30)
        received = arrivals.recipients()
        expected = {c.email for c in audience.contacts}
        phase.exactly_once = received.keys() == expected and max(received.values()) == 1
        phase.all_sent = phase.statuses == {"sent": args.emails}
        phase.problems = [p for w in senders for p in w.problems()]
    finally:
        for process in [*senders, *sinks]:
            process.stop()
    return phase


def _watchdog(processes: list[ManagedProcess], tenant: Any) -> Callable[[], None]:
    """Raises BenchError when a process died or a message failed (the phase can never
    complete: say why now rather than at --max-seconds)."""
    from audience.models import Event
    from messaging import outcomes
    from messaging.models import Delivery

    # What a failed or skipped message leaves: its event, found through the events' (tenant,
    # name, time) index. Asking the outbox for such rows would scan it every two seconds.
    settled_badly = Event.objects.filter(
        tenant=tenant,
        name__in=[
            outcomes.EMAIL_FAILED,
            outcomes.EMAIL_BOUNCED,
            outcomes.PUSH_FAILED,
            outcomes.SKIPPED,
        ],
    )
    checked = [time.monotonic()]

    def alive() -> None:
        for process in processes:
            if process.process is None or process.process.poll() is not None:
                code = process.process.poll() if process.process else None
                raise BenchError(
                    f"{process.log_path.stem} exited (code {code}):\n{process.log_tail()}"
                )
        if time.monotonic() - checked[0] < 2:
            return
        checked[0] = time.monotonic()
        if settled_badly.exists():
            final = Delivery.objects.filter(tenant=tenant, status__in=["failed", "skipped"])
            reasons = Counter(final.values_list("reason", flat=True)[:1000])
            raise BenchError(
                "messages failed or were skipped, the phase cannot complete:"
                f" {dict(outbox_statuses(tenant))}; reasons: {reasons.most_common(3)}"
            )

    return alive


def _settled(tenant: Any, timeout: float) -> Counter[str]:
    """The outbox's statuses once no row of the tenant is queued or being sent (or at the
    timeout): the last batch's outcomes are written just after its messages left."""
    deadline = time.monotonic() + timeout
    while True:
        statuses = outbox_statuses(tenant)
        if not (statuses["queued"] or statuses["sending"]) or time.monotonic() > deadline:
            return statuses
        time.sleep(0.2)


# --- web push ------------------------------------------------------------------------------------


class PushReceiverProcess(ManagedProcess):
    """tests/messaging/push_receiver.py's server in a process of its own (it verifies and
    decrypts every message: it must not take the CPU of the process it measures), with `count`
    fake browsers subscribed with the tenant's VAPID key. Writes the subscriptions as JSON and
    one line per request it answered."""

    def __init__(self, var_dir: Path, name: str, key: str, count: int) -> None:
        self.subscriptions_path = var_dir / f"{name}-subscriptions.json"
        self.out = var_dir / f"{name}.jsonl"
        self.out.touch()
        command = [
            sys.executable, str(Path(__file__).resolve()), "push-receiver", "--key", key,
            "--count", str(count), "--subscriptions", str(self.subscriptions_path),
            "--out", str(self.out),
        ]  # fmt: skip
        super().__init__(command, dict(os.environ), var_dir / f"{name}.log")

    def start(self, timeout: float = 120) -> None:
        self.spawn()
        _wait_for_line(self, "listening", timeout)

    def subscriptions(self) -> list[dict[str, Any]]:
        return json.loads(self.subscriptions_path.read_text())


def serve_push_receiver(argv: list[str]) -> int:
    """The push receiver process (`bench/send.py push-receiver …`)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--key", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--subscriptions", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from tests.messaging.push_receiver import Attempt, PushReceiver

    out = open(args.out, "a", buffering=1)  # noqa: SIM115  (lives as long as the server)

    class CountingReceiver(PushReceiver):
        def _answer(
            self, path_id: str, headers: dict[str, str], body: bytes, peer: tuple[str, int]
        ) -> Attempt:
            attempt = super()._answer(path_id, headers, body, peer)
            line = json.dumps({"endpoint": attempt.endpoint, "status": attempt.status})
            with self.lock:
                self.attempts.clear()  # counted in the file; 20,000 plaintexts need not stay
                out.write(f"{line}\n")
                if attempt.status != 201:
                    print(f"answered {attempt.status}: {attempt.error}", flush=True)
            return attempt

    with CountingReceiver() as receiver:
        subscriptions = [
            receiver.subscribe(application_server_key=args.key).to_json() for _ in range(args.count)
        ]
        Path(args.subscriptions).write_text(json.dumps(subscriptions))
        print(f"push receiver listening on {receiver.origin}", flush=True)
        threading.Event().wait()
    return 0


class PushArrivals(Arrivals):
    """The receiver's lines: requests it answered; `taken()` counts 201s by endpoint."""

    def taken(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        for path in self.offsets:
            for line in path.read_text().splitlines():
                answer = json.loads(line)
                if answer["status"] == 201:
                    counts[answer["endpoint"]] += 1
        return counts


def push_subscriptions_create(audience: Audience, subscriptions: list[dict[str, Any]]) -> None:
    """One browser subscription per contact, as the tracker's subscribe call stores them."""
    from messaging.models import PushSubscription

    PushSubscription.objects.bulk_create(
        (
            PushSubscription(
                tenant=audience.tenant,
                contact=contact,
                endpoint=s["endpoint"],
                p256dh=s["keys"]["p256dh"],
                auth=s["keys"]["auth"],
                user_agent="bench",
            )
            for contact, s in zip(audience.contacts, subscriptions, strict=True)
        ),
        batch_size=5_000,
    )


def run_bare_push(args: argparse.Namespace, var_dir: Path, payloads: list[bytes]) -> Phase:
    from py_vapid import Vapid
    from pywebpush import webpush

    from messaging.selectors import sender_identity_get
    from tenants.services import tenant_create

    phase = Phase(label="bare pywebpush", messages=args.pushes)
    tenant = tenant_create(name="Bench push bare", slug="bench-push-bare")
    identity = sender_identity_get(tenant=tenant)
    receiver = PushReceiverProcess(var_dir, "push-bare", identity.vapid_public_key, args.pushes)
    receiver.start()
    assert receiver.process is not None
    try:
        subscriptions = receiver.subscriptions()
        vapid = Vapid.from_raw(identity.vapid_private_key.encode())
        arrivals = PushArrivals([receiver.out])
        trees = {"receiver 1": receiver.process.pid}
        cpu_before = cpu_snapshot(trees)
        # Signed once, as a sender may reuse a VAPID token for one push service for hours
        # (the product does): the loop only encrypts and POSTs.
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(subscriptions[0]["endpoint"]))
        claims = {"sub": "mailto:news@shop.example", "aud": origin, "exp": int(time.time()) + 3600}
        vapid_headers = dict(vapid.sign(claims))
        session = requests.Session()
        began = time.perf_counter()
        refused = 0
        for i, subscription in enumerate(subscriptions):
            response = webpush(
                subscription,
                data=payloads[i % len(payloads)],  # type: ignore[arg-type]
                headers=dict(vapid_headers),
                ttl=86_400,
                timeout=10,
                requests_session=session,
            )
            refused += response.status_code != 201  # type: ignore[union-attr]
        session.close()
        phase.seconds, phase.steady_rate, phase.arrived = _watch(
            arrivals.count, args.pushes, began, time.perf_counter() + 30, lambda: None
        )
        phase.cpu = _cpu_used(cpu_before, cpu_snapshot(trees))
        phase.steady_rate = phase.rate
        taken = arrivals.taken()
        expected = {s["endpoint"] for s in subscriptions}
        phase.exactly_once = not refused and taken.keys() == expected and max(taken.values()) == 1
    finally:
        receiver.stop()
    return phase


def run_push(args: argparse.Namespace, env: dict[str, str], var_dir: Path) -> Phase:
    from messaging.selectors import sender_identity_get

    workers = args.push_workers
    phase = Phase(label=f"push, {workers} worker{'s' if workers > 1 else ''}", messages=args.pushes)
    audience = audience_create("bench-push", args.pushes, channel="push")
    tenant = audience.tenant
    key = sender_identity_get(tenant=tenant).vapid_public_key
    receiver = PushReceiverProcess(var_dir, "push-real", key, args.pushes)
    senders = [SenderWorker(env, var_dir, "push", f"push-{workers}w-{i}") for i in range(workers)]
    try:
        receiver.start()
        subscriptions = receiver.subscriptions()
        push_subscriptions_create(audience, subscriptions)
        for sender in senders:
            sender.start()
        trees = {"receiver 1": receiver.process.pid} if receiver.process else {}
        trees |= {f"sender {i}": w.process.pid for i, w in enumerate(senders) if w.process}

        alive = _watchdog([receiver, *senders], tenant)
        arrivals = PushArrivals([receiver.out])
        cpu_before = cpu_snapshot(trees)
        began = time.perf_counter()
        phase.decide_seconds = decide_all(audience, args.decide_chunk)
        phase.seconds, phase.steady_rate, phase.arrived = _watch(
            arrivals.count, args.pushes, began, began + args.max_seconds, alive
        )
        phase.cpu = _cpu_used(cpu_before, cpu_snapshot(trees))
        log(f"{phase.label}: {phase.arrived:,} in {phase.seconds:.1f}s; waiting for the outbox")
        phase.statuses = _settled(tenant, timeout=30)
        taken = arrivals.taken()
        expected = {s["endpoint"] for s in subscriptions}
        phase.exactly_once = taken.keys() == expected and max(taken.values()) == 1
        phase.all_sent = phase.statuses == {"sent": args.pushes}
        phase.problems = [p for w in senders for p in w.problems()]
    finally:
        for process in [*senders, receiver]:
            process.stop()
    return phase


# --- profiling -----------------------------------------------------------------------------------

# Where a message's time goes on the sender: (label, file, function) in the cProfile data.
COMMON_HOTSPOTS = [
    ("whole run (deliveries_send)", "messaging/outbox.py", "deliveries_send"),
    ("  claim (one statement per batch)", "messaging/outbox.py", "claim"),
    ("  policy.decide", "messaging/policy.py", "decide"),
    ("  contexts_build", "messaging/context.py", "contexts_build"),
]
FINISH_HOTSPOTS = [
    ("  _finish (outcomes, events)", "messaging/outbox.py", "_finish"),
    ("    outcomes.record", "messaging/outcomes.py", "record"),
]
HOTSPOTS = {
    "email": [
        *COMMON_HOTSPOTS,
        ("  prepare (most of it while the sink answers)", "messaging/email_channel.py", "prepare"),
        ("    render_email (Liquid, CSS inlining)", "messaging/rendering.py", "render_email"),
        ("    email_build (links, headers)", "messaging/mail.py", "email_build"),
        ("    smtp_data (the message's bytes)", "messaging/mail.py", "smtp_data"),
        ("  send_group (with what it prepares)", "messaging/email_channel.py", "send_group"),
        ("    handover stamp (one UPDATE per group)", "messaging/outbox.py", "handover"),
        *FINISH_HOTSPOTS,
    ],
    "push": [
        *COMMON_HOTSPOTS,
        ("  prepare (most of it while services answer)", "messaging/push.py", "prepare"),
        ("    render_push (Liquid)", "messaging/rendering.py", "render_push"),
        ("    encrypt (pywebpush, aes128gcm)", "pywebpush/__init__.py", "encode"),
        ("  send_group (with what it prepares)", "messaging/push.py", "send_group"),
        ("    VAPID headers", "messaging/push.py", "headers_for"),
        ("    handover stamp (one UPDATE per group)", "messaging/outbox.py", "handover"),
        ("    the POSTs (a group at once)", "messaging/push_http.py", "post_all"),
        *FINISH_HOTSPOTS,
    ],
}


class QueryCounter:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute, sql_text, params, many, context):  # type: ignore[no-untyped-def]
        self.count += 1
        return execute(sql_text, params, many, context)


def _cumulative(stats: pstats.Stats, path_suffix: str, function: str) -> tuple[int, float]:
    calls, seconds = 0, 0.0
    for (path, _line, name), (_cc, nc, _tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        if name == function and path.endswith(path_suffix):
            calls, seconds = calls + nc, seconds + ct
    return calls, seconds


def profile_channel(args: argparse.Namespace, var_dir: Path, channel: str) -> None:
    """Sends --profile-messages messages of `channel` in this process under cProfile, to a
    sink or push receiver process, and prints the time per message by step and the functions
    with the most own time."""
    from django.conf import settings
    from django.db import connection

    from messaging.outbox import deliveries_send
    from messaging.selectors import sender_identity_get

    count = args.profile_messages
    audience = audience_create(f"bench-profile-{channel}", count, channel=channel)
    warm = audience_create(f"bench-profile-{channel}-warm", 200, channel=channel)
    servers: list[ManagedProcess] = []
    if channel == "email":
        sink = MailSink(var_dir, "profile-sink")
        servers.append(sink)
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    else:
        for group in (warm, audience):
            key = sender_identity_get(tenant=group.tenant).vapid_public_key
            servers.append(
                PushReceiverProcess(
                    var_dir, f"receiver-{group.tenant.slug}", key, len(group.contacts)
                )
            )
    try:
        for server in servers:
            server.start()
        if channel == "push":
            for group, receiver in zip((warm, audience), servers, strict=True):
                assert isinstance(receiver, PushReceiverProcess)
                push_subscriptions_create(group, receiver.subscriptions())
        decide_all(warm, chunk=200)
        deliveries_send(channel=channel, seconds=600)  # imports, caches, connections
        decide_all(audience, chunk=count)
        queries = QueryCounter()
        profiler = cProfile.Profile()
        began = time.perf_counter()
        with connection.execute_wrapper(queries):
            profiler.enable()
            report = deliveries_send(channel=channel, seconds=3600)
            profiler.disable()
        seconds = time.perf_counter() - began
    finally:
        for server in servers:
            server.stop()
    if report.sent != count:
        print(f"\n  profiling: sent {report.sent} of {count} ({report})")
    stats = pstats.Stats(profiler)
    print()
    print(
        f"Where a {channel} sender's time goes (cProfile in this process, {count:,} messages,"
        f" batches of 200; {count / seconds:,.0f}/s under the profiler,"
        f" {queries.count / count:.2f} SQL statements per message)"
    )
    for label, path, function in HOTSPOTS[channel]:
        calls, cumulative = _cumulative(stats, path, function)
        if calls:
            print(f"  {label:44} {1000 * cumulative / count:7.3f} ms per message ({calls:,} calls)")
        else:
            print(f"  {label:44}       (not called)")
    print("  most own time:")
    rows = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)  # type: ignore[attr-defined]
    for (path, line, name), (_cc, nc, tt, _ct, _callers) in rows[:12]:
        where = path.replace(str(ROOT) + "/", "").split("site-packages/")[-1]
        print(f"    {1000 * tt / count:7.3f} ms  {nc:>9,}  {name} ({where}:{line})")


# --- report --------------------------------------------------------------------------------------


def describe(phase: Phase) -> list[str]:
    lines = [
        f"  {phase.label}: {phase.arrived:,} of {phase.messages:,} in {phase.seconds:.1f}s"
        + (
            f" (deciding them took {phase.decide_seconds:.1f}s of it)"
            if phase.decide_seconds
            else ""
        )
        + (f"; steady {phase.steady_rate:,.0f}/s (10% to 90%)" if phase.steady_rate else "")
    ]
    if phase.cpu and phase.seconds:
        shares = ", ".join(
            f"{name} {100 * seconds / phase.seconds:.0f}%"
            for name, seconds in sorted(phase.cpu.items())
            if name != "load generator"
        )
        lines.append(f"    CPU (100% = one core): {shares}")
        if phase.arrived:
            per = ", ".join(
                f"{name} {1000 * seconds / phase.arrived:.2f} ms"
                for name, seconds in sorted(phase.cpu.items())
                if name in ("senders", "sinks", "receivers", "PostgreSQL", "load generator")
            )
            lines.append(f"    CPU per message: {per}")
    return lines


def scaling_ceiling(phases: dict[str, Phase]) -> str:
    """The most any number of workers could send on this machine, relative to one: its cores
    over the cores the one-worker phase kept busy (that phase's worker, sink, PostgreSQL and
    deciding all grow with the rate). Below 1.7x the scaling target cannot be shown here, however
    well workers share the queue; the sender CPU per message says whether they slow each other."""
    one, two = phases.get("email 1"), phases.get("email 2")
    if not (one and one.cpu and one.seconds and one.arrived):
        return ""
    cores = os.cpu_count() or 1
    busy = one.cpu.get("machine", 0.0) / one.seconds
    line = (
        f"  scaling ceiling: {cores} cores / {busy:.2f} cores busy with one worker ="
        f" {cores / busy:.2f}x at most, on this machine"
    )
    if two and two.cpu and two.arrived:
        per_one = 1000 * one.cpu.get("senders", 0.0) / one.arrived
        per_two = 1000 * two.cpu.get("senders", 0.0) / two.arrived
        busy_two = two.cpu.get("machine", 0.0) / two.seconds
        line += (
            f"; two workers kept {busy_two:.2f} cores busy; sender CPU per message"
            f" {per_one:.2f} ms with one worker, {per_two:.2f} ms with two"
        )
    return line


def print_report(args: argparse.Namespace, machine: str, phases: dict[str, Phase]) -> None:
    bare = phases["bare email"]
    rows: list[tuple[str, str, str, str]] = [
        ("bare smtplib messages/s", f"{bare.rate:,.0f}", "(the ceiling)", "")
    ]
    one = phases.get("email 1")
    for workers in args.worker_counts:
        phase = phases[f"email {workers}"]
        rows.append((f"real path, {phase.label[7:]}: sent/s", f"{phase.rate:,.0f}", "", ""))
        if workers == 1:
            ratio = phase.rate / bare.rate
            rows.append(
                (
                    "  1 worker / bare",
                    f"{100 * ratio:.0f}%",
                    f">= {100 * TARGET_RATIO_TO_BARE:.0f}%",
                    verdict(ratio >= TARGET_RATIO_TO_BARE),
                )
            )
        elif one is not None and one.rate:
            scaling = phase.rate / one.rate
            target = TARGET_SCALING if workers == 2 else None
            rows.append(
                (
                    f"  {workers} workers / 1 worker",
                    f"{scaling:.2f}x",
                    f">= {target}x" if target else "",
                    verdict(scaling >= target) if target else "",
                )
            )
    if "bare push" in phases:
        bare_push, push = phases["bare push"], phases["push"]
        rows += [
            ("bare pywebpush pushes/s", f"{bare_push.rate:,.0f}", "(the ceiling)", ""),
            (f"real path, {push.label[6:]}: pushes/s", f"{push.rate:,.0f}", "", ""),
        ]
        if bare_push.rate:
            ratio = push.rate / bare_push.rate
            rows.append(
                (
                    "  push / bare",
                    f"{100 * ratio:.0f}%",
                    f">= {100 * TARGET_RATIO_TO_BARE:.0f}%",
                    verdict(ratio >= TARGET_RATIO_TO_BARE),
                )
            )
    print()
    print("Wayfarer sending benchmark")
    print(f"  machine:    {machine}")
    print("\n".join(conditions_lines(args.load_at_start, args.python_speed, "lower figures")))
    print(
        f"  parameters: emails {args.emails:,} per phase, pushes {args.pushes:,}, email workers"
        f" {args.workers}, push workers {args.push_workers}, decided {args.decide_chunk:,} per"
        f" call, {args.sample} distinct messages in the bare loop"
    )
    print()
    header = ("measure", "result", "target", "verdict")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    print("  " + "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("  " + "  ".join("-" * w for w in widths))
    for row in rows:
        print("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    print()
    for phase in phases.values():
        for line in describe(phase):
            print(line)
    checks = []
    for phase in phases.values():
        checks.append(f"{phase.label} exactly once: {'OK' if phase.exactly_once else 'FAILED'}")
        if phase.statuses:
            checks.append(
                f"{phase.label} outbox all sent: {'OK' if phase.all_sent else 'FAILED'}"
                + ("" if phase.all_sent else f" {dict(phase.statuses)}")
            )
    print(scaling_ceiling(phases))
    print("  checks: " + "; ".join(checks))
    problems = [p for phase in phases.values() for p in phase.problems]
    print(f"  worker errors: {'none' if not problems else ''}")
    for line in problems[:10]:
        print(f"    {line}")


# --- main ----------------------------------------------------------------------------------------


def environment(args: argparse.Namespace, var_dir: Path) -> dict[str, str]:
    env = django_environment(args.database, var_dir)
    env["CELERY_BROKER_URL"] = args.broker_url
    # The tracking links of the messages point here; nothing needs to answer.
    env["SITE_URL"] = "https://wayfarer.bench.example"
    # The push receiver listens on loopback, which the outbound guard refuses by default.
    env["WAYFARER_OUTBOUND_ALLOW_PRIVATE"] = "true"
    return env


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.load_at_start = os.getloadavg()[0]  # 1-minute load: is something else running?
    args.python_speed = python_speed()
    # A `kill` of this script still stops the workers and drops the database (finally blocks).
    signal.signal(signal.SIGTERM, terminated)
    try:
        with django_on_bench_database(
            args.database, keep=args.keep, environment=partial(environment, args)
        ) as (env, var_dir):
            return measure(args, env, var_dir)
    except BenchError as exc:
        print(f"\nbench/send.py: {exc}", file=sys.stderr)
        return 1


def measure(args: argparse.Namespace, env: dict[str, str], var_dir: Path) -> int:
    database: BenchDatabase = args.database
    machine = machine_description(database.server_version())
    broker_empty(args.broker_url)
    phases: dict[str, Phase] = {}

    log(f"rendering {args.sample} real messages for the bare loop")
    sample = render_sample(audience_create("bench-sample", args.sample, channel="email"), "email")
    push_sample = []
    if args.pushes:
        push_audience = audience_create("bench-push-sample", args.sample, channel="push")
        push_sample = render_sample(push_audience, "push")
    broker_empty(args.broker_url)  # the samples' wake-ups: nothing is left to send
    log(f"bare smtplib: {args.emails:,} messages on one connection")
    phases["bare email"] = run_bare_email(args, var_dir, sample)

    for workers in args.worker_counts:
        audience = audience_create(f"bench-email-{workers}w", args.emails, channel="email")
        log(f"email through the real path with {workers} worker(s): {args.emails:,} messages")
        phases[f"email {workers}"] = run_email(args, env, var_dir, workers, audience)

    if args.pushes:
        log(f"bare pywebpush: {args.pushes:,} pushes on one session")
        phases["bare push"] = run_bare_push(args, var_dir, push_sample)
        log(f"push through the real path with {args.push_workers} worker(s)")
        phases["push"] = run_push(args, env, var_dir)

    print_report(args, machine, phases)
    if args.profile:
        profile_channel(args, var_dir, "email")
        if args.pushes:
            profile_channel(args, var_dir, "push")
    broker_empty(args.broker_url)
    complete = all(p.exactly_once and p.all_sent for p in phases.values())
    return 0 if complete else 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["push-receiver"]:
        sys.exit(serve_push_receiver(sys.argv[2:]))
    sys.exit(main())
