#!/usr/bin/env python
# ruff: noqa: T201  (a command-line report: printing is its job)
"""Pages during a big CSV import: how much slower the UI answers while a 50,000-row import runs
than when the product is idle.

    .venv/bin/python bench/import_pages.py [--rows N] [--sqlite] [--database-url URL]
                                           [--broker-url URL] [--keep]

1. On PostgreSQL (default): recreates the database `wayfarer_bench_import` on 127.0.0.1 (the
   name must contain `bench`: it is dropped afterwards) and uses the Redis database of
   `--broker-url`; with `--sqlite`, the embedded default (SQLite and the file broker) in a
   temporary var dir. Migrates, seeds the demo tenant, collects static files.
2. Starts `manage.py supervise` (gunicorn, a Celery worker, beat: what `make run` starts) on a
   free port and signs in as the demo user.
3. Idle: loads four pages (dashboard, contacts, segments, import) and /healthz, round after
   round, for `--idle-seconds`.
4. Uploads a CSV of `--rows` contacts and confirms its mapping, then loads the same pages, round
   after round, until the import is done.
5. Prints the median and 95th percentile of each phase, their ratios, any non-2xx answer and the
   import's rows per second; stops the processes and drops the database.

Exit status: 0 when the measurement completed; 1 when it could not run.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common
import requests
from common import BenchDatabase, BenchError, log

PAGES = ("/t/demo/", "/t/demo/contacts/", "/t/demo/segments/", "/t/demo/contacts/import/")
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Client:
    def __init__(self, base: str) -> None:
        self.base = base
        self.http = requests.Session()
        self.http.trust_env = False

    def post(self, path: str, data: dict[str, str], **kwargs: object) -> requests.Response:
        token = CSRF.search(self.http.get(self.base + path, timeout=60).text)
        if token is None:
            raise BenchError(f"no CSRF token on {path}")
        data = {"csrfmiddlewaretoken": token.group(1), **data}
        headers = {"Referer": self.base + path}
        return self.http.post(self.base + path, data=data, headers=headers, timeout=120, **kwargs)  # type: ignore[arg-type]

    def round(self, timings: list[float], errors: list[str]) -> None:
        for path in (*PAGES, "/healthz"):
            began = time.perf_counter()
            response = self.http.get(self.base + path, timeout=120)
            timings.append(time.perf_counter() - began)
            if response.status_code >= 300:
                errors.append(f"{path}: {response.status_code}")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def measure(args: argparse.Namespace, env: dict[str, str], var_dir: Path) -> list[str]:
    from audience.models import ContactImport

    seeded = subprocess.run(
        [sys.executable, "manage.py", "seed_demo"], cwd=common.ROOT, env=env, capture_output=True
    )
    if seeded.returncode != 0:
        raise BenchError(f"manage.py seed_demo failed: {seeded.stderr.decode()[-2000:]}")
    common.manage(env, "collectstatic")
    port = free_port()
    log(f"manage.py supervise on port {port}")
    supervisor = subprocess.Popen(
        [sys.executable, "manage.py", "supervise"],
        cwd=common.ROOT,
        env={**env, "PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        client = Client(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 120
        while True:
            try:
                if client.http.get(client.base + "/healthz", timeout=5).json()["worker"]["ok"]:
                    break
            except (requests.RequestException, ValueError):
                pass
            if time.monotonic() > deadline:
                raise BenchError("the processes did not start within 120 s")
            time.sleep(0.5)
        signed_in = client.post(
            "/accounts/login/",
            {"username": "demo@wayfarer.local", "password": "wayfarer-demo", "next": ""},
        )
        if not signed_in.url.endswith("/t/demo/"):
            raise BenchError("could not sign in as the demo user")

        log(f"idle: page rounds for {args.idle_seconds} s")
        idle: list[float] = []
        errors: list[str] = []
        until = time.monotonic() + args.idle_seconds
        while time.monotonic() < until:
            client.round(idle, errors)

        log(f"uploading a CSV of {args.rows} rows")
        rows = ["user_id,email,first_name,city"]
        rows += [f"b{i},b{i}@bench.example,Name{i},City{i % 40}" for i in range(args.rows)]
        upload = ("bench.csv", "\n".join(rows).encode(), "text/csv")
        detail = client.post("/t/demo/contacts/import/", {}, files={"file": upload})
        mapping = {"map-0": "user_id", "map-1": "email", "map-2": "first_name"}
        confirmed = client.post(
            detail.url.removeprefix(client.base), {**mapping, "map-3": "attribute"}
        )
        if confirmed.status_code != 200:
            raise BenchError(f"confirming the import answered {confirmed.status_code}")
        began = time.monotonic()
        busy: list[float] = []
        while True:
            client.round(busy, errors)
            job = ContactImport.objects.get(filename="bench.csv")
            if job.status in (ContactImport.Status.DONE, ContactImport.Status.FAILED):
                break
        took = time.monotonic() - began
        if job.status != ContactImport.Status.DONE or job.processed_rows != args.rows:
            raise BenchError(f"the import ended {job.status} at row {job.processed_rows}")
    finally:
        os.killpg(supervisor.pid, signal.SIGTERM)
        supervisor.wait(60)

    idle50, idle95 = statistics.median(idle), percentile(idle, 0.95)
    busy50, busy95 = statistics.median(busy), percentile(busy, 0.95)
    return [
        f"Pages during a {args.rows:,}-row CSV import ({env.get('DATABASE_URL') or 'SQLite'})",
        f"  idle:          median {idle50 * 1000:6.0f} ms, p95 {idle95 * 1000:6.0f} ms"
        f" ({len(idle)} requests)",
        f"  during import: median {busy50 * 1000:6.0f} ms, p95 {busy95 * 1000:6.0f} ms,"
        f" slowest {max(busy) * 1000:.0f} ms ({len(busy)} requests)",
        f"  ratio:         median x{busy50 / idle50:.1f}, p95 x{busy95 / idle95:.1f}",
        f"  import:        {took:.0f} s, {args.rows / took:,.0f} rows/s (pages loaded meanwhile)",
        f"  errors:        {errors[:10] or 'none'}",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    parser.add_argument("--sqlite", action="store_true", help="the embedded default instead")
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/wayfarer_bench_import"
    )
    parser.add_argument("--broker-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--keep", action="store_true", help="keep the database and var dir")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, common.terminated)
    try:
        if args.sqlite:
            var_dir = Path(tempfile.mkdtemp(prefix="wayfarer-bench-"))
            env = {
                k: v
                for k, v in os.environ.items()
                if k not in ("DATABASE_URL", "CELERY_BROKER_URL")
            }
            env.update(WAYFARER_VAR_DIR=str(var_dir), DEBUG="false", LOG_LEVEL="WARNING")
            env["DJANGO_SETTINGS_MODULE"] = "config.settings"
            common.manage(env, "migrate")
            common.django_setup(env)
            report = measure(args, env, var_dir)
        else:
            database = BenchDatabase(args.database_url)

            def environment(var_dir: Path) -> dict[str, str]:
                env = common.django_environment(database, var_dir)
                return {**env, "CELERY_BROKER_URL": args.broker_url}

            with common.django_on_bench_database(
                database, keep=args.keep, environment=environment
            ) as (env, var_dir):
                report = measure(args, env, var_dir)
    except BenchError as exc:
        log(f"could not measure: {exc}")
        return 1
    print("\n".join(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
