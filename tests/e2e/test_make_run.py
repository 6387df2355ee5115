"""The README's promise: in a fresh clone, `make run` starts the whole product.

`make run` runs in its own process group with none of the service variables set and an empty
var dir, so it gets the embedded default (SQLite, file broker, mail as files) exactly as on a new
laptop. It talks to its own database, never the test database, so no django_db mark here.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import requests

from ops.demo import DEMO_EMAIL, DEMO_PASSWORD, DEMO_SLUG
from tests.e2e.conftest import REPO_ROOT, ProcessRunner, free_port, wait_for

# What a fresh clone does not have. (A developer's .env could still set them: settings read it.)
SERVICE_VARIABLES = ("DATABASE_URL", "CELERY_BROKER_URL", "EMAIL_URL", "CELERY_TASK_ALWAYS_EAGER")
# An outer `make test` must not hand its jobserver and flags to this make.
MAKE_VARIABLES = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")
CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
LOAD_CALL = re.compile(r'\bw\.load\("([^"]+)"')  # the write key the demo shop hands its tracker


def fresh_clone_env(var_dir: Path) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in SERVICE_VARIABLES + MAKE_VARIABLES
    }
    env["WAYFARER_VAR_DIR"] = str(var_dir)
    return env


def local_http() -> requests.Session:
    http = requests.Session()
    http.trust_env = False  # no proxy from the environment: talk to 127.0.0.1 only
    return http


@pytest.mark.e2e
def test_it_starts_web_worker_and_beat_with_make_run(
    processes: ProcessRunner, tmp_path: Path
) -> None:
    control_before = (REPO_ROOT / "control").exists()
    make = shutil.which("make")
    assert make, "GNU make is needed: the README's first command is `make run`"
    var_dir = tmp_path / "var"
    var_dir.mkdir()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    http = local_http()

    make_run = processes.start(
        "make run",
        [make, "--no-print-directory", "run", f"PORT={port}"],
        env=fresh_clone_env(var_dir),
        cwd=REPO_ROOT,
    )

    def healthz() -> dict[str, Any] | None:
        try:
            return http.get(f"{base}/healthz", timeout=5).json()
        except (requests.RequestException, ValueError):
            return None  # not listening yet

    def healthz_ok() -> dict[str, Any] | None:
        report = healthz()
        return report if report and report["status"] == "ok" else None

    # First make installs (only when a lock file changed), migrates, seeds and collects static
    # files: how long that takes depends on the machine, so it has a bound of its own.
    wait_for(healthz, timeout=240, what="make run to start serving /healthz", runner=processes)
    report = wait_for(
        healthz_ok, timeout=120, what="/healthz to report worker and beat ok", runner=processes
    )
    assert report["worker"]["ok"] is True
    assert report["beat"]["ok"] is True
    # The embedded default, in the var dir it was given.
    assert report["database"]["vendor"] == "sqlite"
    assert report["broker"]["transport"] == "filesystem"
    assert (var_dir / "wayfarer.sqlite3").is_file()

    # Sign in as the demo user, as a person following the README would.
    login_page = http.get(f"{base}/accounts/login/", timeout=10)
    assert login_page.status_code == 200
    csrf = CSRF_INPUT.search(login_page.text)
    assert csrf, "the login form has no CSRF token"
    dashboard = http.post(
        f"{base}/accounts/login/",
        data={
            "csrfmiddlewaretoken": csrf.group(1),
            "username": DEMO_EMAIL,
            "password": DEMO_PASSWORD,
            "next": "",
        },
        timeout=10,
    )
    assert [r.status_code for r in dashboard.history][:1] == [302], "the login was not accepted"
    assert dashboard.status_code == 200
    assert dashboard.url == f"{base}/t/{DEMO_SLUG}/"
    assert "<h1>Demo Outdoor Shop</h1>" in dashboard.text

    # Tracking data sent to the embedded app is accepted, and its worker records it on a
    # profile: the inbox → ingest queue → worker path on SQLite and the file-system broker.
    shop_url = f"{base}/t/{DEMO_SLUG}/demo-shop/"
    shop_form = http.get(shop_url, timeout=10)
    shop = http.post(
        shop_url,
        data={"csrfmiddlewaretoken": CSRF_INPUT.search(shop_form.text).group(1)},
        headers={"Referer": shop_url},
        timeout=10,
    )
    assert shop.status_code == 200
    [write_key] = set(LOAD_CALL.findall(shop.text))
    tracked = http.post(
        f"{base}/v1/track",
        json={"event": "Product Viewed", "anonymousId": "make-run", "messageId": "make-run-1"},
        auth=(write_key, ""),
        timeout=10,
    )
    assert tracked.json() == {"success": True}

    def recorded() -> bool:
        with sqlite3.connect(var_dir / "wayfarer.sqlite3", timeout=10) as db:
            found = db.execute(
                "SELECT count(*) FROM audience_event WHERE message_id = 'make-run-1'"
            ).fetchone()
        return bool(found[0])

    wait_for(recorded, timeout=30, what="the worker to record the tracked event", runner=processes)

    http.close()
    leftovers = make_run.stop()
    assert not make_run.survivors(), "processes of make run survived SIGKILL"
    assert not leftovers, f"these ignored SIGTERM and had to be killed: {leftovers}"
    # Everything the demo writes stays in its var dir; the checkout stays clean.
    assert control_before or not (REPO_ROOT / "control").exists()
