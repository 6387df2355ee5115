"""A long CSV import shares the database: each slice is a short transaction (SQLite has one
writer at a time, and pages that save something wait for it) sized by the measured speed, the
task hands its worker back between slices, and an import stopped anywhere has stored exactly the
rows it reports."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.db import OperationalError

from audience import csv_io, tasks
from audience.models import Contact, ContactImport
from tenants.models import Tenant

pytestmark = pytest.mark.django_db


def queued_import(tenant: Tenant, rows: int) -> ContactImport:
    text = "email,first name\n" + "".join(f"p{i}@example.com,P{i}\n" for i in range(rows))
    job = csv_io.import_create(tenant=tenant, filename="people.csv", data=text.encode(), actor=None)
    return csv_io.import_confirm(
        tenant=tenant, job=job, mapping={"email": "email", "first name": "first_name"}
    )


def slice_seconds(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """How long a slice's transaction may last, on either database."""
    monkeypatch.setattr(csv_io, "WRITE_SLICE_SECONDS", seconds)
    monkeypatch.setattr(csv_io, "WRITE_SLICE_SECONDS_POSTGRESQL", seconds)


def slow_stores(monkeypatch: pytest.MonkeyPatch, *, seconds: float) -> list[list[str]]:
    """Make every row take `seconds` to store (a big import on a busy machine); returns the
    emails of each slice stored."""
    slices: list[list[str]] = []
    real = csv_io.contacts_store

    def store(**kwargs: Any) -> Any:
        slices.append([row.email for row in kwargs["rows"]])
        time.sleep(seconds * len(kwargs["rows"]))
        return real(**kwargs)

    monkeypatch.setattr(csv_io, "contacts_store", store)
    return slices


def test_it_commits_an_import_in_short_transactions(
    world, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    slice_seconds(monkeypatch, 0.15)
    monkeypatch.setattr(csv_io, "FIRST_SLICE_ROWS", 4)
    slices = slow_stores(monkeypatch, seconds=0.1)
    job = queued_import(world.acme, rows=12)

    with django_capture_on_commit_callbacks() as committed:
        job = csv_io.import_run(tenant=world.acme, job=job)

    # Rows take 100 ms each here: after the first slice (4 rows, 400 ms) the slices shrink to
    # what fits in 150 ms, one row (the progress update's own time, up to 200 ms on a busy
    # machine, does not change that). Big slices held SQLite's only write lock for seconds, and
    # other pages failed meanwhile. One announcement per slice.
    assert [len(s) for s in slices] == [4] + [1] * 8
    assert len(committed) == len(slices)
    assert (job.status, job.processed_rows, job.created_count) == ("done", 12, 12)
    assert Contact.objects.filter(tenant=world.acme).count() == 12


def test_slices_grow_while_the_database_keeps_up(world, monkeypatch) -> None:
    monkeypatch.setattr(csv_io, "MAX_SLICE_ROWS", 1000)
    slice_seconds(monkeypatch, 60.0)  # any machine keeps up
    slices = slow_stores(monkeypatch, seconds=0)
    job = csv_io.import_run(tenant=world.acme, job=queued_import(world.acme, rows=3000))

    # At most fourfold at a time, up to the largest slice; the file read in order, once.
    sizes = [len(s) for s in slices]
    assert sizes[:3] == [100, 400, 1000] and max(sizes) == 1000 and sum(sizes) == 3000
    assert [e for s in slices for e in s] == [f"p{i}@example.com" for i in range(3000)]
    assert (job.status, job.created_count) == ("done", 3000)


def test_it_resumes_an_interrupted_import_without_losing_or_repeating_rows(
    world, monkeypatch
) -> None:
    slice_seconds(monkeypatch, 0.0)  # one row per transaction
    monkeypatch.setattr(csv_io, "FIRST_SLICE_ROWS", 1)
    slices = slow_stores(monkeypatch, seconds=0)
    job = queued_import(world.acme, rows=6)
    real = csv_io.contacts_store

    def dies_at_the_fourth_row(**kwargs: Any) -> Any:
        if any(row.email == "p3@example.com" for row in kwargs["rows"]):
            raise OperationalError("database is locked")  # or the worker killed right here
        return real(**kwargs)

    monkeypatch.setattr(csv_io, "contacts_store", dies_at_the_fourth_row)
    with pytest.raises(OperationalError):
        csv_io.import_run(tenant=world.acme, job=job)
    job.refresh_from_db()
    # The progress the person sees is exactly what is stored.
    assert (job.processed_rows, job.created_count) == (3, 3)
    assert Contact.objects.filter(tenant=world.acme).count() == 3

    monkeypatch.setattr(csv_io, "contacts_store", real)
    job = csv_io.import_run(tenant=world.acme, job=job)
    assert (job.status, job.processed_rows, job.created_count, job.updated_count) == (
        "done",
        6,
        6,
        0,
    )
    assert [e for s in slices for e in s] == [f"p{i}@example.com" for i in range(6)]  # once each
    assert Contact.objects.filter(tenant=world.acme).count() == 6


def test_it_gives_the_worker_back_between_slices_and_continues(
    world, monkeypatch, eager_tasks
) -> None:
    slice_seconds(monkeypatch, 0.0)
    monkeypatch.setattr(csv_io, "FIRST_SLICE_ROWS", 1)
    monkeypatch.setattr(tasks, "DRAIN_SECONDS", 0.0)  # every task run imports one slice
    runs: list[int] = []
    real = csv_io.import_run

    def counted(**kwargs: Any) -> ContactImport:
        runs.append(kwargs["job"].processed_rows)
        return real(**kwargs)

    monkeypatch.setattr(csv_io, "import_run", counted)
    job = queued_import(world.acme, rows=4)

    tasks.contact_import_run.delay(job.pk)

    job.refresh_from_db()
    assert (job.status, job.processed_rows, job.created_count) == ("done", 4, 4)
    # Four task runs, each starting where the previous one stopped (and a last one that
    # finds nothing left and marks the import done).
    assert runs == [0, 1, 2, 3, 4]
