"""The embedded default holds up under use: `make run` (SQLite, the file broker, the supervisor)
under mixed load — page loads, tracking calls, a 50,000-row CSV import, segments saved, sends —
for WAYFARER_SOAK_SECONDS (default 180, to fit CI's budget of about 5 minutes for this test; set
it higher for a real soak), with the worker killed with SIGKILL a third of the way in.

What a person would notice, and what failed before (issue 19): pages waited 5 s and then
answered 500 "database is locked" while the import ran, a segment being saved was lost,
/healthz went stale, the worker died on a half-written broker message, and honcho then stopped
the web server too. Here: no 5xx, no page slower than PAGE_LIMIT_SECONDS, /healthz "ok" at
every probe but the moments around the kill, the killed worker restarted and reported, every
tracked event stored, every message sent exactly once, and the import carrying on after the kill
with exactly the rows it reports stored.

Runs `make run` with the service variables cleared, like tests/e2e/test_make_run.py, so it runs
in the PostgreSQL phase of CI and is deselected in the SQLite phase (.ci/run).
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from ops.demo import DEMO_EMAIL, DEMO_PASSWORD, DEMO_SLUG
from tests.e2e.conftest import REPO_ROOT, ProcessRunner, free_port, wait_for
from tests.e2e.test_make_run import CSRF_INPUT, LOAD_CALL, fresh_clone_env, local_http
from tests.e2e.test_send_worker import sink_counts, start_mail_sink

pytestmark = pytest.mark.e2e

SOAK_SECONDS = float(os.environ.get("WAYFARER_SOAK_SECONDS", "180"))
# The acceptance criterion's size; a smaller one only for a quick local run on a busy machine.
IMPORT_ROWS = int(os.environ.get("WAYFARER_SOAK_IMPORT_ROWS", "50000"))
PAGE_LIMIT_SECONDS = 10.0  # the slowest any page may be (before: 5 s, then a 500)
KILL_AT = 1 / 3  # of the soak: SIGKILL the worker
KILL_WINDOW_SECONDS = 30.0  # after the kill, /healthz may say "degraded" this long
SEND_ROUNDS = (0.1, 0.4, 0.7)  # of the soak: decide a batch of messages
SEND_BATCH = 100
SEGMENT_EVERY_SECONDS = 15.0
LEASE_SECONDS = 15
MAKE = shutil.which("make") or "make"
T = f"/t/{DEMO_SLUG}"
PAGES = (f"{T}/", f"{T}/contacts/", f"{T}/segments/", f"{T}/contacts/import/")

# Run by `manage.py shell` against the demo's database: what a campaign does when it sends.
SEND_SCRIPT = """
from audience.services import contact_upsert
from messaging.models import Category, Template
from messaging.services import Decision, deliveries_create
from tenants.models import Tenant
tenant = Tenant.objects.get(slug="demo")
template = Template.objects.get(tenant=tenant, name="Welcome")
decisions = []
for i in range({start}, {stop}):
    email = f"soak-{{i}}@send.example"
    contact, _ = contact_upsert(tenant=tenant, email=email, fields={{}}, source="soak")
    decisions.append(Decision(contact, f"soak:{{i}}"))
deliveries_create(tenant=tenant, template=template, source="soak", decisions=decisions,
                  category=Category.TRANSACTIONAL)
