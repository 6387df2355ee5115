from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from audience.models import InboxBatch
from ops.models import Heartbeat
from ops.services import heartbeat_record

pytestmark = pytest.mark.django_db


def test_it_reports_degraded_until_worker_and_beat_have_been_seen(client) -> None:
    body = client.get("/healthz").json()
    assert body["status"] == "degraded"
    assert body["database"]["ok"] and body["broker"]["ok"]
    assert body["beat"] == {"ok": False, "last_seen": None, "age_seconds": None}


def test_it_reports_ok_when_everything_is_alive(client) -> None:
    heartbeat_record(process=Heartbeat.Process.BEAT)
    heartbeat_record(process=Heartbeat.Process.WORKER)
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response["Cache-Control"].startswith("max-age=0")


def test_it_calls_a_silent_worker_stale(client, settings) -> None:
    heartbeat_record(process=Heartbeat.Process.BEAT)
    heartbeat_record(process=Heartbeat.Process.WORKER)
    Heartbeat.objects.filter(process="worker").update(
        seen_at=timezone.now() - timedelta(seconds=settings.HEALTH_STALE_AFTER_SECONDS + 5)
    )
    body = client.get("/healthz").json()
    assert body["status"] == "degraded"
    assert body["worker"]["ok"] is False and body["beat"]["ok"] is True


def test_it_answers_503_when_the_broker_is_unreachable(client, settings) -> None:
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["status"] == "down"
    assert response.json()["broker"]["ok"] is False


def _alive() -> None:
    heartbeat_record(process=Heartbeat.Process.BEAT)
    heartbeat_record(process=Heartbeat.Process.WORKER)


def _accepted(world, *, seconds_ago: float, failed: bool = False) -> InboxBatch:  # type: ignore[no-untyped-def]
    return InboxBatch.objects.create(
        tenant=world.acme,
        source="http",
        received_at=timezone.now() - timedelta(seconds=seconds_ago),
        size=1,
        messages="[]",
        failed_at=timezone.now() if failed else None,
        error="ValueError: boom" if failed else "",
    )


def test_it_shows_the_ingest_backlog_and_stays_ok_while_it_is_fresh(client, world) -> None:
    _alive()
    _accepted(world, seconds_ago=3)
    _accepted(world, seconds_ago=1)
    body = client.get("/healthz").json()
    assert body["status"] == "ok"
    assert body["ingest"]["ok"] is True
    assert body["ingest"]["waiting"] == 2 and body["ingest"]["failed"] == 0
    assert 2 < body["ingest"]["oldest_waiting_seconds"] < 60


def test_it_reports_degraded_when_accepted_events_wait_too_long(client, world, settings) -> None:
    _alive()
    _accepted(world, seconds_ago=settings.HEALTH_STALE_AFTER_SECONDS + 30)
    body = client.get("/healthz").json()
    assert body["status"] == "degraded"
    assert body["ingest"]["ok"] is False


def test_it_reports_degraded_while_a_batch_is_set_aside_as_failed(client, world) -> None:
    _alive()
    _accepted(world, seconds_ago=1, failed=True)
    body = client.get("/healthz").json()
    assert body["status"] == "degraded"
    assert body["ingest"] == {
        "ok": False,
        "waiting": 0,
        "oldest_waiting_seconds": None,
        "failed": 1,
    }
