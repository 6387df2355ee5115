from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

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