"""


@dataclass
class Observations:
    requests: list[tuple[str, int, float]] = field(default_factory=list)  # what, status, seconds
    health: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)
    tracked: set[str] = field(default_factory=set)  # messageIds answered 200
    segments_saved: list[tuple[str, str]] = field(default_factory=list)  # name, import status

    def timed(self, what: str, call: Any) -> requests.Response:
        started = time.monotonic()
        response = call()
        self.requests.append((what, response.status_code, time.monotonic() - started))
        return response

    def summary(self) -> str:
        seconds = sorted(s for _, _, s in self.requests)
        slowest = sorted(self.requests, key=lambda r: -r[2])[:5]
        return (
            f"{len(seconds)} requests, median {statistics.median(seconds):.3f} s, "
            f"p95 {seconds[int(len(seconds) * 0.95)]:.3f} s, slowest {slowest}"
        )


class Demo:
    """The running demo, as a signed-in person and an operator see it."""

    def __init__(self, base: str, var_dir: Path) -> None:
        self.base = base
        self.var_dir = var_dir
        self.http = local_http()

    def csrf(self, path: str) -> str:
        match = CSRF_INPUT.search(self.http.get(self.base + path, timeout=30).text)
        assert match, f"no CSRF token on {path}"
        return match.group(1)

    def post(self, path: str, data: dict[str, str], **kwargs: Any) -> requests.Response:
        data = {"csrfmiddlewaretoken": self.csrf(path), **data}
        return self.http.post(
            self.base + path, data=data, headers={"Referer": self.base + path}, timeout=60, **kwargs
        )

    def sign_in(self) -> None:
        response = self.post(
            "/accounts/login/", {"username": DEMO_EMAIL, "password": DEMO_PASSWORD, "next": ""}
        )
        assert response.url == f"{self.base}{T}/", "the demo user could not sign in"

    def write_key(self) -> str:
        shop = self.post(f"{T}/demo-shop/", {})
        [key] = set(LOAD_CALL.findall(shop.text))
        return key

    def health(self) -> dict[str, Any]:
        return self.http.get(f"{self.base}/healthz", timeout=30).json()

    def query(self, sql: str, *args: object) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.var_dir / "wayfarer.sqlite3", timeout=30) as db:
            return db.execute(sql, args).fetchall()

    def import_progress(self) -> tuple[str, int, int, int]:
        """Status, rows processed, contacts created, and contacts stored: one snapshot."""
        [row] = self.query(
            "SELECT status, processed_rows, created_count, (SELECT count(*) FROM audience_contact"
            " WHERE email LIKE '%@import.example') FROM audience_contactimport"
            " WHERE filename = 'soak.csv'"
        )
        return row

    def supervised(self) -> dict[str, Any]:
        return json.loads((self.var_dir / "supervisor.json").read_text())["processes"]


def start_import(demo: Demo) -> None:
    lines = ["user_id,email,first_name,city"]
    lines += [f"s{i},s{i}@import.example,Name{i},City{i % 40}" for i in range(IMPORT_ROWS)]
    csv_file = ("soak.csv", "\n".join(lines).encode(), "text/csv")
    uploaded = demo.post(f"{T}/contacts/import/", {}, files={"file": csv_file})
    assert uploaded.status_code == 200 and "/contacts/import/" in uploaded.url
    detail = uploaded.url.removeprefix(demo.base)
    mapping = {"map-0": "user_id", "map-1": "email", "map-2": "first_name", "map-3": "attribute"}
    confirmed = demo.post(detail, mapping)
    assert confirmed.status_code == 200, confirmed.text[:2000]


def save_segment(demo: Demo, observed: Observations, n: int) -> None:
    name = f"Soak viewers {n}"
    status_before = demo.import_progress()[0]
    fields = {"name": name, "action": "save", "node-0-type": "event"}
    fields["node-0-event"] = "Product Viewed"
    path = f"{T}/segments/new/"
    response = observed.timed(
        "save segment", lambda: demo.post(path, fields, allow_redirects=False)
    )
    assert response.status_code == 302, f"saving segment {name!r}: {response.status_code}"
    observed.segments_saved.append((name, status_before))


def track(demo: Demo, observed: Observations, key: str, counter: Any) -> None:
    batch = []
    for _ in range(5):
        message_id = f"soak-{next(counter)}"
        batch.append(
            {
                "type": "track",
                "event": "Product Viewed",
                "anonymousId": f"visitor-{uuid.uuid4().hex[:6]}",
                "messageId": message_id,
                "properties": {"sku": "TENT-2"},
            }
        )
    url = f"{demo.base}/v1/batch"
    response = observed.timed(
        "/v1/batch",
        lambda: demo.http.post(url, json={"batch": batch}, auth=(key, ""), timeout=30),
    )
    if response.status_code == 200:
        observed.tracked.update(m["messageId"] for m in batch)


def decide_sends(env: dict[str, str], start: int) -> subprocess.Popen[bytes]:
    script = SEND_SCRIPT.format(start=start, stop=start + SEND_BATCH)
    return subprocess.Popen(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def test_it_stays_up_under_mixed_load_with_a_big_import_and_a_killed_worker(
    processes: ProcessRunner, tmp_path: Path
) -> None:
    var_dir = tmp_path / "var"
    var_dir.mkdir()
    port = free_port()
    _, sink_port, sink_out = start_mail_sink(processes, tmp_path)
    env = {
        **fresh_clone_env(var_dir),
        "EMAIL_URL": f"smtp://127.0.0.1:{sink_port}",
        # The messages the killed worker had claimed are settled after this (300 s by default).
        "MESSAGING_LEASE_SECONDS": str(LEASE_SECONDS),
    }
    make = processes.start(
        "make run", [MAKE, "--no-print-directory", "run", f"PORT={port}"], env=env, cwd=REPO_ROOT
    )
    demo = Demo(f"http://127.0.0.1:{port}", var_dir)

    def healthy() -> dict[str, Any] | None:
        try:
            report = demo.health()
        except (requests.RequestException, ValueError):
            return None
        return report if report["status"] == "ok" else None

    wait_for(healthy, timeout=360, what="make run to serve a green /healthz", runner=processes)
    demo.sign_in()
    key = demo.write_key()
    start_import(demo)

    observed = Observations()
    counter = itertools.count()
    senders: list[subprocess.Popen[bytes]] = []
    killed_at: float | None = None
    rows_at_kill = 0
    segment_due = 0.0
    started = time.monotonic()
    for n in itertools.count():
        elapsed = time.monotonic() - started
        if elapsed > SOAK_SECONDS:
            break
        page = PAGES[n % len(PAGES)]
        observed.timed(page, lambda p=page: demo.http.get(demo.base + p, timeout=60))
        track(demo, observed, key, counter)
        report = observed.timed(
            "/healthz", lambda: demo.http.get(f"{demo.base}/healthz", timeout=60)
        )
        observed.health.append((elapsed, report.json()["status"], report.json()))
        if elapsed >= segment_due:
            save_segment(demo, observed, len(observed.segments_saved))
            segment_due = elapsed + SEGMENT_EVERY_SECONDS
        if len(senders) < len(SEND_ROUNDS) and elapsed >= SEND_ROUNDS[len(senders)] * SOAK_SECONDS:
            senders.append(decide_sends(env, len(senders) * SEND_BATCH))
        if killed_at is None and elapsed >= KILL_AT * SOAK_SECONDS:
            rows_at_kill = demo.import_progress()[1]
            os.kill(demo.supervised()["worker"]["pid"], signal.SIGKILL)
            killed_at = elapsed
        processes.check_running()  # make run and its supervisor are still there
        time.sleep(0.2)

    # Nothing failed, nothing was slow.
    failures = [r for r in observed.requests if r[1] >= 500]
    assert not failures, f"server errors: {failures[:10]}; {observed.summary()}"
    slow = [r for r in observed.requests if r[2] > PAGE_LIMIT_SECONDS]
    assert not slow, f"too slow: {slow}; {observed.summary()}"
    assert killed_at is not None
    not_ok = [
        (
            round(at),
            status,
            {k: v for k, v in report.items() if isinstance(v, dict) and not v["ok"]},
        )
        for at, status, report in observed.health
        if status != "ok" and not killed_at <= at <= killed_at + KILL_WINDOW_SECONDS
    ]
    assert not not_ok, f"/healthz was not ok (seconds into the soak, what): {not_ok[:5]}"
    # A segment was saved while the import ran (the acceptance criterion), and each one is there.
    assert "running" in {status for _, status in observed.segments_saved}, observed.segments_saved
    names = {name for (name,) in demo.query("SELECT name FROM segments_segment")}
    assert {name for name, _ in observed.segments_saved} <= names

    print(f"\nsoak of {SOAK_SECONDS:.0f} s: {observed.summary()}")  # noqa: T201  (shown with -s)

    # The worker was restarted, /healthz says so, and nothing else was.
    report = demo.health()
    worker = report["processes"]["worker"]
    assert (worker["running"], worker["restarts"], worker["last_exit_code"]) == (True, 1, -9)
    assert "worker running; restarted once" in worker["summary"]
    assert report["processes"]["web"]["restarts"] == 0
    assert report["processes"]["beat"]["restarts"] == 0

    # The import: every row it reports done is stored, none more (its chunks commit rows and
    # progress together), and it carried on after its worker was killed. Not waited for to the
    # end, to keep within CI's budget: a worker imports ~200-300 rows/s on 2 cores, and the
    # resuming and finishing of an import are proven in tests/audience/test_csv_import_slices.py.
    status, processed, created, stored_contacts = demo.import_progress()
    assert processed == created == stored_contacts, (status, processed, created, stored_contacts)
    assert status == "done" or (status == "running" and processed > rows_at_kill), (
        f"the import stopped after the worker was killed: {status}, {processed} rows"
    )
    if status == "done":
        assert processed == IMPORT_ROWS
    print(f"import: {status}, {processed} of {IMPORT_ROWS} rows at the end of the soak")  # noqa: T201

    # Everything arrives: every tracked event, every message exactly once.
    for sender in senders:
        output = sender.communicate(timeout=120)[0].decode(errors="replace")
        assert sender.returncode == 0, output

    def stored() -> int:
        rows = demo.query("SELECT count(*) FROM audience_event WHERE message_id LIKE 'soak-%'")
        return int(rows[0][0])

    wait_for(
        lambda: stored() == len(observed.tracked),
        timeout=120,
        what=f"every tracked event to be stored ({len(observed.tracked)} answered 200)",
        runner=processes,
    )
    recipients = {f"soak-{i}@send.example" for i in range(len(SEND_ROUNDS) * SEND_BATCH)}
    wait_for(
        lambda: set(sink_counts(sink_out)) >= recipients,
        timeout=180,
        what="every message to arrive",
        runner=processes,
    )
    counts = sink_counts(sink_out)
    assert {r: counts[r] for r in recipients if counts[r] != 1} == {}, "sent twice"
    assert health_now_ok(demo), demo.health()

    leftovers = make.stop()
    assert not leftovers, f"these ignored SIGTERM and had to be killed: {leftovers}"


def health_now_ok(demo: Demo) -> bool:
    return bool(demo.health()["status"] == "ok")
