#!/usr/bin/env python
# ruff: noqa: T201  (a command-line report: printing is its job)
"""CSV import benchmark: how fast a contacts file goes in, whether the speed holds over the file,
against the database's own speed for the same rows.

    .venv/bin/python bench/csv_import.py [--rows N] [--small] [--sqlite] [--database-url URL]
                                         [--broker-url URL] [--keep]

One run, on its own database (nothing touches the development data):

1. PostgreSQL (default): recreates `wayfarer_bench_csv` on 127.0.0.1 (the name must contain
   `bench`: it is dropped afterwards), migrates it; Celery tasks the import queues (lifecycle
   stages after each slice) go to the Redis database of `--broker-url`, which is emptied at the
   end. `--sqlite`: the embedded default (`make run`), SQLite and the file broker in a temporary
   var dir.
2. Creates a team and, untimed, 10% of the file's people as contacts already (found by email:
   the import updates them). Writes a CSV of N rows as a shop's CRM exports it: customer id,
   email, names, phone, birthday as MM/DD/YYYY (1% unreadable: each is left out of its row with
   a warning), newsletter yes/no, plan, city, signup date (custom attributes).
3. **Import**: `csv_io.import_create` (upload, with the date format chosen), `import_confirm`,
   then `csv_io.import_run` in 20-second runs, as the `contact_import_run` task drives it
   (`audience/tasks.py`). The time of every slice is recorded: the rows/s of each tenth of the
   file show whether the import slows down as it goes.
4. **Re-import**: the same file again: every row now updates its contact (none is duplicated).
5. **Baseline**: the same N rows written straight into `audience_contact` for a second team with
   the database's fastest path, in one transaction: COPY on PostgreSQL, executemany of one INSERT
   on SQLite. The import does more (reads, identity rows, consent stamps, progress, the report),
   so the ratio says what share of the database's raw speed it keeps.
6. Prints the report (MET / MISSED against the targets) and drops the database.

Targets (issue 18, item 6; 2-core machine): >= 2,000 rows/s on PostgreSQL, >= 500 rows/s on
SQLite, flat over the file (every tenth after the first at >= 70% of the median tenth).

Exit status: 0 when the measurement completed, whether or not the targets were met; 1 when it
could not run (or the stored contacts are wrong); 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
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
    manage,
    python_speed,
    terminated,
    verdict,
)

# With bench/ first on sys.path, as it is for a script, `import segments` (an app) would find
# bench/segments.py: the project's root comes first instead (as bench/segments.py does).
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/wayfarer_bench_csv"
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/14"
SMALL_ROWS = 10_000
TARGETS = {"postgresql": 2_000, "sqlite": 500}
FLAT_SHARE = 0.7
KNOWN_SHARE = 0.1  # of the file's people who are contacts already
BAD_DATES = 0.01

FIRST = ["Anna", "Ben", "Clara", "David", "Emma", "Felix", "Greta", "Hugo", "Ines", "Jonas"]
LAST = ["Berg", "Dupont", "Jansen", "Keller", "Lind", "Moreau", "Novak", "Smith", "Vogel"]
CITIES = ["Berlin", "Paris", "Amsterdam", "London", "Stockholm", "Vienna", "Lyon", "Hamburg"]
PLANS = ["free"] * 50 + ["basic"] * 25 + ["pro"] * 18 + ["enterprise"] * 7
UNREADABLE = ["31/12/1985", "yesterday", "1985-13-01", "02/30/1990"]
HEADER = "Customer ID,Email,First name,Last name,Phone,Birthday,Newsletter,Plan,City,Signed up"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Wayfarer CSV import benchmark: rows/s over the file against raw inserts.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--rows", type=int, default=50_000, help="rows of the file")
    parser.add_argument("--small", action="store_true", help=f"a quick run: {SMALL_ROWS:,} rows")
    parser.add_argument(
        "--sqlite", action="store_true", help="the embedded default: SQLite, file broker"
    )
    parser.add_argument(
        "--database-url",
        default=DEFAULT_DATABASE_URL,
        help="the bench database; it is DROPPED and recreated (host must be 127.0.0.1)",
    )
    parser.add_argument(
        "--broker-url",
        default=DEFAULT_BROKER_URL,
        help="Redis database for the tasks the import queues; it is emptied",
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed of the file")
    parser.add_argument(
        "--keep", action="store_true", help="keep the bench database and temporary files"
    )
    args = parser.parse_args(argv)
    if args.small:
        args.rows = SMALL_ROWS
    if args.rows < 1_000:
        parser.error("--rows must be at least 1,000")
    if not args.sqlite:
        try:
            args.database = BenchDatabase(args.database_url)
        except BenchError as exc:
            parser.error(str(exc))
    return args


# --- the file ----------------------------------------------------------------------------------


def person(n: int, rng: random.Random) -> dict[str, str]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    month, day, year = rng.randint(1, 12), rng.randint(1, 28), rng.randint(1950, 2005)
    birthday = f"{month:02d}/{day:02d}/{year}"
    if rng.random() < BAD_DATES:  # none of these is a date written MM/DD/YYYY (or ISO)
        birthday = rng.choice(UNREADABLE)
    return {
        "user_id": f"crm-{n:07d}",
        "email": f"{first}.{last}.{n}@example.com".lower(),
        "first": first,
        "last": last,
        "phone": f"+49 30 {rng.randint(1_000_000, 9_999_999)}",
        "birthday": birthday,
        "newsletter": rng.choice(["yes", "no", "yes", ""]),
        "plan": rng.choice(PLANS),
        "city": rng.choice(CITIES),
        "signed_up": f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
    }


def csv_text(people: list[dict[str, str]]) -> str:
    lines = [HEADER]
    for p in people:
        lines.append(",".join(p.values()))
    return "\n".join(lines) + "\n"


MAPPING = {
    "Customer ID": "user_id",
    "Email": "email",
    "First name": "first_name",
    "Last name": "last_name",
    "Phone": "phone",
    "Birthday": "birthday",
    "Newsletter": "email_consent",
    "Plan": "attribute",
    "City": "attribute",
    "Signed up": "attribute",
}


# --- the measurements --------------------------------------------------------------------------


class SliceClock:
    """Records (seconds since start, rows so far) after every slice of the import."""

    def __init__(self) -> None:
        self.marks: list[tuple[float, int]] = []
        self.started = 0.0

    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        from audience import csv_io

        real = csv_io._import_slice

        def timed(**kwargs: Any) -> tuple[float, float]:
            took = real(**kwargs)
            rows = (self.marks[-1][1] if self.marks else 0) + len(kwargs["batch"])
            self.marks.append((time.perf_counter() - self.started, rows))
            return took

        csv_io._import_slice = timed  # type: ignore[assignment]
        self.started = time.perf_counter()
        try:
            yield
        finally:
            csv_io._import_slice = real  # type: ignore[assignment]

    def tenths(self, total: int) -> list[float]:
        """Rows/s of each tenth of the file (by the slices ending in it)."""
        rates, last_t, last_rows = [], 0.0, 0
        for k in range(1, 11):
            bound = total * k // 10
            t, rows = next((m for m in self.marks if m[1] >= bound), self.marks[-1])
            if rows > last_rows and t > last_t:
                rates.append((rows - last_rows) / (t - last_t))
                last_t, last_rows = t, rows
        return rates


def import_file(tenant: Any, text: str, name: str) -> tuple[float, float, Any, SliceClock]:
    from audience import csv_io
    from audience.models import ContactImport
    from audience.tasks import DRAIN_SECONDS

    job = csv_io.import_create(
        tenant=tenant, filename=name, data=text.encode(), actor=None, date_format="mdy"
    )
    job = csv_io.import_confirm(tenant=tenant, job=job, mapping=MAPPING)
    clock = SliceClock()
    with clock.watching():
        began, cpu = time.perf_counter(), time.process_time()
        # As the task drives it: runs of DRAIN_SECONDS, each resuming after the rows done.
        while job.status != ContactImport.Status.DONE:
            ContactImport.objects.filter(pk=job.pk).update(status=ContactImport.Status.RUNNING)
            job = csv_io.import_run(tenant=tenant, job=job, seconds=DRAIN_SECONDS)
        seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
    return seconds, cpu, job, clock


def baseline(vendor: str, tenant_id: int, people: list[dict[str, str]], target: str) -> float:
    """Seconds to write the same rows into audience_contact with the database's fastest path."""
    columns = [
        "tenant_id",
        "public_id",
        "user_id",
        "email",
        "phone",
        "first_name",
        "last_name",
        "timezone",
        "locale",
        "birthday_month",
        "birthday_day",
        "birth_year",
        "attributes",
        "email_consent",
        "email_consent_at",
        "email_consent_source",
        "push_consent",
        "push_consent_source",
        "lifecycle_stage",
        "cart",
        "wishlist",
        "recently_viewed",
        "created_at",
    ]
    import orjson

    began = time.perf_counter()
    stamp = datetime.now(UTC)
    rows = []
    for p in people:
        month, day, year = [*p["birthday"].split("/"), "", "", ""][:3]
        ok = month.isdigit() and day.isdigit() and year.isdigit()
        rows.append(
            (
                tenant_id,
                str(uuid.uuid4()),
                p["user_id"],
                p["email"],
                p["phone"],
                p["first"],
                p["last"],
                "",
                "",
                int(month) if ok else None,
                int(day) if ok else None,
                int(year) if ok else None,
                orjson.dumps(
                    {"Plan": p["plan"], "City": p["city"], "Signed up": p["signed_up"]}
                ).decode(),
                "granted" if p["newsletter"] == "yes" else "unknown",
                stamp if p["newsletter"] == "yes" else None,
                "import:bench.csv",
                "unknown",
                "",
                "awareness",
                "[]",
                "[]",
                "[]",
                stamp,
            )
        )
    if vendor == "postgresql":
        with psycopg.connect(target) as conn:
            with conn.cursor() as cur:
                copy_sql = f"COPY audience_contact ({', '.join(columns)}) FROM STDIN"
                with cur.copy(copy_sql) as copy:
                    for row in rows:
                        copy.write_row(row)
            conn.commit()
    else:
        conn = sqlite3.connect(target)
        try:
            placeholders = ", ".join("?" for _ in columns)
            with conn:
                conn.executemany(
                    f"INSERT INTO audience_contact ({', '.join(columns)}) VALUES ({placeholders})",
                    [
                        tuple(v.isoformat() if isinstance(v, datetime) else v for v in r)
                        for r in rows
                    ],
                )
        finally:
            conn.close()
    return time.perf_counter() - began


