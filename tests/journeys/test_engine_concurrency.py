"""The engine under concurrency and crashes (PostgreSQL): two workers at once never decide a
message twice nor skip anyone; a worker killed with SIGKILL mid-batch loses nothing; a batch
costs the same statements whatever its size."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audience.models import Contact
from journeys import engine
from journeys.models import Enrollment, JourneyVersion, Step
from messaging.models import Delivery
from tests.e2e.test_celery_worker import database_url

REPO = Path(__file__).resolve().parents[2]
postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="row locks: PostgreSQL (SQLite takes turns)"
)


def due_at_wait(world: Any, journey_factory: Any, email: Any, n: int, journey: Any = None) -> Any:
    """`n` contacts waiting at a one-hour delay that ended, before a split and an email."""
    journey = journey or journey_factory(
        {
            "t": ("trigger_api", {}),
            "w": ("wait_delay", {"amount": 1, "unit": "hours"}),
            "s": ("branch_split", {"percentages": [50, 50]}),
            "m": ("action_email", {"template": str(email.public_id)}),
        },
        "t.next>w w.next>s s.a>m s.b>m",
    )
    version = JourneyVersion.objects.get(journey=journey)
    start = Contact.objects.count()
    contacts = Contact.objects.bulk_create(
        [Contact(tenant=world.acme, email=f"c{start + i}@x.io") for i in range(n)]
    )
    past = timezone.now() - timedelta(hours=2)
    Enrollment.objects.bulk_create(
        [
            Enrollment(
                tenant=world.acme,
                journey=journey,
                version=version,
                contact=c,
                node_key="w",
                arrived_at=past,
                due_at=past + timedelta(hours=1),
                entered_at=past,
            )
            for c in contacts
        ]
    )
    return journey


@pytest.mark.django_db
def test_a_batch_costs_the_same_statements_whatever_its_size(
    world: Any, journey_factory: Any, email: Any, django_assert_num_queries: Any
) -> None:
    journey = due_at_wait(world, journey_factory, email, 3)
    with CaptureQueriesContext(connection) as small:
        assert engine.advance_due() == 3
    due_at_wait(world, journey_factory, email, 40, journey=journey)
    with django_assert_num_queries(len(small.captured_queries)):
        assert engine.advance_due() == 40
    assert Delivery.objects.count() == 43
    # 17: the claim reads the live journeys' ids, locks due ids, then loads the rows and their
    # contacts (engine._claim says why: each keeps the claim's plan bounded).
    assert len(small.captured_queries) <= 17


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_decide_each_message_once(
    world: Any, journey_factory: Any, email: Any
) -> None:
    due_at_wait(world, journey_factory, email, 600)
    counts: list[int] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            while (done := engine.advance_due(limit=50)) > 0:
                counts.append(done)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert sum(counts) == 600  # each enrollment advanced by exactly one worker
    assert Enrollment.objects.filter(state="completed").count() == 600
    assert Delivery.objects.count() == 600
    assert Step.objects.filter(result="sent").count() == 600  # decided once, not ignored twice


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_batch_loses_nothing_and_sends_nothing_twice(
    world: Any, journey_factory: Any, email: Any
) -> None:
    due_at_wait(world, journey_factory, email, 30)
    env = {
        **os.environ,
        "DATABASE_URL": database_url(connection.settings_dict),
        "WAYFARER_ENGINE_TEST_PAUSE": "0.1",
        "PYTHONPATH": str(REPO),
    }
    script = (
        "import django; django.setup();"
        "from core import rls; rls.process_default_set(rls.SYSTEM);"
        "from journeys import engine; print('started', flush=True); engine.advance_due()"
    )
    worker = subprocess.Popen(
        [sys.executable, "-c", script], env=env, cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    assert worker.stdout is not None
    assert worker.stdout.readline().strip() == "started"
    time.sleep(1.5)  # mid-batch: a dozen enrollments run, nothing committed
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(10)
    assert Delivery.objects.count() == 0  # decided in the batch's transaction: rolled back

    deadline = time.monotonic() + 20
    while Enrollment.objects.filter(state__in=["active", "waiting"]).exists():
        engine.advance_due()  # rows the dead backend still holds are skipped until it is gone
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert Enrollment.objects.filter(state="completed").count() == 30
    assert Delivery.objects.count() == 30
    assert Step.objects.filter(result="sent").count() == 30
