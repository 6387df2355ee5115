"""The product behind PgBouncer in transaction pooling (Debian's 1.18, DATABASE_POOLER=pgbouncer):
a tracked event becomes a journey's email, every process's database work going through a pool
of two server connections that four clients share — two Celery workers, the beat and this test
(whose request to /v1/track is the ingestion). The worker drains the ingestion inbox, the engine
enrolls the shopper into a wait, the beat's engine tick (`journeys.tasks.advance_due`) takes the
enrollment on when the wait is over, the email is decided and handed to a real SMTP server.

Skipped on SQLite (nothing to pool). Under CI (WAYFARER_REQUIRE_SERVICES=1) a missing pgbouncer
fails the test instead of skipping it.
"""

from __future__ import annotations

import functools
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from audience.models import Product
from audience.services import contact_upsert
from journeys import services
from journeys.models import Enrollment, Step
from messaging.models import Channel, Delivery, Template
from tests.e2e import pgbouncer as bouncers
from tests.e2e import test_celery_worker
from tests.e2e.conftest import ManagedProcess, ProcessRunner, wait_for
from tests.e2e.pgbouncer import PgBouncer
from tests.factories import api_key, basic
from tests.mail_sink import MailSink

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# The fixtures: a worker's environment (test database), PgBouncer and this process through it.
celery_env = test_celery_worker.celery_env
pgbouncer, pooled_connection = bouncers.pgbouncer, bouncers.pooled_connection

POOL_SIZE = 2


@pytest.fixture
def pgbouncer_pool_size() -> int:
    return POOL_SIZE


def _ready(worker: ManagedProcess) -> bool:
    return " ready." in worker.log()


def _journey(world: Any) -> Any:
    template = Template.objects.create(
        tenant=world.acme,
        name="Your cart",
        channel=Channel.EMAIL,
        subject="{{ contact.first_name }}, your cart is waiting",
        html="<p>{% for item in cart.items %}{{ item.name }}; {% endfor %}</p>",
    )
    journey = services.journey_create(
        tenant=world.acme,
        name="Cart, after a while",
        graph={
            "nodes": [
                {"key": "t", "kind": "trigger_event", "settings": {"event": "Product Added"}},
                {"key": "w", "kind": "wait_delay", "settings": {"amount": 1, "unit": "minutes"}},
                {
                    "key": "m",
                    "kind": "action_email",
                    "settings": {"template": str(template.public_id)},
                },
            ],
            "edges": [
                {"source": "t", "port": "next", "target": "w"},
                {"source": "w", "port": "next", "target": "m"},
            ],
        },
    )
    services.journey_publish(journey=journey)
    return journey


def test_ingestion_the_engine_tick_and_a_send_run_behind_pgbouncer(
    processes: ProcessRunner,
    celery_env: dict[str, str],
    pooled_connection: PgBouncer,
    tmp_path: Path,
    world: Any,
    client: Any,
) -> None:
    bouncer = pooled_connection
    assert connection.settings_dict["PORT"] == str(bouncer.port)  # this process goes through it
    with MailSink() as sink:
        env = {
            **celery_env,
            # What production sets; PgBouncer would refuse the direct mode's startup options.
            "DATABASE_POOLER": "pgbouncer",
            "EMAIL_URL": f"smtp://127.0.0.1:{sink.port}",
            "EMAIL_TIMEOUT": "10",
        }
        for n in (1, 2):
            (folder := tmp_path / f"worker-{n}").mkdir()
            url = bouncer.database_url(application_name=f"worker-{n}")
            worker = test_celery_worker.start_worker(
                processes, {**env, "DATABASE_URL": url}, folder
            )
            wait_for(functools.partial(_ready, worker), timeout=60, what=f"worker {n} ready")
        url = bouncer.database_url(application_name="beat")
        beat = test_celery_worker.start_beat(processes, {**env, "DATABASE_URL": url}, tmp_path)

        Product.objects.create(tenant=world.acme, sku="tent-2p", name="Ridge tent for two")
        contact_upsert(
            tenant=world.acme,
            user_id="sam",
            email="sam@example.com",
            fields={"first_name": "Sam", "email_consent": "granted"},
            source="test",
        )
        journey = _journey(world)

        # Ingestion: the tracking API (this process, through PgBouncer), then the inbox drain
        # and the journeys' look at the event on the workers.
        body = {
            "userId": "sam",
            "event": "Product Added",
            "messageId": "add-1",
            "properties": {"cart_id": "c-1", "sku": "tent-2p", "name": "Ridge tent for two"},
        }
        response = client.post(
            "/v1/track",
            json.dumps(body),
            content_type="application/json",
            HTTP_AUTHORIZATION=basic(api_key(world.acme, kind="write")[1]),
        )
        assert response.status_code == 200
        enrollment = wait_for(
            lambda: Enrollment.objects.filter(
                journey=journey, node_key="w", due_at__isnull=False
            ).first(),
            timeout=60,
            what="the engine to enroll the shopper into the wait",
            runner=processes,
        )
        assert sink.received() == []

        # The minute passes: the beat's next engine tick takes the enrollment on.
        past = timezone.now() - timedelta(minutes=2)
        Enrollment.objects.filter(pk=enrollment.pk).update(arrived_at=past, due_at=past)
        [received] = wait_for(
            lambda: sink.received() or None,
            timeout=60,
            what="the journey's email in the SMTP server",
            runner=processes,
        )
        assert received.rcpt_tos == ["sam@example.com"]
        assert received.message["Subject"] == "Sam, your cart is waiting"
        html = received.message.get_body(("html",))
        assert html is not None and "Ridge tent for two" in html.get_content()

        [delivery] = Delivery.objects.filter(source=f"journey:{journey.public_id}")
        wait_for(
            lambda: Delivery.objects.filter(pk=delivery.pk, status="sent").exists(),
            timeout=30,
            what="the outbox to record the email as sent",
            runner=processes,
        )

        # The processes shared two server connections: Celery closes a worker's connection
        # after each task, so the clients came and went — many logins, many transactions.
        servers = [s for s in bouncer.show("SERVERS") if s["database"] == bouncer.dbname]
        assert 1 <= len(servers) <= POOL_SIZE, servers
        logins = bouncer.process.log().count(f"login attempt: db={bouncer.dbname} ")
        assert logins > 2 * POOL_SIZE, bouncer.process.log()
        [stats] = [s for s in bouncer.show("STATS") if s["database"] == bouncer.dbname]
        assert stats["total_xact_count"] > 50, stats

    # The workers and the beat stop before PgBouncer, and leave cleanly through it.
    others = [p for p in processes.started if p is not bouncer.process]
    for process in others:
        process.terminate()
    assert all(process.stop() == [] for process in others)
    assert "Could not release the beat lease" not in beat.log()
    assert "Traceback" not in "".join(process.log() for process in others)

    enrollment.refresh_from_db()
    assert enrollment.state == Enrollment.State.COMPLETED
    steps = list(Step.objects.filter(enrollment=enrollment).values_list("node_key", "result"))
    assert ("w", "waiting") in steps
    assert steps[-2:] == [("m", "sent"), ("m", "completed")]