def _sqlite_value(value: object) -> object:
    return value.isoformat() if isinstance(value, datetime) else value


def measure(args: argparse.Namespace, vendor: str, target_db: str) -> int:
    from audience.models import Contact, Identity
    from tenants.services import tenant_create

    rng = random.Random(args.seed)
    people = [person(n, rng) for n in range(args.rows)]
    text = csv_text(people)
    tenant = tenant_create(name="Bench shop", slug="bench-shop")
    other = tenant_create(name="Baseline shop", slug="baseline-shop")
    known = rng.sample(people, int(len(people) * KNOWN_SHARE))
    Contact.objects.bulk_create(
        Contact(tenant=tenant, email=p["email"], first_name="Old") for p in known
    )
    log(f"file of {args.rows:,} rows ({len(text) / 1e6:.1f} MB), {len(known):,} people known")

    log("import")
    first_seconds, first_cpu, job, clock = import_file(tenant, text, "bench.csv")
    log(f"import: {first_seconds:.1f} s")
    log("re-import of the same file")
    again_seconds, _, again, _ = import_file(tenant, text, "bench-again.csv")
    log(f"re-import: {again_seconds:.1f} s")
    log("baseline")
    base_seconds = baseline(vendor, other.pk, people, target_db)

    contacts = Contact.objects.filter(tenant=tenant).count()
    identities = Identity.objects.filter(tenant=tenant).count()
    bad_dates = sum(1 for p in people if p["birthday"] in UNREADABLE)
    checks = {
        "every row imported": job.processed_rows == args.rows and job.failed_count == 0,
        "one contact per person": contacts == args.rows,
        "one user id per contact": identities == args.rows,
        "known people updated, not duplicated": job.updated_count == len(known),
        "re-import updates every row": again.updated_count == args.rows
        and again.created_count == 0,
        "unreadable birthdays left out with a warning": job.warning_count == bad_dates,
    }
    rate, again_rate = args.rows / first_seconds, args.rows / again_seconds
    base_rate = args.rows / base_seconds
    tenths = clock.tenths(args.rows)
    typical = statistics.median(tenths[1:]) if len(tenths) > 1 else tenths[0]
    slowest = min(tenths[1:]) if len(tenths) > 1 else tenths[0]
    flat = slowest >= FLAT_SHARE * typical
    target = TARGETS[vendor]

    machine = (
        machine_description("").replace("PostgreSQL ", f"SQLite {sqlite3.sqlite_version}")
        if vendor == "sqlite"
        else machine_description(args.database.server_version())
    )
    print()
    print("Wayfarer CSV import benchmark")
    print(f"  machine:    {machine}")
    print("\n".join(conditions_lines(args.load_at_start, args.python_speed, "lower figures")))
    print(
        f"  file:       {args.rows:,} rows, {len(text) / 1e6:.1f} MB, 10 columns (3 custom"
        f" attributes), birthdays MM/DD/YYYY with {bad_dates:,} unreadable;"
        f" {len(known):,} people known by email before"
    )
    sizes = [b - a for (_, a), (_, b) in zip([(0, 0), *clock.marks], clock.marks, strict=False)]
    print(
        f"  slices:     {len(clock.marks):,}, {min(sizes):,} to {max(sizes):,} rows"
        f" (median {statistics.median(sizes):,.0f})"
    )
    print()
    lines = [
        ("import rows/s", f"{rate:,.0f}", f">= {target:,}", verdict(rate >= target)),
        ("  time for the file", f"{first_seconds:,.1f} s", "", ""),
        (
            "  rows per CPU second of the importing process",
            f"{args.rows / first_cpu:,.0f}",
            "",
            "",
        ),
        (
            "  slowest tenth / median tenth",
            f"{slowest:,.0f} / {typical:,.0f} rows/s",
            f">= {FLAT_SHARE:.0%}",
            verdict(flat),
        ),
        ("re-import rows/s (all updates)", f"{again_rate:,.0f}", "", ""),
        (
            f"baseline rows/s ({'COPY' if vendor == 'postgresql' else 'executemany'})",
            f"{base_rate:,.0f}",
            "the reference",
            "",
        ),
        ("import / baseline", f"{rate / base_rate:.0%}", "", ""),
        ("re-import / baseline", f"{again_rate / base_rate:.0%}", "", ""),
    ]
    width = max(len(label) for label, *_ in lines) + 2
    for label, value, goal, met in lines:
        print(f"  {label:<{width}}{value:>22}  {goal:<14}{met}")
    print("  rows/s by tenth of the file: " + ", ".join(f"{r:,.0f}" for r in tenths))
    print()
    for name, ok in checks.items():
        print(f"  check: {name}: {'ok' if ok else 'FAILED'}")
    return 0 if all(checks.values()) else 1


