"""A long CSV import shares the database: each chunk is a short transaction (SQLite has one
writer at a time, and pages that save something wait for it), the task hands its worker back
between slices, and an import stopped anywhere has stored exactly the rows it reports."""

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


def slow_upserts(monkeypatch: pytest.MonkeyPatch, *, seconds: float) -> list[str]:
    """Make every row take `seconds` (a big import on a busy machine); returns the emails seen."""
    seen: list[str] = []
    real = csv_io.contact_upsert

    def upsert(**kwargs: Any) -> Any:
        seen.append(kwargs["email"])
        time.sleep(seconds)
        return real(**kwargs)

    monkeypatch.setattr(csv_io, "contact_upsert", upsert)
    return seen


def test_it_commits_an_import_in_short_transactions(
    world, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    monkeypatch.setattr(csv_io, "WRITE_SLICE_SECONDS", 0.05)
    slow_upserts(monkeypatch, seconds=0.03)
    job = queued_import(world.acme, rows=10)

    with django_capture_on_commit_callbacks() as committed:
        job = csv_io.import_run(tenant=world.acme, job=job)

    # One announcement per chunk, and no chunk of more than two rows: the 500-row chunks of
    # before held SQLite's only write lock for seconds, and other pages failed meanwhile.
    assert len(committed) >= 5
    assert (job.status, job.processed_rows, job.created_count) == ("done", 10, 10)
    assert Contact.objects.filter(tenant=world.acme).count() == 10


def test_it_resumes_an_interrupted_import_without_losing_or_repeating_rows(
    world, monkeypatch
) -> None:
    monkeypatch.setattr(csv_io, "WRITE_SLICE_SECONDS", 0.0)  # one row per transaction
    seen = slow_upserts(monkeypatch, seconds=0)
    job = queued_import(world.acme, rows=6)
    real = csv_io.contact_upsert

    def dies_at_the_fourth_row(**kwargs: Any) -> Any:
        if kwargs["email"] == "p3@example.com":
            raise OperationalError("database is locked")  # or the worker killed right here
        return real(**kwargs)

    monkeypatch.setattr(csv_io, "contact_upsert", dies_at_the_fourth_row)
    with pytest.raises(OperationalError):
        csv_io.import_run(tenant=world.acme, job=job)
    job.refresh_from_db()
    # The progress the person sees is exactly what is stored.
    assert (job.processed_rows, job.created_count) == (3, 3)
    assert Contact.objects.filter(tenant=world.acme).count() == 3

    monkeypatch.setattr(csv_io, "contact_upsert", real)
    job = csv_io.import_run(tenant=world.acme, job=job)
    assert (job.status, job.processed_rows, job.created_count, job.updated_count) == (
        "done",
        6,
        6,
        0,
    )
    assert seen == [f"p{i}@example.com" for i in range(6)]  # each row stored once
    assert Contact.objects.filter(tenant=world.acme).count() == 6


def test_it_gives_the_worker_back_between_slices_and_continues(
    world, monkeypatch, eager_tasks
) -> None:
    monkeypatch.setattr(csv_io, "WRITE_SLICE_SECONDS", 0.0)
    monkeypatch.setattr(tasks, "DRAIN_SECONDS", 0.0)  # every task run imports one chunk
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
