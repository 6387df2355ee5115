"""A real Celery worker and beat, started as the Procfile starts them, against the configured
broker (file system by default, Redis when CELERY_BROKER_URL says so) and the test database.

The tests commit their rows (transactional_db) so that the worker and beat processes see them, and
read what those processes wrote back through the ORM and /healthz.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from ops.models import Heartbeat
from ops.tasks import worker_heartbeat
from tests.e2e.conftest import REPO_ROOT, VENV_BIN, ManagedProcess, ProcessRunner, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

QUEUES = "default,ingest,engine,email,push"  # as in the Procfile


def database_url(settings_dict: dict[str, Any]) -> str:
    """The DATABASE_URL that makes another process use this (test) database."""
    engine = settings_dict["ENGINE"]
    if engine == "django.db.backends.sqlite3":
        return f"sqlite:///{Path(settings_dict['NAME']).resolve()}"
    if engine in {"django.db.backends.postgresql", "tenants.postgresql"}:
        user = quote(settings_dict.get("USER") or "", safe="")
        password = quote(settings_dict.get("PASSWORD") or "", safe="")
        credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        host = quote(settings_dict.get("HOST") or "", safe="")  # a socket directory is a path
        port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
        return f"postgres://{credentials}{host}{port}/{quote(settings_dict['NAME'], safe='')}"
    raise NotImplementedError(f"No DATABASE_URL for {engine}")


@pytest.fixture
def celery_env(transactional_db: None) -> dict[str, str]:
    """The test process's environment, pointed at the test database."""
    test_db = connection.settings_dict
    assert test_db["NAME"] != ":memory:" and "mode=memory" not in str(test_db["NAME"]), (
        "The worker cannot see an in-memory test database"
    )
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url(test_db),
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        WAYFARER_VAR_DIR=str(settings.VAR_DIR),
        CELERY_TASK_ALWAYS_EAGER="false",
        # The working directory is a tmp dir (see start_celery); the code is still imported
        # from the checkout.
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")])),
    )
    return env


def start_celery(
    processes: ProcessRunner, name: str, arguments: list[str], env: dict[str, str], cwd: Path
) -> ManagedProcess:
    # The file broker keeps its exchange tables in ./control, relative to the working directory:
    # run in tmp so that tests never write into the checkout.
    command = [str(VENV_BIN / "celery"), "-A", "config", *arguments, "-l", "info"]
    return processes.start(name, command, env=env, cwd=cwd)


def start_worker(processes: ProcessRunner, env: dict[str, str], tmp_path: Path) -> ManagedProcess:
    # A node name of its own keeps this worker apart from any other in Celery's control messages.
    node = f"e2e-{uuid.uuid4().hex[:8]}@%h"
    arguments = ["worker", "-P", "solo", "-Q", QUEUES, "-n", node]
    return start_celery(processes, "celery worker", arguments, env, tmp_path)


def wait_for_worker_ready(processes: ProcessRunner) -> None:
    """The worker records a heartbeat itself when it is ready to consume."""
    wait_for(
        lambda: Heartbeat.objects.filter(process=Heartbeat.Process.WORKER).exists(),
        timeout=60,
        what="the worker to report ready",
        runner=processes,
    )


def start_beat(processes: ProcessRunner, env: dict[str, str], tmp_path: Path) -> ManagedProcess:
    # The scheduler comes from settings (CELERY_BEAT_SCHEDULER); these files stay in tmp.
    arguments = [
        "beat",
        "--schedule",
        str(tmp_path / "celerybeat-schedule"),
        "--pidfile",
        str(tmp_path / "celerybeat.pid"),
    ]
    return start_celery(processes, "celery beat", arguments, env, tmp_path)


def worker_heartbeat_after(moment: object) -> Heartbeat | None:
    return Heartbeat.objects.filter(process=Heartbeat.Process.WORKER, seen_at__gt=moment).first()


def test_it_runs_a_task_published_by_the_app_on_a_real_worker(
    processes: ProcessRunner, celery_env: dict[str, str], tmp_path: Path
) -> None:
    worker = start_worker(processes, celery_env, tmp_path)
    # Only after the worker's own ready heartbeat can a newer heartbeat prove that the
    # published task ran (no beat runs in this test).
    wait_for_worker_ready(processes)

    published_at = timezone.now()
    task_id = worker_heartbeat.delay().id

    heartbeat = wait_for(
        lambda: worker_heartbeat_after(published_at),
        timeout=60,
        what="the worker to run ops.tasks.worker_heartbeat",
        runner=processes,
    )
    assert heartbeat.seen_at > published_at
    # Our message, not one left in the queue by an earlier run.
    wait_for(
        lambda: f"ops.tasks.worker_heartbeat[{task_id}] succeeded" in worker.log(),
        timeout=10,
        what=f"the worker to log task {task_id} as succeeded",
        runner=processes,
    )


def test_it_reports_ok_on_healthz_while_worker_and_beat_run(
    processes: ProcessRunner, celery_env: dict[str, str], tmp_path: Path, client: Any
) -> None:
    healthz = client.get("/healthz").json()
    assert healthz["status"] == "degraded", "nothing has run yet, so beat and worker are stale"

    start_worker(processes, celery_env, tmp_path)
    beat = start_beat(processes, celery_env, tmp_path)

    def healthz_ok() -> dict[str, Any] | None:
        report = client.get("/healthz").json()
        return report if report["status"] == "ok" else None

    report = wait_for(healthz_ok, timeout=60, what="/healthz to say ok", runner=processes)
    assert report["database"]["ok"] is True
    assert report["database"]["vendor"] == connection.vendor
    assert report["broker"]["ok"] is True
    assert report["broker"]["transport"] == settings.CELERY_BROKER_URL.split("://")[0]
    assert report["beat"]["ok"] is True
    assert report["worker"]["ok"] is True

    # And the heartbeat keeps coming: beat sends ops.tasks.worker_heartbeat every 15 s and the
    # worker runs it (the worker's own start-up heartbeat is older than this moment).
    ok_at = timezone.now()
    wait_for(
        lambda: (
            "Sending due task ops.worker-heartbeat" in beat.log() and worker_heartbeat_after(ok_at)
        ),
        timeout=40,
        what="beat to send a heartbeat task that the worker runs",
        runner=processes,
        interval=0.5,
    )