@contextlib.contextmanager
def sqlite_setup(keep: bool) -> Iterator[str]:
    var_dir = Path(tempfile.mkdtemp(prefix="wayfarer-bench-csv-"))
    (var_dir / "static").mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")},
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "WAYFARER_VAR_DIR": str(var_dir),
        "DEBUG": "false",
        "SECRET_KEY": "bench-" + uuid.uuid4().hex,
        "LOG_LEVEL": "WARNING",
    }
    try:
        log("manage.py migrate (SQLite)")
        manage(env, "migrate")
        django_setup(env)
        yield str(var_dir / "wayfarer.sqlite3")
    finally:
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        if keep:
            log(f"kept {var_dir}")
        else:
            shutil.rmtree(var_dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.load_at_start = os.getloadavg()[0]
    args.python_speed = python_speed()
    signal.signal(signal.SIGTERM, terminated)
    try:
        if args.sqlite:
            with sqlite_setup(args.keep) as path:
                return measure(args, "sqlite", path)

        def environment(var_dir: Path) -> dict[str, str]:
            return {
                **django_environment(args.database, var_dir),
                "CELERY_BROKER_URL": args.broker_url,
            }

        try:
            with django_on_bench_database(args.database, keep=args.keep, environment=environment):
                return measure(args, "postgresql", args.database.url)
        finally:
            with contextlib.suppress(Exception):
                import redis

                redis.Redis.from_url(args.broker_url).flushdb()
    except (BenchError, psycopg.Error) as exc:
        print(f"\nbench/csv_import.py: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
