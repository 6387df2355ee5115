"""Proof under faults: the outbox sends every message exactly once while its processes and
services fail under it (docs/operations.md, "What the fault tests prove").

Each test runs the real thing: Celery senders (one per channel, `-P solo`, as the Procfile runs
them) and beat with the project's scheduler, a real SMTP server in a process of its own
(tests/mail_sink.py, which records each message's Message-ID, the delivery's public id) and a
real push service (tests/messaging/push_receiver.py: it verifies VAPID and decrypts every
message). Emails and pushes of two tenants are decided through `deliveries_create`, then:

1. kill -9 each sender in the middle of its work, start new ones;
2. crash the broker (a private redis-server without persistence: queued tasks are lost) and
   start it again;
3. crash PostgreSQL (a private cluster, `-m immediate`) and start it again;
4. run two beat processes at once, then kill -9 the one that leads.

The machine's shared Redis and PostgreSQL are never touched: other test processes use them at
the same time. Afterwards every message has arrived once and only once, and every delivery
says sent. The one exception the design documents (docs/architecture.md, "Delivering exactly
once") is a message whose handover stamp was committed but whose final "." (or POST) never left
because its worker died in between: it counts as sent without arriving. The tests allow that
only where a worker died, at most one group per death, and print every such message.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from messaging.models import Delivery
from tests.e2e import test_celery_worker
from tests.e2e.conftest import REPO_ROOT, ManagedProcess, ProcessRunner, wait_for
from tests.e2e.outbox_load import report as outbox_report
from tests.e2e.private_services import PrivatePostgres, PrivateRedis, private_postgres
from tests.e2e.test_celery_worker import start_beat, start_celery
from tests.e2e.test_send_worker import start_mail_sink
from tests.messaging.push_receiver import BrowserSubscription, PushReceiver

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

celery_env = test_celery_worker.celery_env  # the fixture: a worker's environment, test database

EMAILS = 1_200
PUSHES = 400
LEASE_SECONDS = 3  # how soon recovery settles a dead worker's rows (the default is 300)
GROUP = 8  # messages handed over at once (MESSAGING_SMTP_CONNECTIONS / _PUSH_CONNECTIONS)
OUTAGE_SECONDS = 2.0  # how long a crashed service stays down before it is started again
SETTLED_WITHIN_SECONDS = 120
# Reasons (messaging/outbox.py) of rows counted as sent that may not have arrived: handed over,
# then the worker died or lost the connection before the server confirmed.
IN_DOUBT = ("sent; the worker stopped before confirming it", "outcome unconfirmed")


# --- The pieces ------------------------------------------------------------------------------


@pytest.fixture
def services(tmp_path: Path) -> Iterator[ProcessRunner]:
    """The private Redis and PostgreSQL servers: a runner of their own, stopped after the
    workers and beat (tests ask for it before `processes`), so that those stop cleanly."""
    (tmp_path / "services").mkdir()
    runner = ProcessRunner(log_dir=tmp_path / "services")
    try:
        yield runner
    finally:
        runner.stop_all()


@pytest.fixture
def receiver() -> Iterator[PushReceiver]:
    with PushReceiver() as running:
        yield running


class Arrivals:
    """What the mail sink and the push service took: emails by delivery id (Message-ID), pushes
    by endpoint (each push contact has one browser)."""

    def __init__(self, sink_out: Path, receiver: PushReceiver) -> None:
        self.sink_out, self.receiver = sink_out, receiver

    def emails(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        for line in self.sink_out.read_text().splitlines(keepends=True):
            if line.endswith("\n"):  # a line still being written is left out
                counts[json.loads(line)["message_id"].strip("<>").split("@")[0]] += 1
        return counts

    def pushes(self) -> Counter[str]:
        with self.receiver.lock:
            return Counter(a.endpoint for a in self.receiver.attempts if a.status == 201)

    def count(self, channel: str) -> int:
        return (self.emails() if channel == "email" else self.pushes()).total()


def sender_env(env: dict[str, str], sink_port: int) -> dict[str, str]:
    return {
        **env,
        "EMAIL_URL": f"smtp://127.0.0.1:{sink_port}",
        "EMAIL_TIMEOUT": "10",
        "MESSAGING_LEASE_SECONDS": str(LEASE_SECONDS),
        # A beat that lost the database stands by until it can renew its lease: ask often.
        "BEAT_LEASE_SECONDS": "6",
        # The push service is on loopback (issue 19's outbound guard refuses it otherwise).
        "WAYFARER_OUTBOUND_ALLOW_PRIVATE": "true",
    }


def start_senders(
    processes: ProcessRunner,
    env: dict[str, str],
    tmp_path: Path,
    *,
    wait: bool = True,
    queues: tuple[str, ...] = ("email", "push"),
) -> list[ManagedProcess]:
    """A worker for each channel's queue, as production gives each channel its own; started
    together (one must not finish its work while the other boots)."""
    workers = []
    for queue in queues:
        node = f"e2e-faults-{queue}-{uuid.uuid4().hex[:8]}@%h"
        arguments = ["worker", "-P", "solo", "-Q", queue, "-n", node, "--without-gossip"]
        arguments += ["--without-mingle", "--without-heartbeat"]
        workers.append(start_celery(processes, f"{queue} sender", arguments, env, tmp_path))
    if wait:
        wait_while_running(
            lambda: all(" ready." in w.log() for w in workers), workers, what="the senders"
        )
    return workers


def start_beat_in(
    processes: ProcessRunner, env: dict[str, str], directory: Path, name: str = "beat"
) -> ManagedProcess:
    directory.mkdir(parents=True, exist_ok=True)  # its schedule and pid files
    beat = start_beat(processes, env, directory)
    beat.name = name
    return beat


def browsers_for(receiver: PushReceiver, count: int) -> list[BrowserSubscription]:
    return [receiver.subscribe() for _ in range(count)]


def seed(env: dict[str, str], tmp_path: Path, browsers: list[BrowserSubscription]) -> None:
    """Decide the campaign in a process of its own, as the app would: its commits wake the
    senders through `env`'s broker (the test process's Celery app knows only the shared one)."""
    path = tmp_path / "browsers.json"
    path.write_text(json.dumps([b.to_json() for b in browsers]))
    done = run_django(env, "seed", "--emails", str(EMAILS), "--browsers", str(path))
    assert json.loads(done)["decided"] == EMAILS + len(browsers)


def run_django(env: dict[str, str], *arguments: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "tests.e2e.outbox_load", *arguments],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"outbox_load {arguments[0]} failed:\n{done.stderr[-4000:]}"
    return done.stdout.strip().splitlines()[-1]


def unsettled_in_test_database() -> int:
    return Delivery.objects.filter(
        status__in=[Delivery.Status.QUEUED, Delivery.Status.SENDING]
    ).count()


def wait_while_running[T](
    probe: Callable[[], T | None],
    alive: list[ManagedProcess],
    *,
    what: str,
    timeout: float = 90,
    interval: float = 0.25,
) -> T:
    """wait_for, failing at once if one of `alive` dies (not the runner's check: the tests kill
    some of its processes on purpose, and keep them there for their logs)."""

    def probe_alive() -> T | None:
        for process in alive:
            assert process.is_running(), f"{process.name} died:\n{process.output()[-3000:]}"
        return probe()

    return wait_for(probe_alive, timeout=timeout, what=what, interval=interval)


class Supervisor:
    """Restarts a sender that exited, as systemd or a container runtime would in production.

    A Celery worker can exit when the Redis broker vanishes under it: closing the lost
    connection, kombu restores the unacknowledged messages and fails on the connection already
    gone (AttributeError in `_connparams`, the class of celery/kombu#970). Nothing is lost by
    that (recovery settles its rows), which is what these tests check; it is listed in the
    output."""

    def __init__(
        self, processes: ProcessRunner, env: dict[str, str], tmp_path: Path, senders: list[Any]
    ) -> None:
        self.processes, self.env, self.tmp_path = processes, env, tmp_path
        self.senders = {w.name.split()[0]: w for w in senders}
        self.restarts: list[str] = []

    def __call__(self) -> None:
        for queue, worker in list(self.senders.items()):
            if not worker.is_running():
                last = (worker.log().strip().splitlines() or ["(no output)"])[-1]
                self.restarts.append(f"{worker.name} exited ({worker.popen.returncode}): {last}")
                print(f"restarting: {self.restarts[-1]}")  # noqa: T201
                (self.senders[queue],) = start_senders(
                    self.processes, self.env, self.tmp_path, wait=False, queues=(queue,)
                )


def wait_until_settled(
    unsettled: Callable[[], int | None],
    alive: list[ManagedProcess],
    supervise: Callable[[], None] = lambda: None,
) -> None:
    def settled() -> bool:
        supervise()
        return unsettled() == 0

    wait_while_running(
        settled,
        alive,
        what="the outbox to settle",
        timeout=SETTLED_WITHIN_SECONDS,
        interval=0.5,
    )


def assert_exactly_once(
    rows: list[dict[str, Any]], arrivals: Arrivals, *, worker_deaths: int
) -> list[dict[str, Any]]:
    """Every delivery sent, none arrived twice, none lost. Returns the in-doubt ones (counted
    sent, never arrived), allowed only as a worker death's group, `worker_deaths` times."""
    emails, pushes = arrivals.emails(), arrivals.pushes()
    assert len(rows) == EMAILS + PUSHES

    def arrived(row: dict[str, Any]) -> int:
        return emails[row["id"]] if row["channel"] == "email" else pushes[row["to"]]

    twice = [(r["channel"], r["to"], arrived(r)) for r in rows if arrived(r) > 1]
    assert twice == [], f"{len(twice)} messages arrived more than once: {twice[:10]}"
    known = {r["id"] for r in rows} | {r["to"] for r in rows}
    strangers = sorted((emails.keys() | pushes.keys()) - known)
    assert strangers == [], f"messages of no delivery arrived: {strangers[:10]}"

    statuses = Counter(r["status"] for r in rows)
    assert statuses == {"sent": len(rows)}, f"not all sent: {statuses}"

    missing = [r for r in rows if arrived(r) == 0]
    in_doubt = [r for r in missing if r["reason"].startswith(IN_DOUBT)]
    lost = [r for r in missing if r not in in_doubt]
    assert lost == [], f"{len(lost)} messages never arrived: {lost[:10]}"
    if in_doubt:  # said in the output of a passing run too (pytest -rA / -s)
        print(f"in doubt (handed over as the worker died): {in_doubt}")  # noqa: T201
    assert len(in_doubt) <= GROUP * worker_deaths, f"too many in doubt: {in_doubt}"
    return in_doubt


@pytest.fixture
def campaign(
    processes: ProcessRunner, receiver: PushReceiver, tmp_path: Path
) -> tuple[ManagedProcess, int, Arrivals, list[BrowserSubscription]]:
    sink, port, out = start_mail_sink(processes, tmp_path)
    return sink, port, Arrivals(out, receiver), browsers_for(receiver, PUSHES)


# --- 1. kill -9 ------------------------------------------------------------------------------


def send_a_quarter(
    processes: ProcessRunner,
    env: dict[str, str],
    tmp_path: Path,
    browsers: list[BrowserSubscription],
    arrivals: Arrivals,
) -> tuple[ManagedProcess, list[ManagedProcess]]:
    """Seed the campaign, start beat and the senders (on a full outbox), and wait until a
    quarter of the emails arrived: the moment a fault test breaks something."""
    seed(env, tmp_path, browsers)
    beat = start_beat_in(processes, env, tmp_path / "beat")
    senders = start_senders(processes, env, tmp_path)
    wait_for(
        lambda: arrivals.count("email") >= EMAILS // 4,
        timeout=90,
        what="a quarter of the emails",
        runner=processes,
        interval=0.05,
    )
    return beat, senders


def freeze_holding_rows(worker: ManagedProcess, channel: str, arrivals: Arrivals) -> int:
    """SIGSTOP the worker at an arbitrary moment of its work, while it holds claimed rows (a
    moment between two tasks proves less: it is thawed and caught again). Returns how many of
    the channel's messages had arrived."""
    group = worker.popen.pid  # its own session: one signal reaches the whole group
    holding = Delivery.objects.filter(channel=channel, status=Delivery.Status.SENDING)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not holding.exists():  # between tasks: wait for the next claim
            time.sleep(0.02)
            continue
        os.killpg(group, signal.SIGSTOP)
        if holding.exists():
            return arrivals.count(channel)
        os.killpg(group, signal.SIGCONT)
    raise AssertionError(f"the {channel} sender was never caught holding claimed rows")


def test_a_sender_killed_with_sigkill_mid_send_loses_and_duplicates_nothing(
    celery_env: dict[str, str], processes: ProcessRunner, tmp_path: Path, campaign: Any
) -> None:
    sink, port, arrivals, browsers = campaign
    env = sender_env(celery_env, port)
    # Decided first: the senders start on a full outbox, so each holds claimed rows nearly all
    # the time it runs. Their wake-ups wait in the broker.
    seed(env, tmp_path, browsers)
    # Beat wakes the senders every 10 s; the next run after the lease recovers the dead ones'
    # rows. Nothing else does: no test code stands in for it.
    beat = start_beat_in(processes, env, tmp_path / "beat")
    email, push = start_senders(processes, env, tmp_path, wait=False)

    # Each sender is frozen as soon as a quarter of its channel has arrived, both watched at
    # once (one channel must not finish while the other is being caught), then killed.
    to_kill = {"email": (email, EMAILS), "push": (push, PUSHES)}
    at_kill = {}

    def kill_the_due_ones() -> bool:
        for channel, (worker, total) in list(to_kill.items()):
            if arrivals.count(channel) >= total // 4:
                at_kill[channel] = freeze_holding_rows(worker, channel, arrivals)
                os.killpg(worker.popen.pid, signal.SIGKILL)
                assert worker.popen.wait(timeout=10) == -signal.SIGKILL
                assert at_kill[channel] < total, f"the {channel} sender had finished"
                del to_kill[channel]
        return not to_kill

    wait_while_running(
        kill_the_due_ones, [sink, beat], what="a quarter of each channel", interval=0.02
    )
    replacements = start_senders(processes, env, tmp_path)

    wait_until_settled(unsettled_in_test_database, [sink, beat, *replacements])
    rows = outbox_report()["rows"]
    in_doubt = assert_exactly_once(rows, arrivals, worker_deaths=2)
    # Each kill left claimed rows behind, which recovery settled: never handed over → sent
    # again (a second attempt); handed over → counted as sent.
    for channel in ("email", "push"):
        recovered = [
            r
            for r in rows
            if r["channel"] == channel and (r["attempts"] == 2 or r["reason"].startswith(IN_DOUBT))
        ]
        assert recovered, f"no {channel} row was recovered: the kill proved nothing"
        print(f"{channel}: killed at {at_kill[channel]} arrived, {len(recovered)} recovered")  # noqa: T201
    assert len(in_doubt) <= 2 * GROUP


# --- 2. the broker restarts ------------------------------------------------------------------


def test_a_broker_restart_without_persistence_loses_and_duplicates_nothing(
    celery_env: dict[str, str],
    services: ProcessRunner,
    processes: ProcessRunner,
    tmp_path: Path,
    campaign: Any,
) -> None:
    sink, port, arrivals, browsers = campaign
    redis = PrivateRedis(services, tmp_path / "redis")
    redis.start()
    env = {**sender_env(celery_env, port), "CELERY_BROKER_URL": redis.url()}
    beat, senders = send_a_quarter(processes, env, tmp_path, browsers, arrivals)
    redis.crash()  # the queued wake-ups and continuations are gone with it
    before = arrivals.emails().total()
    assert before < EMAILS, "the emails had all gone before the broker crashed: nothing proved"
    time.sleep(OUTAGE_SECONDS)  # the outage itself (what it leads to is waited for below)
    redis.start()

    # Only the database still knows what is left to send: beat re-drives it once it is back.
    supervisor = Supervisor(processes, env, tmp_path, senders)
    wait_until_settled(unsettled_in_test_database, [sink, beat], supervisor)
    assert arrivals.emails().total() > before
    assert_exactly_once(outbox_report()["rows"], arrivals, worker_deaths=0)


# --- 3. PostgreSQL restarts ------------------------------------------------------------------


@pytest.fixture
def cluster(services: ProcessRunner) -> Iterator[PrivatePostgres]:
    if connection.vendor != "postgresql":
        pytest.skip(
            "PostgreSQL-only: it crashes a PostgreSQL server of its own. CI's PostgreSQL phase "
            "runs it; the SQLite phase has no server to crash."
        )
    with private_postgres(services) as private:
        yield private


def unsettled_in(cluster: PrivatePostgres, name: str) -> Callable[[], int | None]:
    import psycopg

    def unsettled() -> int | None:
        try:
            with psycopg.connect(cluster.url(name), connect_timeout=2) as db:
                row = db.execute(
                    "SELECT count(*) FROM messaging_delivery WHERE status IN ('queued', 'sending')"
                ).fetchone()
        except psycopg.OperationalError:
            return None  # still down or recovering
        assert row is not None
        return int(row[0])

    return unsettled


def test_a_database_crash_and_restart_loses_and_duplicates_nothing(
    celery_env: dict[str, str],
    services: ProcessRunner,
    cluster: PrivatePostgres,
    processes: ProcessRunner,
    tmp_path: Path,
    campaign: Any,
) -> None:
    sink, port, arrivals, browsers = campaign
    cluster.start()
    cluster.create_database("wayfarer")
    redis = PrivateRedis(services, tmp_path / "redis")
    redis.start()
    env = {
        **sender_env(celery_env, port),
        "DATABASE_URL": cluster.url("wayfarer"),
        "CELERY_BROKER_URL": redis.url(),
    }
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert migrate.returncode == 0, migrate.stderr[-4000:]
    beat, senders = send_a_quarter(processes, env, tmp_path, browsers, arrivals)
    cluster.crash()
    before = arrivals.emails().total()
    assert before < EMAILS, "the emails had all gone before the crash: nothing proved"
    time.sleep(OUTAGE_SECONDS)
    cluster.start()

    supervisor = Supervisor(processes, env, tmp_path, senders)
    wait_until_settled(unsettled_in(cluster, "wayfarer"), [sink, beat], supervisor)
    assert arrivals.emails().total() > before
    rows = json.loads(run_django(env, "report"))["rows"]
    # No worker died, but a commit whose answer was lost in the crash is the same doubt: the
    # handover stamp may be on disk although its sender saw an error and did not send.
    assert_exactly_once(rows, arrivals, worker_deaths=1)


# --- 4. two beats ----------------------------------------------------------------------------

SENT_LINE = re.compile(
    r"^\[(?P<at>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): INFO/MainProcess\] "
    r"Scheduler: Sending due task (?P<entry>\S+) ",
    re.MULTILINE,
)
BEAT_LEASE_SECONDS = 6


def dispatches(beats: list[ManagedProcess]) -> list[tuple[datetime, str, str]]:
    """(when, schedule entry, beat) of every task the beats sent, in order."""
    found = [
        (datetime.strptime(m["at"], "%Y-%m-%d %H:%M:%S,%f"), m["entry"], beat.name)
        for beat in beats
        for m in SENT_LINE.finditer(beat.log())
    ]
    return sorted(found)


def test_two_beats_at_once_dispatch_each_periodic_task_once_and_one_takes_over(
    celery_env: dict[str, str], services: ProcessRunner, processes: ProcessRunner, tmp_path: Path
) -> None:
    from config.celery import app

    redis = PrivateRedis(services, tmp_path / "redis")  # its queues fill up: nobody consumes
    redis.start()
    env = {
        **celery_env,
        "CELERY_BROKER_URL": redis.url(),
        "BEAT_LEASE_SECONDS": str(BEAT_LEASE_SECONDS),
    }
    beats = [start_beat_in(processes, env, tmp_path / f"beat-{n}", f"beat {n}") for n in (1, 2)]

    def sent(entry: str) -> list[tuple[datetime, str, str]]:
        return [d for d in dispatches(beats) if d[1] == entry]

    # Two rounds of the 10-second senders: both beats have had their turn (two beats would
    # both send in the first round, milliseconds apart).
    wait_for(
        lambda: len(sent("messaging.send-email-due")) >= 2,
        timeout=60,
        what="two dispatches of messaging.send-email-due",
        runner=processes,
    )
    for entry, options in app.conf.beat_schedule.items():
        times = [at for at, *_ in sent(entry)]
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
        # A second beat would send each task again within milliseconds of the first.
        assert all(gap > options["schedule"] / 2 for gap in gaps), (entry, times)
    leaders = {beat for *_, beat in dispatches(beats)}
    assert len(leaders) == 1, f"both beats dispatched: {leaders}"

    # The leader dies without a word; the other takes over once its lease has run out.
    leader = next(b for b in beats if b.name in leaders)
    standby = next(b for b in beats if b is not leader)
    os.killpg(leader.popen.pid, signal.SIGKILL)
    leader.popen.wait(timeout=10)
    wait_while_running(
        lambda: dispatches([standby]),
        [standby],
        what="the standby beat to take over",
        timeout=BEAT_LEASE_SECONDS + 30,
    )
