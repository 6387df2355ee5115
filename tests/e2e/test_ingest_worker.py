"""The ingestion journey through real processes: an HTTP client posts to a live server, which
accepts into the inbox and wakes the ingest worker; a real Celery worker records the events."""

from __future__ import annotations

import base64
import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from audience.models import Contact, Event, InboxBatch
from tenants import services
from tests.e2e import test_celery_worker
from tests.e2e.conftest import ProcessRunner, wait_for
from tests.e2e.test_celery_worker import start_worker, wait_for_worker_ready

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

celery_env = test_celery_worker.celery_env  # the fixture: a worker's environment, test database

RECORDED_WITHIN_SECONDS = 10


def post_batch(url: str, write_key: str, batch: list[dict[str, Any]]) -> int:
    request = urllib.request.Request(
        url,
        data=json.dumps({"batch": batch}).encode(),
        headers={
            "Content-Type": "application/json",
            "Authorization": "Basic " + base64.b64encode(f"{write_key}:".encode()).decode(),
        },
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status


def test_it_records_what_the_web_process_accepted_on_a_real_ingest_worker(
    live_server: Any,
    processes: ProcessRunner,
    celery_env: dict[str, str],
    tmp_path: Path,
    world: Any,
) -> None:
    write_key = services.api_key_create(tenant=world.acme, kind="write", name="site")[1]
    worker = start_worker(processes, celery_env, tmp_path)
    wait_for_worker_ready(processes)

    url = f"http://127.0.0.1:{live_server.thread.port}/v1/batch"
    logged_before = len(worker.log())
    status = post_batch(
        url,
        write_key,
        [
            {"type": "page", "messageId": "p1", "anonymousId": "browser-1", "name": "Tents"},
            {
                "type": "track",
                "messageId": "t1",
                "anonymousId": "browser-1",
                "event": "Product Added",
                "properties": {"sku": "TENT-2", "price": 199},
            },
            {
                "type": "identify",
                "messageId": "i1",
                "anonymousId": "browser-1",
                "userId": "u-42",
                "traits": {"email": "ann@example.com"},
            },
            {"type": "track", "messageId": "o1", "userId": "u-42", "event": "Order Completed"},
        ],
    )
    assert status == 200

    wait_for(
        # The four calls (not the lifecycle stage the product may record for Ann meanwhile).
        lambda: (
            Event.objects.exclude(source="lifecycle").count() == 4
            and not InboxBatch.objects.exists()
        ),
        timeout=RECORDED_WITHIN_SECONDS,
        what="the ingest worker to record the accepted batch",
        runner=processes,
        interval=0.1,
    )
    # Woken by the request itself (no beat runs here), not by a task left from an earlier run.
    assert "audience.tasks.inbox_drain[" in worker.log()[logged_before:]

    ann = Contact.objects.get()  # the anonymous browser and the customer are one contact
    assert (ann.tenant, ann.user_id, ann.email) == (world.acme, "u-42", "ann@example.com")
    sent = ann.events.exclude(source="lifecycle").values_list("message_id", flat=True)
    assert set(sent) == {"p1", "t1", "i1", "o1"}
